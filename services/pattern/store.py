"""All SQL of the pattern service (asyncpg). One function per query; domain objects out.

Table names are unqualified: connections have the service schema on their search_path.
Vectors travel as `real[]`. `INDEX_CHANNEL` is notified (at commit) whenever the index has
work to do, so the indexer wakes at once.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from services.pattern.domain import IndexState, Outcome, Pattern, PatternInput, pattern_name
from shared.db import Connection
from shared.errors import NotFound
from shared.pagination import keyset_after

INDEX_CHANNEL = "sensei_pattern_index"

_COLUMNS = (
    "id::text, type, fingerprint, embedding_id, success_count, failure_count, metadata::text,"
    " source_text, embedding, index_state, index_revision, created_at, updated_at, version"
)


# --- patterns -------------------------------------------------------------------------


async def insert_pattern_if_absent(
    conn: Connection, given: PatternInput, type_: str, embedding: Sequence[float], actor: str
) -> Pattern | None:
    """Creates the pattern unless its fingerprint exists (then None; a concurrent creator
    is waited for). Takes the embedding id back out of the deletion queue."""
    row = await conn.fetchrow(
        "INSERT INTO patterns (type, fingerprint, embedding_id, metadata, source_text, embedding,"
        " updated_by) VALUES ($1, $2, $3, $4::jsonb, $5, $6::real[], $7)"
        f" ON CONFLICT (fingerprint) DO NOTHING RETURNING {_COLUMNS}",
        type_,
        given.fingerprint,
        given.embedding_id,
        json.dumps(dict(given.metadata or {})),
        given.source_text,
        list(embedding),
        actor,
    )
    if row is None:
        return None
    await conn.execute("DELETE FROM index_deletions WHERE embedding_id = $1", given.embedding_id)
    return _pattern(row)


async def pattern_by_id(conn: Connection, pattern_id: str, *, lock: bool = False) -> Pattern | None:
    """One pattern by id, optionally locked (FOR NO KEY UPDATE) until the transaction ends."""
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM patterns WHERE id = $1{_lock(lock)}", pattern_id
    )
    return None if row is None else _pattern(row)


async def pattern_by_fingerprint(
    conn: Connection, fingerprint: str, *, lock: bool = False
) -> Pattern | None:
    """One pattern by fingerprint, optionally locked until the transaction ends."""
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM patterns WHERE fingerprint = $1{_lock(lock)}", fingerprint
    )
    return None if row is None else _pattern(row)


async def patterns_by_embedding_id(
    conn: Connection, embedding_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Pattern]:
    """The existing patterns among these embedding ids."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM patterns WHERE embedding_id = ANY($1::uuid[])",
        list(embedding_ids),
    )
    patterns = [_pattern(row) for row in rows]
    return {pattern.embedding_id: pattern for pattern in patterns}


async def patterns_page(
    conn: Connection,
    *,
    pattern_type: str | None,
    index_state: IndexState | None,
    after: Sequence[Any] | None,
    limit: int,
) -> list[Pattern]:
    """Patterns in (created_at, id) order after a keyset position, optionally filtered."""
    keyset, args = keyset_after(("created_at", "id"), after)
    conditions = [keyset]
    if pattern_type is not None:
        args.append(pattern_type)
        conditions.append(f"type = ${len(args)}")
    if index_state is not None:
        args.append(index_state.value)
        conditions.append(f"index_state = ${len(args)}")
    args.append(limit)
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM patterns WHERE {' AND '.join(conditions)}"
        f" ORDER BY created_at, id LIMIT ${len(args)}",
        *args,
    )
    return [_pattern(row) for row in rows]


async def update_pattern(
    conn: Connection, pattern_id: str, values: Mapping[str, Any], *, reindex: bool, actor: str
) -> Pattern:
    """Writes changed columns and bumps the version; a reindex marks the pattern pending."""
    assignments = ["version = version + 1", "updated_at = now()", "updated_by = $2"]
    args: list[Any] = [pattern_id, actor]
    for column, value in values.items():
        if column == "metadata":
            args.append(json.dumps(value))
            assignments.append(f"metadata = ${len(args)}::jsonb")
        elif column == "embedding":
            args.append(list(value))
            assignments.append(f"embedding = ${len(args)}::real[]")
        elif column in ("type", "source_text"):
            args.append(value)
            assignments.append(f"{column} = ${len(args)}")
        else:
            raise ValueError(f"not an updatable pattern column: {column}")
    if reindex:
        assignments.append("index_revision = index_revision + 1")
        assignments.append("index_state = 'PENDING'")
    row = await conn.fetchrow(
        f"UPDATE patterns SET {', '.join(assignments)} WHERE id = $1 RETURNING {_COLUMNS}", *args
    )
    assert row is not None  # callers hold the row lock
    return _pattern(row)


async def delete_pattern(conn: Connection, pattern: Pattern) -> None:
    """Deletes the pattern and queues its vector's removal from the index."""
    await conn.execute("DELETE FROM patterns WHERE id = $1", pattern.id)
    await conn.execute(
        "INSERT INTO index_deletions (embedding_id) VALUES ($1)", pattern.embedding_id
    )


