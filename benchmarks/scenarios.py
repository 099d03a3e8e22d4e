"""The scenarios: each measures a Sensei line and its baseline(s) in the same run.

Every measurement is a `benchmarks.loadgen` process; the orchestration here (seeding,
one-off calls) runs in the parent process between measurements, never during one. The
comparisons with other tools (CHECKSUM vs reladiff, SearchPatterns vs exact search) are in
`benchmarks.comparisons`.
"""

from __future__ import annotations

import asyncio
import base64
import os
import sys
from collections.abc import Awaitable, Callable
from dataclasses import replace

import asyncpg

from benchmarks import audit_scenarios
from benchmarks.baselines import ECHO_METHOD
from benchmarks.bench import (
    MIGRATION_SERVICE,
    Bench,
    b64,
    baseline_schema,
    create_migration_request,
)
from benchmarks.checksum_mysql import checksum_mysql
from benchmarks.checksum_runs import checksum_large
from benchmarks.comparisons import checksum, search
from benchmarks.pattern_scale import pattern_quality, pattern_scale
from benchmarks.report import Line, ratio_text
from benchmarks.workload import REPO, Result
from devstack.postgres import free_port
from sensei.migration.v1 import migration_pb2, migration_pb2_grpc

# The service's own column list, so the raw baseline runs the very same SELECT.
from services.migration.store.migrations import MIGRATION_COLUMNS

# Requests per page of the alternating (drift-free) ListAuditLogs check.
_ALTERNATIONS = 100

SCENARIOS = (
    "reads",
    "writes",
    "ingest",
    "audit-pages",
    "checksum",
    "checksum-large",
    "checksum-mysql",
    "search",
    "multicore",
    "pattern-quality",
    "pattern-scale",
)


# --- unary reads ----------------------------------------------------------------------


async def unary_reads(bench: Bench) -> None:
    """GetMigration (auth, database, decryption) vs a bare echo server and vs raw asyncpg."""
    group = "unary reads"
    names = await bench.migration_names()
    metadata = await bench.metadata("owner")
    payloads = [b64(migration_pb2.GetMigrationRequest(name=name)) for name in names]
    async with bench.channel("migration") as channel:
        stub = migration_pb2_grpc.MigrationServiceStub(channel)
        sample = await stub.GetMigration(
            migration_pb2.GetMigrationRequest(name=names[0]), metadata=metadata
        )
    response_size = len(sample.SerializeToString())
    echo = await _start_echo(response_size)
    try:
        echo_result = await bench.measure(
            bench.workload(
                "echo",
                "grpc",
                echo[1],
                method=ECHO_METHOD,
                requests={"kind": "fixed", "payloads": payloads},
            ),
            extra_cpu={"echo server": [echo[0].pid]},
        )
    finally:
        echo[0].terminate()
        await echo[0].wait()
    ids = [(bench.stack.org_id, name.rsplit("/", 1)[1]) for name in names]
    sql_result = await bench.measure(
        bench.workload(
            "asyncpg SELECT",
            "asyncpg",
            bench.stack.database_url,
            op={
                "kind": "fetch",
                "sql": f"SELECT {MIGRATION_COLUMNS} FROM migration.migrations"
                " WHERE org_id = $1 AND id = $2",
                "args": ids,
            },
        )
    )
    result = await bench.measure(
        bench.workload(
            "GetMigration",
            "grpc",
            bench.stack.addresses["migration"],
            method=f"{MIGRATION_SERVICE}/GetMigration",
            metadata=metadata,
            requests={"kind": "fixed", "payloads": payloads},
        ),
        profile_pid=bench.stack.pid_of("migration"),
    )
    bench.lines += [
        Line.of(
            group,
            "bare grpc.aio echo (same payload sizes)",
            echo_result,
            ratio="baseline",
            note=f"response {response_size} B",
        ),
        Line.of(group, "raw asyncpg: the same SELECT", sql_result, ratio="baseline"),
        Line.of(
            group,
            "GetMigration (bearer JWT, access rule, decrypt configs)",
            result,
            ratio=f"{ratio_text(result.rps, echo_result.rps, 'echo')};"
            f" {ratio_text(result.rps, sql_result.rps, 'asyncpg')}",
        ),
    ]


async def _start_echo(response_size: int) -> tuple[asyncio.subprocess.Process, str]:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "benchmarks.baselines",
        "echo",
        "--port",
        str(port),
        "--response-size",
        str(response_size),
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), timeout=60)
    if b"serving" not in line:
        raise RuntimeError("the echo server did not start")
    return process, f"127.0.0.1:{port}"


# --- unary writes ---------------------------------------------------------------------


