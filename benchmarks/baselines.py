"""What each benchmark line is compared with, measured in the same run.

- `serve_echo`: a bare `grpc.aio` server with one generic unary method that answers every
  call with a fixed payload (no interceptor, no auth, no database): the floor of a unary
  call from the same client at the same concurrency.
- `PgDriver`: raw asyncpg doing what a service does in SQL, with a pool of the same size as
  a service's (`fetch`: one query; `insert_migration`: a migration row plus its outbox row
  and a NOTIFY in one transaction; `copy_audit`: `copy_records_to_table` of audit rows).
- `run_reladiff`: the `reladiff` package comparing the same two tables as CHECKSUM.

`python -m benchmarks.baselines echo --port P --response-size N` serves the echo server
until SIGTERM; `python -m benchmarks.baselines reladiff ...` prints one JSON result.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import signal
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import grpc

from benchmarks.workload import REPO, Prepared, Workload
from shared.db import Connection, keep_session

ECHO_SERVICE = "bench.Echo"
ECHO_METHOD = f"/{ECHO_SERVICE}/Echo"


# --- the echo server ------------------------------------------------------------------


async def serve_echo(port: int, response_size: int, host: str = "127.0.0.1") -> grpc.aio.Server:
    """Starts the echo server; the caller stops it."""
    response = b"\x00" * response_size

    async def echo(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return response

    handler = grpc.method_handlers_generic_handler(
        ECHO_SERVICE, {"Echo": grpc.unary_unary_rpc_method_handler(echo)}
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    if server.add_insecure_port(f"{host}:{port}") == 0:
        raise OSError(f"cannot listen on {host}:{port}")
    await server.start()
    return server


async def _serve_echo_forever(port: int, response_size: int) -> None:
    server = await serve_echo(port, response_size)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"echo serving on 127.0.0.1:{port}", flush=True)
    await stop.wait()
    await server.stop(0)


# --- raw asyncpg ----------------------------------------------------------------------


class PgOperation:
    """One kind of raw database request."""

    def prepare(self, worker: int) -> Prepared:
        """Builds the next request of `worker` (not timed)."""
        raise NotImplementedError

    async def execute(self, conn: Connection, prepared: Prepared) -> None:
        """Runs it on a pooled connection (timed)."""
        raise NotImplementedError


class FetchQuery(PgOperation):
    """One query, its arguments cycled from a list (each worker from its own offset)."""

    def __init__(self, sql: str, args: Sequence[Sequence[Any]]) -> None:
        self._sql = sql
        self._args = [tuple(a) for a in args] or [()]
        self._positions: dict[int, int] = {}

    def prepare(self, worker: int) -> Prepared:
        position = self._positions.get(worker, worker * 7919)
        self._positions[worker] = position + 1
        return Prepared(self._args[position % len(self._args)])

    async def execute(self, conn: Connection, prepared: Prepared) -> None:
        await conn.fetch(self._sql, *prepared.payload)


class InsertMigration(PgOperation):
    """What CreateMigration writes: the migration row, its outbox event, a NOTIFY."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self._schema = spec["schema"]
        self._org_id = spec["org_id"]
        self._user_id = spec.get("user_id")
        self._actor = spec["actor"]
        self._name = spec["display_name"]
        self._source = base64.b64decode(spec["source_sealed"])
        self._target = base64.b64decode(spec["target_sealed"])

    def prepare(self, worker: int) -> Prepared:
        return Prepared((str(uuid.uuid4()), str(uuid.uuid4())))

    async def execute(self, conn: Connection, prepared: Prepared) -> None:
        migration_id, event_id = prepared.payload
        async with conn.transaction():
            await conn.fetchrow(
                f'INSERT INTO "{self._schema}".migrations (id, org_id, display_name,'
                " description, source_config_sealed, target_config_sealed)"
                " VALUES ($1, $2, $3, $4, $5, $6) RETURNING *",
                migration_id,
                self._org_id,
                self._name,
                "",
                self._source,
                self._target,
            )
            await conn.execute(
                f'INSERT INTO "{self._schema}".audit_outbox (event_id, org_id, user_id, actor,'
                " action, resource_type, resource_id, ip_address, details)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb)",
                event_id,
                self._org_id,
                self._user_id,
                self._actor,
                "migration.create",
                "migration",
                migration_id,
                "127.0.0.1",
                json.dumps({"display_name": self._name}),
            )
            await conn.execute("SELECT pg_notify($1, '')", "sensei_bench_baseline")


AUDIT_COLUMNS = (
    "id",
    "org_id",
    "seq",
    "event_id",
    "user_id",
    "actor",
    "action",
    "resource_type",
    "resource_id",
    "ip_address",
    "service",
    "details",
    "occurred_at",
    "created_at",
    "prev_hash",
    "entry_hash",
)