async def count_outcome(
    conn: Connection, pattern_id: str, outcome: Outcome, actor: str
) -> Pattern | None:
    """Adds one to the outcome's counter in one atomic UPDATE; None if the pattern is gone."""
    column = "success_count" if outcome is Outcome.SUCCESS else "failure_count"
    row = await conn.fetchrow(
        f"UPDATE patterns SET {column} = {column} + 1, version = version + 1,"
        f" updated_at = now(), updated_by = $2 WHERE id = $1 RETURNING {_COLUMNS}",
        pattern_id,
        actor,
    )
    return None if row is None else _pattern(row)


async def claim_outcome_request(
    conn: Connection, caller: str, request_id: str, pattern_id: str, outcome: Outcome
) -> bool:
    """Claims a request id for one outcome; False when the caller used it before (a
    concurrent first use is waited for)."""
    try:
        claimed = await conn.fetchval(
            "INSERT INTO outcome_requests (caller, request_id, pattern_id, outcome)"
            " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING true",
            caller,
            request_id,
            pattern_id,
            outcome.value,
        )
    except asyncpg.ForeignKeyViolationError:
        # Deleted since the caller read it.
        raise NotFound("Pattern", pattern_name(pattern_id)) from None
    return bool(claimed)


async def claim_outcome_migration(
    conn: Connection,
    *,
    pattern_id: str,
    migration_id: str,
    org_id: str,
    outcome: Outcome,
    caller: str,
) -> Outcome | None:
    """Claims the (pattern, migration) pair for one outcome: None when this call claimed
    it, else the outcome recorded first (a concurrent first claim is waited for)."""
    try:
        claimed = await conn.fetchval(
            "INSERT INTO pattern_outcomes (pattern_id, migration_id, org_id, outcome, caller)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING true",
            pattern_id,
            migration_id,
            org_id,
            outcome.value,
            caller,
        )
    except asyncpg.ForeignKeyViolationError:
        raise NotFound("Pattern", pattern_name(pattern_id)) from None
    if claimed:
        return None
    first = await conn.fetchval(
        "SELECT outcome FROM pattern_outcomes WHERE pattern_id = $1 AND migration_id = $2",
        pattern_id,
        migration_id,
    )
    return Outcome(first)


@dataclass(frozen=True)
class OutcomeRequest:
    """What an earlier RecordPatternOutcome with a request id counted."""

    pattern_id: str
    outcome: Outcome


async def outcome_request(conn: Connection, caller: str, request_id: str) -> OutcomeRequest | None:
    """The outcome an earlier call with this request id counted, if its pattern still exists."""
    row = await conn.fetchrow(
        "SELECT pattern_id::text, outcome FROM outcome_requests"
        " WHERE caller = $1 AND request_id = $2",
        caller,
        request_id,
    )
    return None if row is None else OutcomeRequest(row["pattern_id"], Outcome(row["outcome"]))


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


async def pending_work(
    conn: Connection, *, after: Sequence[Any] | None, limit: int
) -> tuple[list[IndexWork], list[Any] | None]:
    """The next pending patterns in (created_at, id) order, and the keyset to continue."""
    keyset, args = keyset_after(("created_at", "id"), after, first_param=2)
    rows = await conn.fetch(
        "SELECT id::text, embedding_id, fingerprint, type, embedding, source_text,"
        " index_revision, created_at FROM patterns"
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
    """Marks revisions whose vector cannot enter the index (wrong dimension, no text)."""
    if not stale:
        return
    await conn.execute(
        "UPDATE patterns p SET index_state = 'STALE'"
        " FROM unnest($1::uuid[], $2::bigint[]) AS w(id, revision)"
        " WHERE p.id = w.id AND p.index_revision = w.revision AND p.index_state = 'PENDING'",
        [work.pattern_id for work in stale],
        [work.index_revision for work in stale],
    )


async def replace_embedding(conn: Connection, work: IndexWork, embedding: Sequence[float]) -> None:
    """Stores a vector embedded again from the pattern's text (same revision: the text and
    so the meaning did not change, only the dimension)."""
    await conn.execute(
        "UPDATE patterns SET embedding = $3::real[] WHERE id = $1 AND index_revision = $2",
        work.pattern_id,
        work.index_revision,
        list(embedding),
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

# One indexer at a time across replicas: pushes and deletions must not interleave.
_INDEXER_LOCK = 0x5E45E1_0002


async def try_lock_indexer(conn: Connection) -> bool:
    """Takes the indexer's session lock if free."""
    return bool(await conn.fetchval("SELECT pg_try_advisory_lock($1)", _INDEXER_LOCK))


async def lock_indexer(conn: Connection) -> None:
    """Waits for the indexer's session lock."""
    await conn.execute("SELECT pg_advisory_lock($1)", _INDEXER_LOCK)


async def unlock_indexer(conn: Connection) -> None:
    """Releases the indexer's session lock."""
    await conn.execute("SELECT pg_advisory_unlock($1)", _INDEXER_LOCK)


# --- rows -----------------------------------------------------------------------------


def _lock(lock: bool) -> str:
    return " FOR NO KEY UPDATE" if lock else ""


def _pattern(row: asyncpg.Record) -> Pattern:
    return Pattern(
        id=row["id"],
        type=row["type"],
        fingerprint=row["fingerprint"],
        embedding_id=row["embedding_id"],
        success_count=row["success_count"],
        failure_count=row["failure_count"],
        metadata=json.loads(row["metadata"]),
        source_text=row["source_text"],
        embedding=tuple(row["embedding"]),
        index_state=IndexState(row["index_state"]),
        index_revision=row["index_revision"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        version=row["version"],
    )
