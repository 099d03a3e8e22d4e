"""Data the scenarios need, made fast: an audit chain by COPY, two large tables, patterns.

The audit chain is computed with the org service's own `extend_chain` (RFC 8785 JSON,
SHA-256, the previous hash), so the seeded log is a valid chain that VerifyAuditChain
accepts; rows stream into `COPY` while the next ones are hashed.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

from benchmarks.baselines import AUDIT_COLUMNS
from services.org.audit.chain import GENESIS_HASH, AuditEvent, ChainHead, extend_chain

_CHUNK = 5_000


@dataclass(frozen=True)
class SeededChain:
    """An organization's audit chain made by `seed_audit_chain`."""

    org_id: str
    rows: int
    head_hash: str
    seconds: float


async def seed_audit_chain(
    conn: asyncpg.Connection, schema: str, rows: int, actor: str
) -> SeededChain:
    """COPYs a valid chain of `rows` entries of a new organization into `schema`.audit_logs."""
    loop = asyncio.get_running_loop()
    began = loop.time()
    org_id = str(uuid.uuid4())
    base = datetime.now(UTC) - timedelta(days=30)
    head = ChainHead(org_id, 0, GENESIS_HASH, None, 0)

    async def records() -> AsyncIterator[tuple[object, ...]]:
        nonlocal head
        seq = 0
        while seq < rows:
            count = min(_CHUNK, rows - seq)
            # Create times never decrease along a chain (one per chunk, a millisecond apart).
            created_at = base + timedelta(milliseconds=seq // _CHUNK)
            events = [
                AuditEvent(
                    event_id=str(uuid.uuid4()),
                    org_id=org_id,
                    user_id=None,
                    actor=actor,
                    action="bench.seed",
                    resource_type="bench",
                    resource_id=f"r{seq + i}",
                    ip_address="127.0.0.1",
                    service="bench",
                    occurred_at=created_at,
                    details={},
                )
                for i in range(count)
            ]
            entries = extend_chain(head, events, [str(uuid.uuid4()) for _ in events], created_at)
            head = ChainHead(org_id, entries[-1].seq, entries[-1].entry_hash, created_at, 0)
            seq += count
            for e in entries:
                yield (
                    e.id,
                    e.org_id,
                    e.seq,
                    e.event_id,
                    e.user_id,
                    e.actor,
                    e.action,
                    e.resource_type,
                    e.resource_id,
                    e.ip_address,
                    e.service,
                    "{}",
                    e.occurred_at,
                    e.created_at,
                    e.prev_hash,
                    e.entry_hash,
                )
            await asyncio.sleep(0)  # lets the COPY send what is buffered

    await conn.copy_records_to_table(
        "audit_logs", schema_name=schema, records=records(), columns=AUDIT_COLUMNS
    )
    await conn.execute(
        f'INSERT INTO "{schema}".audit_chain_heads (org_id, seq, head_hash, appended_at)'
        " VALUES ($1, $2, $3, $4)",
        org_id,
        head.seq,
        head.head_hash,
        head.appended_at,
    )
    await settle(conn, f'"{schema}".audit_logs')
    return SeededChain(org_id, rows, head.head_hash, loop.time() - began)


async def settle(conn: asyncpg.Connection, table: str) -> None:
    """VACUUM ANALYZE and CHECKPOINT now, so autovacuum and dirty buffers of a bulk load do
    not land in the middle of a later measurement."""
    await conn.execute(f"VACUUM (ANALYZE) {table}")
    await conn.execute("CHECKPOINT")


ORDERS_COLUMNS = ("customer_id", "amount", "status", "created_at", "note")


async def create_checksum_databases(
    admin: asyncpg.Connection,
    dsn_of: Callable[[str], str],
    rows: int,
    changes: int,
    prefix: str = "bench",
) -> tuple[str, str, set[str]]:
    """Databases <prefix>_src and <prefix>_tgt with `public.orders` of `rows` rows, the target
    with `changes` rows changed, deleted or added. Returns their URLs and the differing ids."""
    source_name, target_name = f"{prefix}_src", f"{prefix}_tgt"
    await admin.execute(f"CREATE DATABASE {source_name}")
    source = await asyncpg.connect(dsn_of(source_name))
    try:
        await source.execute(
            "CREATE TABLE orders (id bigint PRIMARY KEY, customer_id integer NOT NULL,"
            " amount numeric(12, 2) NOT NULL, status text NOT NULL,"
            " created_at timestamptz NOT NULL, note text)"
        )
        await source.execute(
            "INSERT INTO orders SELECT g, g % 9973, round((g % 100000) / 7.0, 2),"
            " (ARRAY['new', 'paid', 'shipped', 'returned'])[1 + g % 4],"
            " timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second',"
            " CASE WHEN g % 5 = 0 THEN NULL ELSE md5(g::text) END"
            " FROM generate_series(1, $1::bigint) AS g",
            rows,
        )
        await settle(source, "orders")
    finally:
        await source.close()
    await admin.execute(f"CREATE DATABASE {target_name} TEMPLATE {source_name} STRATEGY FILE_COPY")
    rng = random.Random(7)
    picked = rng.sample(range(1, rows + 1), changes)
    third = max(1, changes // 3)
    updated, deleted = picked[:third], picked[third : 2 * third]
    added = [rows + 1 + i for i in range(changes - 2 * third)]
    target = await asyncpg.connect(dsn_of(target_name))
    try:
        await target.execute(
            "UPDATE orders SET amount = amount + 0.01 WHERE id = ANY($1::bigint[])", updated
        )
        await target.execute("DELETE FROM orders WHERE id = ANY($1::bigint[])", deleted)
        await target.execute(
            "INSERT INTO orders SELECT g, 1, 1.00, 'new', now(), 'added'"
            " FROM unnest($1::bigint[]) AS g",
            added,
        )
        await settle(target, "orders")
    finally:
        await target.close()
    differing = {str(key) for key in (*updated, *deleted, *added)}
    return dsn_of(source_name), dsn_of(target_name), differing


def random_vectors(count: int, dimension: int, seed: int) -> list[list[float]]:
    """Gaussian vectors (cosine treats them as random directions)."""
    rng = random.Random(seed)
    return [[rng.gauss(0.0, 1.0) for _ in range(dimension)] for _ in range(count)]


async def run_bounded(jobs: list[Callable[[], Awaitable[None]]], concurrency: int) -> None:
    """Runs the jobs, at most `concurrency` at a time."""
    gate = asyncio.Semaphore(concurrency)

    async def one(job: Callable[[], Awaitable[None]]) -> None:
        async with gate:
            await job()

    await asyncio.gather(*(one(job) for job in jobs))
