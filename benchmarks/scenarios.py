"""The scenarios: each measures a Sensei line and its baseline(s) in the same run.

Every measurement is a `benchmarks.loadgen` process; the orchestration here (seeding,
one-off calls) runs in the parent process between measurements, never during one. The
comparisons with other tools (CHECKSUM vs reladiff, SearchPatterns vs exact search) are in
`benchmarks.comparisons`.
"""

from __future__ import annotations

import asyncio
import base64
import sys
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace

import asyncpg

from benchmarks import seeding
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
from benchmarks.loadgen import REPO, combined
from benchmarks.report import Line, ratio_text
from devstack.postgres import free_port
from sensei.migration.v1 import migration_pb2, migration_pb2_grpc
from sensei.org.v1 import audit_pb2, audit_pb2_grpc

# The service's own column list, so the raw baseline runs the very same SELECT.
from services.migration.store.migrations import MIGRATION_COLUMNS
from shared.pagination import PageTokens

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
            )
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


# --- audit ingest ---------------------------------------------------------------------


async def audit_ingest(bench: Bench) -> None:
    """AppendAuditEvents batches (hash chain, idempotency) vs COPY of the same rows."""
    group = "audit ingest"
    options = bench.options
    conn = await asyncpg.connect(bench.stack.database_url)
    try:
        await baseline_schema(conn, [("org", "audit_logs")])
    finally:
        await conn.close()
    org_ids = [str(uuid.uuid4()) for _ in range(options.concurrency)]
    baseline = await bench.measure(
        bench.workload(
            "asyncpg COPY",
            "asyncpg",
            bench.stack.database_url,
            op={
                "kind": "copy_audit",
                "schema": "bench_baseline",
                "batch": options.audit_batch,
                "org_ids": org_ids,
                "actor": "serviceAccounts/bench",
            },
        )
    )
    result = await bench.measure(
        bench.workload(
            "AppendAuditEvents",
            "grpc",
            bench.stack.addresses["org"],
            method="/sensei.org.v1.AuditService/AppendAuditEvents",
            metadata=await bench.metadata("service"),
            requests={
                "kind": "audit_batch",
                "org_ids": org_ids,
                "batch": options.audit_batch,
                "actor": "serviceAccounts/bench",
                "service": "bench",
            },
        ),
        profile_pid=bench.stack.pid_of("org"),
    )
    batch = f"batches of {options.audit_batch}, one organization per client"
    bench.lines += [
        Line.of(
            group,
            "raw asyncpg: copy_records_to_table of the same rows",
            baseline,
            unit="events/s",
            per_item=True,
            ratio="baseline",
            note=batch,
        ),
        Line.of(
            group,
            "AppendAuditEvents (validate, dedupe, lock head, hash chain)",
            result,
            unit="events/s",
            per_item=True,
            ratio=ratio_text(result.items_per_second, baseline.items_per_second, "COPY"),
            note=batch,
        ),
    ]


# --- ListAuditLogs depth --------------------------------------------------------------