class CopyAudit(PgOperation):
    """`copy_records_to_table` of audit rows like AppendAuditEvents stores, one org per worker."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self._schema = spec["schema"]
        self._batch = int(spec["batch"])
        self._org_ids = list(spec["org_ids"])
        self._actor = spec["actor"]
        self._seq: dict[int, int] = {}

    def prepare(self, worker: int) -> Prepared:
        org_id = uuid.UUID(self._org_ids[worker % len(self._org_ids)])
        seq = self._seq.get(worker, 0)
        self._seq[worker] = seq + self._batch
        now = datetime.now(UTC)
        details = json.dumps({"display_name": "bench"})
        rows = [
            (
                uuid.uuid4(),
                org_id,
                seq + offset + 1,
                uuid.uuid4(),
                None,
                self._actor,
                "bench.event",
                "bench",
                str(uuid.uuid4()),
                "127.0.0.1",
                "bench",
                details,
                now,
                now,
                uuid.uuid4().hex * 2,
                uuid.uuid4().hex * 2,
            )
            for offset in range(self._batch)
        ]
        return Prepared(rows, self._batch)

    async def execute(self, conn: Connection, prepared: Prepared) -> None:
        await conn.copy_records_to_table(
            "audit_logs",
            schema_name=self._schema,
            records=prepared.payload,
            columns=AUDIT_COLUMNS,
        )


def pg_operation(spec: dict[str, Any]) -> PgOperation:
    """`{"kind": "fetch" | "insert_migration" | "copy_audit", ...}`."""
    kind = spec.get("kind")
    if kind == "fetch":
        return FetchQuery(spec["sql"], spec.get("args", []))
    if kind == "insert_migration":
        return InsertMigration(spec)
    if kind == "copy_audit":
        return CopyAudit(spec)
    raise ValueError(f"unknown database operation: {kind!r}")


@dataclass
class PgDriver:
    """Runs a `PgOperation` on an asyncpg pool (the loadgen `Driver` of kind asyncpg)."""

    pool: asyncpg.Pool
    operation: PgOperation

    @classmethod
    async def open(cls, workload: Workload) -> PgDriver:
        """A full pool (min = max = pool_size) with the op's `settings` as session defaults.

        They go in the startup packet. Released connections are not reset, as the
        services' pools do (`shared.db.keep_session`): the same round trips per call.
        """
        settings = {"application_name": "sensei-bench-baseline", **workload.op.get("settings", {})}
        pool = await asyncpg.create_pool(
            workload.target,
            min_size=workload.pool_size,
            max_size=workload.pool_size,
            server_settings=settings,
            reset=keep_session,
        )
        assert pool is not None
        return cls(pool, pg_operation(workload.op))

    def prepare(self, worker: int) -> Prepared:
        """Builds the next request of `worker`."""
        return self.operation.prepare(worker)

    async def execute(self, worker: int, prepared: Prepared) -> None:
        """Runs it on a pooled connection."""
        async with self.pool.acquire() as conn:
            await self.operation.execute(conn, prepared)

    async def close(self) -> None:
        """Closes the pool."""
        await self.pool.close()


# --- reladiff -------------------------------------------------------------------------


def run_reladiff(
    source: str, target: str, *, table: str, key: str, columns: Sequence[str], threads: int
) -> dict[str, Any]:
    """Diffs `table` of two databases with reladiff (hashdiff); seconds and the differing keys."""
    import reladiff  # type: ignore[import-untyped,import-not-found,unused-ignore]

    began = time.perf_counter()
    left = reladiff.connect_to_table(
        source, table, key, thread_count=threads, extra_columns=tuple(columns)
    )
    right = reladiff.connect_to_table(
        target, table, key, thread_count=threads, extra_columns=tuple(columns)
    )
    with reladiff.diff_tables(
        left, right, algorithm=reladiff.Algorithm.HASHDIFF, max_threadpool_size=threads
    ) as diff:
        changes = list(diff)
    seconds = time.perf_counter() - began
    keys = sorted({str(row[1][0]) for row in changes})
    return {"seconds": seconds, "differences": len(keys), "keys": keys[:100]}


async def reladiff_in_process(
    source: str, target: str, *, table: str, key: str, columns: Sequence[str], threads: int
) -> dict[str, Any]:
    """Runs `run_reladiff` in a `python -m benchmarks.baselines reladiff` process."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "benchmarks.baselines",
        "reladiff",
        "--source",
        source,
        "--target",
        target,
        "--table",
        table,
        "--key",
        key,
        "--columns",
        ",".join(columns),
        "--threads",
        str(threads),
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=600)
    if process.returncode != 0:
        raise RuntimeError(f"reladiff failed ({process.returncode}): {err.decode()[-3000:]}")
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


def main(argv: Sequence[str] | None = None) -> None:
    """`echo` or `reladiff` (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.baselines")
    commands = parser.add_subparsers(dest="command", required=True)
    echo = commands.add_parser("echo")
    echo.add_argument("--port", type=int, required=True)
    echo.add_argument("--response-size", type=int, required=True)
    diff = commands.add_parser("reladiff")
    diff.add_argument("--source", required=True)
    diff.add_argument("--target", required=True)
    diff.add_argument("--table", required=True)
    diff.add_argument("--key", required=True)
    diff.add_argument("--columns", required=True)
    diff.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    if args.command == "echo":
        asyncio.run(_serve_echo_forever(args.port, args.response_size))
        return
    result = run_reladiff(
        args.source,
        args.target,
        table=args.table,
        key=args.key,
        columns=[c for c in args.columns.split(",") if c],
        threads=args.threads,
    )
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
