"""The audit trail's scenarios: AppendAuditEvents vs COPY, and ListAuditLogs depth."""

from __future__ import annotations

import uuid
from dataclasses import replace

import asyncpg

from benchmarks import seeding
from benchmarks.bench import Bench, b64, baseline_schema
from benchmarks.report import Line, ratio_text
from benchmarks.workload import combined
from sensei.org.v1 import audit_pb2, audit_pb2_grpc
from shared.pagination import PageTokens

# Requests per page of the alternating (drift-free) ListAuditLogs check.
_ALTERNATIONS = 100


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
