"""CHECKSUM against reladiff on any two databases, and the PostgreSQL → PostgreSQL line at scale.

`versus_reladiff` is the measurement of the `checksum` scenario (benchmarks/comparisons.py)
for a source and target of any engines: a migration between them, a CHECKSUM verification
over gRPC timed from CreateVerification to its end (queue, worker, bisection, certificate),
then reladiff's hashdiff on the same two tables; both must find exactly the planted keys.
`checksum_large` is that line PostgreSQL → PostgreSQL at `--checksum-large-rows` (2,000,000):
the size at which the advantage has to hold (issue 14).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

import asyncpg
from google.protobuf import struct_pb2

from benchmarks import seeding
from benchmarks.baselines import reladiff_in_process
from benchmarks.bench import Bench
from benchmarks.comparisons import _checksum_keys, _watch_until_done
from benchmarks.report import Line
from sensei.migration.v1 import migration_pb2, migration_pb2_grpc
from sensei.verification.v1 import verification_pb2, verification_pb2_grpc


@dataclass(frozen=True)
class Sides:
    """The two databases of one comparison, as reladiff and as a migration name them."""

    label: str
    source_url: str
    target_url: str
    source_config: Mapping[str, str]
    target_config: Mapping[str, str]
    rows: int
    differing: frozenset[str]


async def versus_reladiff(bench: Bench, group: str, sides: Sides) -> None:
    """A CHECKSUM verification of `public.orders` and reladiff on it: two lines."""
    metadata = await bench.metadata("owner")
    source, target = struct_pb2.Struct(), struct_pb2.Struct()
    source.update(dict(sides.source_config))
    target.update(dict(sides.target_config))
    request = migration_pb2.CreateMigrationRequest(
        parent=f"organizations/{bench.stack.org_id}",
        migration=migration_pb2.Migration(
            display_name=f"bench checksum {sides.label}",
            source_config=source,
            target_config=target,
        ),
    )
    async with bench.channel("migration") as m_channel, bench.channel("verification") as v_channel:
        created = await migration_pb2_grpc.MigrationServiceStub(m_channel).CreateMigration(
            request, metadata=metadata
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
    print(f"  CHECKSUM {sides.label}: {seconds:.1f} s, {len(found)} keys", flush=True)
    threads = bench.options.reladiff_threads
    theirs = await reladiff_in_process(
        sides.source_url,
        sides.target_url,
        table="orders",
        key="id",
        columns=list(seeding.ORDERS_COLUMNS),
        threads=threads,
    )
    print(f"  reladiff {sides.label}: {theirs['seconds']:.1f} s", flush=True)
    planted = set(sides.differing)
    status = verification_pb2.VerificationStatus.Name(final.status)
    bench.lines += [
        Line(
            group,
            f"reladiff 0.6.0 hashdiff (threads={threads}), {sides.label}",
            sides.rows / theirs["seconds"],
            "rows/s",
            ratio="baseline",
            note=f"{theirs['differences']} differing keys found of {len(planted)}"
            f"{'' if set(theirs['keys']) == planted else ' (differs from the truth)'};"
            f" {theirs['seconds']:.1f} s",
        ),
        Line(
            group,
            f"CHECKSUM verification, {sides.label}",
            sides.rows / seconds,
            "rows/s",
            ratio=f"{theirs['seconds'] / seconds:.2f}× reladiff (time ratio)",
            note=f"{status}, {len(found)} differing keys found of {len(planted)}"
            f"{'' if found == planted else ' (MISMATCH with the truth)'};"
            f" {seconds:.1f} s from CreateVerification to done",
        ),
    ]


async def checksum_large(bench: Bench) -> None:
    """CHECKSUM vs reladiff PostgreSQL → PostgreSQL at `--checksum-large-rows` rows."""
    rows = bench.options.checksum_large_rows
    print(f"  creating two databases with {rows:,} rows each…", flush=True)
    admin = await asyncpg.connect(bench.stack.dsn("postgres"))
    try:
        source, target, differing = await seeding.create_checksum_databases(
            admin, bench.stack.dsn, rows, bench.options.checksum_changes, prefix="bench_large"
        )
    finally:
        await admin.close()
    sides = Sides(
        label=f"PostgreSQL → PostgreSQL, {rows:,} rows",
        source_url=source,
        target_url=target,
        source_config={"dsn": source, "sslmode": "disable"},
        target_config={"dsn": target, "sslmode": "disable"},
        rows=rows,
        differing=frozenset(differing),
    )
    try:
        await versus_reladiff(bench, "table checksum at scale", sides)
    finally:
        admin = await asyncpg.connect(bench.stack.dsn("postgres"))
        try:
            for name in ("bench_large_src", "bench_large_tgt"):
                await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        finally:
            await admin.close()
