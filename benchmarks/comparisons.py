"""Sensei against other tools on the same data: CHECKSUM vs reladiff, SearchPatterns vs
exact brute-force cosine (latency and recall@10)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from typing import Any

import asyncpg
from google.protobuf import struct_pb2

from benchmarks import seeding
from benchmarks.baselines import reladiff_in_process
from benchmarks.bench import Bench, b64, bind, create_migration_request
from benchmarks.report import Line, ratio_text
from sensei.migration.v1 import migration_pb2_grpc
from sensei.pattern.v1 import pattern_pb2, pattern_pb2_grpc
from sensei.verification.v1 import verification_pb2, verification_pb2_grpc

# --- CHECKSUM vs reladiff -------------------------------------------------------------


async def checksum(bench: Bench) -> None:
    """A CHECKSUM verification of one large table vs reladiff on the same two databases."""
    group = "table checksum"
    options = bench.options
    print(f"  creating two databases with {options.checksum_rows:,} rows each…", flush=True)
    admin = await asyncpg.connect(bench.stack.dsn("postgres"))
    try:
        source, target, differing = await seeding.create_checksum_databases(
            admin, bench.stack.dsn, options.checksum_rows, options.checksum_changes
        )
    finally:
        await admin.close()
    metadata = await bench.metadata("owner")
    async with bench.channel("migration") as m_channel, bench.channel("verification") as v_channel:
        migrations = migration_pb2_grpc.MigrationServiceStub(m_channel)
        created = await migrations.CreateMigration(
            create_migration_request(bench.stack, "checksum"), metadata=metadata
        )
        verifications = verification_pb2_grpc.VerificationServiceStub(v_channel)
        began = time.perf_counter()
        queued = await verifications.CreateVerification(
            verification_pb2.CreateVerificationRequest(
                parent=created.migration.name,
                verification=verification_pb2.Verification(
                    type=verification_pb2.VERIFICATION_TYPE_CHECKSUM, tables=["public.orders"]
                ),
            ),
            metadata=metadata,
        )
        final = await _watch_until_done(verifications, queued.verification.name, metadata)
        seconds = time.perf_counter() - began
    found = _checksum_keys(final)
    ours_note = (
        f"{verification_pb2.VerificationStatus.Name(final.status)},"
        f" {len(found)} differing keys found of {len(differing)}"
        f"{'' if found == differing else ' (MISMATCH with the truth)'};"
        f" {seconds:.1f} s from CreateVerification to done"
    )
    columns = list(seeding.ORDERS_COLUMNS)
    theirs = await reladiff_in_process(
        source, target, table="orders", key="id", columns=columns, threads=options.reladiff_threads
    )
    theirs_keys = set(theirs["keys"])
    rows = options.checksum_rows
    bench.lines += [
        Line(
            group,
            f"reladiff 0.6.0 hashdiff (threads={options.reladiff_threads})",
            rows / theirs["seconds"],
            "rows/s",
            ratio="baseline",
            note=f"{theirs['differences']} differing keys found"
            f"{'' if theirs_keys == differing else ' (differs from the truth)'};"
            f" {theirs['seconds']:.1f} s",
        ),
        Line(
            group,
            "CHECKSUM verification (queue, worker, bisect, certificate)",
            rows / seconds,
            "rows/s",
            ratio=f"{theirs['seconds'] / seconds:.2f}× reladiff (time ratio)",
            note=ours_note,
        ),
    ]


async def _watch_until_done(
    stub: verification_pb2_grpc.VerificationServiceStub,
    name: str,
    metadata: tuple[tuple[str, str], ...],
) -> verification_pb2.Verification:
    terminal = {
        verification_pb2.VERIFICATION_STATUS_PASSED,
        verification_pb2.VERIFICATION_STATUS_FAILED,
        verification_pb2.VERIFICATION_STATUS_ERROR,
    }
    last: verification_pb2.Verification | None = None
    stream = stub.WatchVerification(
        verification_pb2.WatchVerificationRequest(name=name), metadata=metadata, timeout=600
    )
    async for message in stream:
        last = message.verification
        if last.status in terminal:
            return last
    if last is None:
        raise RuntimeError("WatchVerification ended without a message")
    return last


def _checksum_keys(verification: verification_pb2.Verification) -> set[str]:
    result: dict[str, Any] = json.loads(
        json.dumps(dict(verification.result), default=_struct_value)
    )
    keys: set[str] = set()
    for table in result.get("tables", []):
        for kind in ("missing_in_target", "extra_in_target", "changed"):
            for key in table.get(kind, []):
                keys.add(str(key[0]))
    return keys


def _struct_value(value: Any) -> Any:
    if isinstance(value, struct_pb2.Struct):
        return dict(value)
    if isinstance(value, struct_pb2.ListValue):
        return list(value)
    raise TypeError(type(value).__name__)


# --- SearchPatterns -------------------------------------------------------------------


async def search(bench: Bench) -> None:
    """SearchPatterns (HNSW via pgvector) vs exact brute-force cosine: latency and recall@10."""
    group = "pattern search"
    options = bench.options
    metadata = await bench.metadata("service")
    async with bench.channel("pattern") as channel:
        stub = pattern_pb2_grpc.PatternServiceStub(channel)
        index = await stub.GetPatternIndex(pattern_pb2.GetPatternIndexRequest(), metadata=metadata)
        dimension = index.index.dimension
        print(f"  upserting {options.patterns:,} patterns of dimension {dimension}…", flush=True)
        vectors = seeding.random_vectors(options.patterns, dimension, seed=1)
        began = time.perf_counter()

        async def upsert(position: int) -> None:
            await stub.UpsertPattern(
                pattern_pb2.UpsertPatternRequest(
                    fingerprint=f"bench-{position}",
                    type="bench",
                    embedding=pattern_pb2.Vector(values=vectors[position]),
                ),
                metadata=metadata,
            )

        await seeding.run_bounded(
            [bind(upsert, i) for i in range(options.patterns)], options.concurrency
        )
        while True:
            index = await stub.GetPatternIndex(
                pattern_pb2.GetPatternIndexRequest(), metadata=metadata
            )
            if index.index.pending_count == 0:
                break
            await asyncio.sleep(0.2)  # polling the indexer's progress
        seeded = time.perf_counter() - began
        queries = seeding.random_vectors(max(options.recall_queries, 50), dimension, seed=2)
        requests = [
            pattern_pb2.SearchPatternsRequest(vector=pattern_pb2.Vector(values=q), top_k=10)
            for q in queries
        ]
        found = [
            [
                r.pattern.embedding_id
                for r in (await stub.SearchPatterns(q, metadata=metadata)).results
            ]
            for q in requests[: options.recall_queries]
        ]
    conn = await asyncpg.connect(bench.stack.database_url)
    try:
        extension = await conn.fetchval(
            "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"
            " WHERE e.extname = 'vector'"
        )
        exact_sql = (
            "SELECT embedding_id::text FROM pattern.pattern_vectors"
            f' ORDER BY embedding OPERATOR("{extension}".<=>) $1::text::"{extension}".vector'
            " LIMIT 10"
        )
        await conn.execute("SET enable_indexscan = off")
        truth = [
            [row[0] for row in await conn.fetch(exact_sql, _vector_text(q))]
            for q in queries[: options.recall_queries]
        ]
    finally:
        await conn.close()
    recall = sum(
        len(set(got) & set(want)) / max(1, len(want))
        for got, want in zip(found, truth, strict=True)
    ) / max(1, len(truth))
    exact = await bench.measure(
        bench.workload(
            "exact cosine (asyncpg, seq scan)",
            "asyncpg",
            bench.stack.database_url,
            op={
                "kind": "fetch",
                "sql": exact_sql,
                "args": [[_vector_text(q)] for q in queries],
                "settings": {"enable_indexscan": "off"},
            },
        )
    )
    result = await bench.measure(
        bench.workload(
            "SearchPatterns",
            "grpc",
            bench.stack.addresses["pattern"],
            method="/sensei.pattern.v1.PatternService/SearchPatterns",
            metadata=metadata,
            requests={"kind": "fixed", "payloads": [b64(r) for r in requests]},
        ),
        profile_pid=bench.stack.pid_of("pattern"),
    )
    size = f"{options.patterns:,} random {dimension}-d vectors, top 10"
    bench.notes.append(
        f"patterns: {options.patterns:,} upserted over gRPC and indexed in {seeded:.0f} s"
    )
    bench.lines += [
        Line.of(
            group,
            "exact brute-force cosine (raw asyncpg, no index)",
            exact,
            ratio="baseline",
            note=size,
        ),
        Line.of(
            group,
            "SearchPatterns (pgvector HNSW + ranking)",
            result,
            ratio=ratio_text(result.rps, exact.rps, "exact"),
            note=f"recall@10 {recall:.3f} over {len(truth)} queries; {size}",
        ),
    ]


def _vector_text(values: Sequence[float]) -> str:
    return "[" + ",".join(f"{v:.7g}" for v in values) + "]"
