"""The pattern store's queries for the vector index: its work queue, deletions, lock and counts.

Table names are unqualified: connections have the service schema on their search_path.
`INDEX_CHANNEL` is notified (at commit) whenever the index has work to do, so the indexer wakes
at once.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from services.pattern.domain import IndexState
from shared.db import Connection
from shared.pagination import keyset_after

INDEX_CHANNEL = "sensei_pattern_index"


@dataclass(frozen=True)
class IndexCounts:
    """How many patterns exist, and how many of them are not (or cannot be) indexed."""

    patterns: int
    pending: int
    stale: int


async def index_counts(conn: Connection) -> IndexCounts:
    """Pattern counts by index state."""
    rows = await conn.fetch("SELECT index_state, count(*) AS n FROM patterns GROUP BY 1")
    by_state = {row["index_state"]: int(row["n"]) for row in rows}
    return IndexCounts(
        patterns=sum(by_state.values()),
        pending=by_state.get(IndexState.PENDING.value, 0),
        stale=by_state.get(IndexState.STALE.value, 0),
    )


async def notify_indexer(conn: Connection) -> None:
    """Wakes the indexers when the transaction commits."""
    await conn.execute("SELECT pg_notify($1, '')", INDEX_CHANNEL)


# --- the indexer's queries --------------------------------------------------------------


@dataclass(frozen=True)
class IndexWork:
    """One pattern revision to write to the index."""

    pattern_id: str
    embedding_id: uuid.UUID
    fingerprint: str
    pattern_type: str
    embedding: tuple[float, ...]
    source_text: str | None
    index_revision: int
    embedder: str


async def pending_work(
    conn: Connection, *, after: Sequence[Any] | None, limit: int
) -> tuple[list[IndexWork], list[Any] | None]:
    """The next pending patterns in (created_at, id) order, and the keyset to continue."""
    keyset, args = keyset_after(("created_at", "id"), after, first_param=2)
    rows = await conn.fetch(
        "SELECT id::text, embedding_id, fingerprint, type, embedding, source_text,"
        " index_revision, embedder, created_at FROM patterns"
        f" WHERE index_state = 'PENDING' AND {keyset} ORDER BY created_at, id LIMIT $1",
        limit,
        *args,
    )
    work = [
        IndexWork(
            pattern_id=row["id"],
            embedding_id=row["embedding_id"],
            fingerprint=row["fingerprint"],
            pattern_type=row["type"],
            embedding=tuple(row["embedding"]),
            source_text=row["source_text"],
            index_revision=row["index_revision"],
            embedder=row["embedder"],
        )
        for row in rows
    ]
    last = [rows[-1]["created_at"], rows[-1]["id"]] if rows else None
    return work, last


async def mark_indexed(conn: Connection, written: Sequence[IndexWork]) -> int:
    """Marks the written revisions indexed (a pattern changed since stays pending)."""
    if not written:
        return 0
    result = await conn.execute(
        "UPDATE patterns p SET index_state = 'INDEXED', indexed_at = now()"
        " FROM unnest($1::uuid[], $2::bigint[]) AS w(id, revision)"
        " WHERE p.id = w.id AND p.index_revision = w.revision AND p.index_state = 'PENDING'",
        [work.pattern_id for work in written],
        [work.index_revision for work in written],
    )
    return int(result.split()[-1])


async def mark_stale(conn: Connection, stale: Sequence[IndexWork]) -> None:
    """Marks revisions whose vector cannot enter the index (another embedder, no text)."""
    if not stale:
        return
    await conn.execute(
        "UPDATE patterns p SET index_state = 'STALE'"
        " FROM unnest($1::uuid[], $2::bigint[]) AS w(id, revision)"
        " WHERE p.id = w.id AND p.index_revision = w.revision AND p.index_state = 'PENDING'",
        [work.pattern_id for work in stale],
        [work.index_revision for work in stale],
    )


async def replace_embedding(
    conn: Connection, work: IndexWork, embedding: Sequence[float], embedder: str
) -> None:
    """Stores a vector embedded again from the pattern's text by `embedder` (same revision:
    the text and so the meaning did not change, only the embedder or its dimension)."""
    await conn.execute(
        "UPDATE patterns SET embedding = $3::real[], embedder = $4"
        " WHERE id = $1 AND index_revision = $2",
        work.pattern_id,
        work.index_revision,
        list(embedding),
        embedder,
    )


async def mark_all_pending(conn: Connection) -> int:
    """Marks every pattern pending (before a rebuild); returns how many patterns exist."""
    result = await conn.execute("UPDATE patterns SET index_state = 'PENDING'")
    return int(result.split()[-1])


@dataclass(frozen=True)
class QueuedDeletion:
    """One vector to remove from the index."""

    position: int
    embedding_id: uuid.UUID


async def queued_deletions(conn: Connection, limit: int) -> list[QueuedDeletion]:
    """The oldest queued deletions."""
    rows = await conn.fetch(
        "SELECT position, embedding_id FROM index_deletions ORDER BY position LIMIT $1", limit
    )
    return [QueuedDeletion(row["position"], row["embedding_id"]) for row in rows]


async def forget_deletions(conn: Connection, done: Sequence[QueuedDeletion]) -> None:
    """Removes performed deletions from the queue."""
    await conn.execute(
        "DELETE FROM index_deletions WHERE position = ANY($1::bigint[])",
        [deletion.position for deletion in done],
    )


# --- locks ----------------------------------------------------------------------------

_INDEXER_LOCK = 0x5E45E1_0002


async def try_lock_indexer(conn: Connection) -> bool:
    """Takes the indexer's session lock if free (on a dedicated connection, never a pooled
    one: the pool releases connections without resetting their session)."""
    return bool(await conn.fetchval("SELECT pg_try_advisory_lock($1)", _INDEXER_LOCK))


async def lock_indexer(conn: Connection) -> None:
    """Waits for the indexer's session lock."""
    await conn.execute("SELECT pg_advisory_lock($1)", _INDEXER_LOCK)


async def unlock_indexer(conn: Connection) -> None:
    """Releases the indexer's session lock."""
    await conn.execute("SELECT pg_advisory_unlock($1)", _INDEXER_LOCK)
