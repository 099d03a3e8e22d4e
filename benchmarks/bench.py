"""What the scenarios share: run options, the `Bench` (stack, tokens, measuring, the lines
and notes it collects) and request helpers."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import asyncpg
import grpc
from google.protobuf import struct_pb2

from benchmarks import profiling, seeding
from benchmarks.loadgen import measure
from benchmarks.report import Line
from benchmarks.stack import Stack
from benchmarks.workload import Result, Workload
from sensei.migration.v1 import migration_pb2, migration_pb2_grpc

MIGRATION_SERVICE = "/sensei.migration.v1.MigrationService"


@dataclass(frozen=True)
class Options:
    """Knobs of a run (flags of `python -m benchmarks`)."""

    concurrency: int = 16
    duration: float = 6.0
    warmup: float = 1.0
    migrations: int = 200
    audit_rows: int = 1_000_000
    audit_batch: int = 100
    audit_page: int = 1000
    checksum_rows: int = 500_000
    checksum_changes: int = 12
    checksum_large_rows: int = 2_000_000
    reladiff_threads: int = 1
    patterns: int = 5000
    # The large size of the pattern-scale lines (0: only `patterns`).
    large_patterns: int = 100_000
    recall_queries: int = 50
    channels: int = 8
    profile: bool = False
    only: frozenset[str] = frozenset()

    def wants(self, scenario: str) -> bool:
        """Whether `scenario` is selected (all when none was named)."""
        return not self.only or scenario in self.only


@dataclass
class Bench:
    """What the scenarios share: the stack, options, tokens, and what they report."""

    stack: Stack
    options: Options
    lines: list[Line] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    _tokens: dict[str, str] = field(default_factory=dict)
    _migration_names: list[str] = field(default_factory=list)

    async def token(self, who: str) -> str:
        """A fresh-enough access token of the bootstrap "owner" or "service" account."""
        if who not in self._tokens:
            key = self.stack.owner_api_key if who == "owner" else self.stack.service_api_key
            self._tokens[who] = await self.stack.token(key)
        return self._tokens[who]

    async def metadata(self, who: str) -> tuple[tuple[str, str], ...]:
        """Call metadata with a bearer token of `who`."""
        return (("authorization", f"Bearer {await self.token(who)}"),)

    def workload(self, name: str, kind: str, target: str, **fields: Any) -> Workload:
        """A workload with the run's concurrency, duration and warmup."""
        base = Workload(
            name=name,
            kind=kind,
            target=target,
            concurrency=self.options.concurrency,
            duration=self.options.duration,
            warmup=self.options.warmup,
        )
        return replace(base, **fields)

    async def measure(
        self,
        workload: Workload,
        profile_pid: int | None = None,
        extra_cpu: dict[str, list[int]] | None = None,
    ) -> Result:
        """Runs a load-generator process; with --profile, samples `profile_pid` meanwhile.
        The CPU time of the services, PostgreSQL, the load generator and `extra_cpu` is
        measured over the window."""
        workload = replace(workload, cpu_groups={**self.stack.cpu_groups(), **(extra_cpu or {})})
        if not (self.options.profile and profile_pid is not None):
            result = await measure(workload)
        else:
            sampled = asyncio.create_task(
                profiling.sample(
                    profile_pid,
                    workload.warmup + workload.duration,
                    self.stack.work_dir / f"profile-{len(self.notes)}.txt",
                )
            )
            result = await measure(workload)
            summary = await sampled
            self.notes.append(f"profile of {workload.name}: {summary}")
        print(
            f"  {workload.name}: {result.rps:,.0f} req/s, p50 {result.p50_ms:.2f} ms,"
            f" p99 {result.p99_ms:.2f} ms, errors {result.errors}",
            flush=True,
        )
        if result.errors and result.first_error:
            print(f"    first error: {result.first_error}", flush=True)
        return result

    def channel(self, service: str) -> grpc.aio.Channel:
        """A new channel to a suite service (close it after use)."""
        return grpc.aio.insecure_channel(self.stack.addresses[service])

    async def migration_names(self) -> list[str]:
        """Names of `options.migrations` migrations, created once (for the read lines)."""
        if self._migration_names:
            return self._migration_names
        metadata = await self.metadata("owner")
        async with self.channel("migration") as channel:
            stub = migration_pb2_grpc.MigrationServiceStub(channel)

            async def create(index: int) -> None:
                response = await stub.CreateMigration(
                    create_migration_request(self.stack, f"read-{index}"), metadata=metadata
                )
                self._migration_names.append(response.migration.name)

            await seeding.run_bounded([bind(create, i) for i in range(self.options.migrations)], 16)
        await self.drain_outbox("migration")
        return self._migration_names

    async def drain_outbox(self, schema: str, limit_seconds: float = 180.0) -> float:
        """Waits until the relay delivered every audit event of `schema`; returns seconds."""
        conn = await asyncpg.connect(self.stack.database_url)
        try:
            began = time.perf_counter()
            while time.perf_counter() - began < limit_seconds:
                pending = await conn.fetchval(f'SELECT count(*) FROM "{schema}".audit_outbox')
                if pending == 0:
                    return time.perf_counter() - began
                await asyncio.sleep(0.2)  # polling the relay's progress
        finally:
            await conn.close()
        raise RuntimeError(f"the audit outbox of {schema} did not drain in {limit_seconds:.0f} s")


def bind(function: Callable[[int], Awaitable[None]], index: int) -> Callable[[], Awaitable[None]]:
    """A no-argument job that calls `function(index)` (for `seeding.run_bounded`)."""

    async def job() -> None:
        await function(index)

    return job


def create_migration_request(stack: Stack, label: str) -> migration_pb2.CreateMigrationRequest:
    """A CreateMigration request with realistic (sealed-at-rest) connection configs."""
    source, target = struct_pb2.Struct(), struct_pb2.Struct()
    source.update(
        {"dsn": stack.dsn("bench_src"), "password": "s3cret-source", "sslmode": "disable"}
    )
    target.update(
        {"dsn": stack.dsn("bench_tgt"), "password": "s3cret-target", "sslmode": "disable"}
    )
    return migration_pb2.CreateMigrationRequest(
        parent=f"organizations/{stack.org_id}",
        migration=migration_pb2.Migration(
            display_name=f"bench {label}",
            description="a benchmark migration",
            source_config=source,
            target_config=target,
        ),
    )


def b64(message: Any) -> str:
    """A message serialized and base64-encoded, as loadgen's fixed payloads are."""
    return base64.b64encode(message.SerializeToString()).decode()


async def baseline_schema(conn: asyncpg.Connection, tables: Sequence[tuple[str, str]]) -> None:
    """Copies of service tables in schema bench_baseline for the raw asyncpg lines: same
    columns, defaults and indexes (LIKE … INCLUDING ALL), none of the triggers."""
    await conn.execute("CREATE SCHEMA IF NOT EXISTS bench_baseline")
    for schema, table in tables:
        await conn.execute(
            f'CREATE TABLE IF NOT EXISTS bench_baseline."{table}"'
            f' (LIKE "{schema}"."{table}" INCLUDING ALL)'
        )