async def audit_pages(bench: Bench) -> None:
    """ListAuditLogs page 1 vs page 1000 of one organization's seeded chain (keyset)."""
    group = "audit log paging"
    options = bench.options
    print(f"  seeding {options.audit_rows:,} audit entries (COPY, hash chain)…", flush=True)
    conn = await asyncpg.connect(bench.stack.database_url)
    try:
        chain = await seeding.seed_audit_chain(
            conn, "org", options.audit_rows, "serviceAccounts/bench"
        )
    finally:
        await conn.close()
    page = options.audit_page
    size = max(1, min(1000, options.audit_rows // page))
    parent = f"organizations/{chain.org_id}"
    metadata = await bench.metadata("service")
    first = audit_pb2.ListAuditLogsRequest(parent=parent, page_size=size)
    deep = audit_pb2.ListAuditLogsRequest(
        parent=parent, page_size=size, page_token=_audit_page_token(bench, chain, page, size)
    )
    async with bench.channel("org") as channel:
        stub = audit_pb2_grpc.AuditServiceStub(channel)
        checked = await stub.ListAuditLogs(deep, metadata=metadata)
        expected_top = chain.rows - (page - 1) * size
        if not checked.audit_logs or checked.audit_logs[0].seq != expected_top:
            raise RuntimeError(f"page {page} does not start at seq {expected_top}")
        head = await stub.VerifyAuditChain(
            audit_pb2.VerifyAuditChainRequest(
                parent=parent, start_seq=max(1, chain.rows - 999), end_seq=chain.rows
            ),
            metadata=metadata,
        )
        tail = await stub.VerifyAuditChain(
            audit_pb2.VerifyAuditChainRequest(parent=parent, start_seq=1, end_seq=1000),
            metadata=metadata,
        )
    bench.notes.append(
        f"audit log: {chain.rows:,} entries of one organization seeded by COPY in"
        f" {chain.seconds:.0f} s (hash chain computed with services.org.audit.chain.extend_chain);"
        f" VerifyAuditChain of its first and last 1000 entries:"
        f" {'valid' if head.valid and tail.valid else 'INVALID'}"
    )
    method = "/sensei.org.v1.AuditService/ListAuditLogs"
    target = bench.stack.addresses["org"]
    one = bench.workload(
        "ListAuditLogs page 1",
        "grpc",
        target,
        method=method,
        metadata=metadata,
        requests={"kind": "fixed", "payloads": [b64(first)]},
    )
    far = replace(
        one,
        name=f"ListAuditLogs page {page}",
        requests={"kind": "fixed", "payloads": [b64(deep)]},
    )
    # A B B A: a drift of the machine's load during the four runs cancels out of the ratio.
    runs = [
        await bench.measure(one),
        await bench.measure(far, profile_pid=bench.stack.pid_of("org")),
        await bench.measure(far),
        await bench.measure(one),
    ]
    page_one, page_deep = combined([runs[0], runs[3]]), combined([runs[1], runs[2]])
    # Drift-free latency: one client alternating the two pages request by request.
    alternating = await bench.measure(
        replace(
            one,
            name="ListAuditLogs pages 1 and 1000 alternating",
            requests={"kind": "fixed", "payloads": [b64(first), b64(deep)], "labels": ["1", "d"]},
            concurrency=1,
            warmup=0,
            max_requests=2 * _ALTERNATIONS,
        )
    )
    p50 = alternating.p50_ms_by_label
    rows = f"{chain.rows:,} rows, page size {size}, 2 runs each (A B B A; p50/p99 averaged)"
    bench.lines += [
        Line.of(group, "ListAuditLogs page 1", page_one, ratio="baseline", note=rows),
        Line.of(
            group,
            f"ListAuditLogs page {page} (keyset: should stay near 1×)",
            page_deep,
            ratio=f"{ratio_text(page_deep.rps, page_one.rps, 'page 1')};"
            f" alternating, one client: p50 {p50.get('d', 0):.1f} vs {p50.get('1', 0):.1f} ms"
            f" ({ratio_text(p50.get('1', 0), p50.get('d', 0), 'page 1')})",
            note=rows,
        ),
    ]


def _audit_page_token(bench: Bench, chain: seeding.SeededChain, page: int, size: int) -> str:
    # The token page `page - 1` would hand out: the org service keys ListAuditLogs tokens by
    # (parent, filters) and resumes below the last seq returned.
    query = ["audit_logs", chain.org_id, "", "", "", "", "", ""]
    last_seq_before = chain.rows - (page - 1) * size + 1
    return PageTokens(bench.stack.page_token_secret).encode(query, [last_seq_before])


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
            ratio=ratio_text(two.rps, one.rps, "1 process"),
            note=note,
        ),
    ]


RUNNERS: dict[str, Callable[[Bench], Awaitable[None]]] = {
    "reads": unary_reads,
    "writes": unary_writes,
    "ingest": audit_ingest,
    "audit-pages": audit_pages,
    "checksum": checksum,
    "checksum-large": checksum_large,
    "checksum-mysql": checksum_mysql,
    "search": search,
    "multicore": multicore,
}