async def unary_writes(bench: Bench) -> None:
    """CreateMigration (row + audit outbox + NOTIFY) vs raw asyncpg writing the same rows."""
    group = "unary writes"
    metadata = await bench.metadata("owner")
    await bench.migration_names()
    conn = await asyncpg.connect(bench.stack.database_url)
    try:
        await baseline_schema(conn, [("migration", "migrations"), ("migration", "audit_outbox")])
        sealed = await conn.fetchrow(
            "SELECT source_config_sealed, target_config_sealed FROM migration.migrations LIMIT 1"
        )
        assert sealed is not None
    finally:
        await conn.close()
    baseline = await bench.measure(
        bench.workload(
            "asyncpg INSERT",
            "asyncpg",
            bench.stack.database_url,
            op={
                "kind": "insert_migration",
                "schema": "bench_baseline",
                "org_id": bench.stack.org_id,
                "actor": "users/bench",
                "display_name": "bench write",
                "source_sealed": base64.b64encode(sealed[0]).decode(),
                "target_sealed": base64.b64encode(sealed[1]).decode(),
            },
        )
    )
    request = create_migration_request(bench.stack, "write")
    result = await bench.measure(
        bench.workload(
            "CreateMigration",
            "grpc",
            bench.stack.addresses["migration"],
            method=f"{MIGRATION_SERVICE}/CreateMigration",
            metadata=metadata,
            requests={"kind": "fixed", "payloads": [b64(request)]},
        ),
        profile_pid=bench.stack.pid_of("migration"),
    )
    drained = await bench.drain_outbox("migration")
    bench.lines += [
        Line.of(
            group,
            "raw asyncpg: migration row + outbox row + NOTIFY, one transaction",
            baseline,
            ratio="baseline",
        ),
        Line.of(
            group,
            "CreateMigration (+ audit outbox, relayed to org meanwhile)",
            result,
            ratio=ratio_text(result.rps, baseline.rps, "asyncpg"),
            note=f"outbox drained {drained:.1f} s after the run",
        ),
    ]


# --- multi-core -----------------------------------------------------------------------


async def multicore(bench: Bench) -> None:
    """GetMigration against 1 vs 2 migration processes sharing one port (so_reuseport)."""
    group = "multi-core"
    names = await bench.migration_names()
    metadata = await bench.metadata("owner")
    payloads = [b64(migration_pb2.GetMigrationRequest(name=name)) for name in names]
    port = free_port()
    reuse = {"SENSEI_MIGRATION_REUSE_PORT": "1"}
    first = await bench.stack.start_service("migration", port=port, extra_env=reuse)
    started = [first]
    try:
        workload = bench.workload(
            "GetMigration, 1 process",
            "grpc",
            first.address,
            method=f"{MIGRATION_SERVICE}/GetMigration",
            metadata=metadata,
            requests={"kind": "fixed", "payloads": payloads},
            channels=bench.options.channels,
        )
        one = await bench.measure(workload)
        started.append(await bench.stack.start_service("migration", port=port, extra_env=reuse))
        two = await bench.measure(replace(workload, name="GetMigration, 2 processes"))
    finally:
        for running in started:
            await bench.stack.stop_service(running)
    note = f"{bench.options.channels} client connections, so_reuseport"
    bench.lines += [
        Line.of(group, "GetMigration, 1 migration process", one, ratio="baseline", note=note),
        Line.of(
            group,
            "GetMigration, 2 migration processes on one port",
            two,
            ratio=f"{ratio_text(two.rps, one.rps, '1 process')}; {_cost_change(one, two)}",
            note=note,
        ),
    ]


def _cost_change(one: Result, two: Result) -> str:
    # The whole machine's CPU per call, and the rate it allows when every process of the
    # line (load generator and PostgreSQL included) shares this machine's cores.
    cost_one, cost_two = sum(one.cpu_per_call().values()), sum(two.cpu_per_call().values())
    if not cost_one or not cost_two:
        return "no CPU measurement"
    cores = os.cpu_count() or 1
    change = "raises" if cost_two > cost_one else "lowers"
    return (
        f"a second process {change} the CPU per call {cost_one * 1e6:.0f} → "
        f"{cost_two * 1e6:.0f} µs ({cost_two / cost_one - 1:+.0%}); bound on {cores} shared"
        f" cores: {cores / cost_one:,.0f} / {cores / cost_two:,.0f} req/s"
    )


RUNNERS: dict[str, Callable[[Bench], Awaitable[None]]] = {
    "reads": unary_reads,
    "writes": unary_writes,
    "ingest": audit_scenarios.audit_ingest,
    "audit-pages": audit_scenarios.audit_pages,
    "checksum": checksum,
    "checksum-large": checksum_large,
    "checksum-mysql": checksum_mysql,
    "search": search,
    "multicore": multicore,
    "pattern-quality": pattern_quality,
    "pattern-scale": pattern_scale,
}
