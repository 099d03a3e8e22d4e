"""The pattern store's queries on patterns: create, read, page, update and delete.

Table names are unqualified: connections have the service schema on their search_path.
Vectors travel as `real[]`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg

from services.pattern.domain import IndexState, Pattern, PatternInput
from shared.db import Connection
from shared.pagination import keyset_after

_COLUMNS_BUT_EMBEDDING = (
    "id::text, type, fingerprint, embedding_id, success_count, failure_count, metadata::text,"
    " source_text, embedder, index_state, index_revision, created_at, updated_at, version"
)
PATTERN_COLUMNS = f"{_COLUMNS_BUT_EMBEDDING}, embedding"
# Search hits: everything the API returns, not the vector (the index already compared it).
SEARCH_HIT_COLUMNS = _COLUMNS_BUT_EMBEDDING


async def insert_pattern_if_absent(
    conn: Connection, given: PatternInput, type_: str, embedding: Sequence[float], actor: str
) -> Pattern | None:
    """Creates the pattern unless its fingerprint exists (then None; a concurrent creator
    is waited for). Takes the embedding id back out of the deletion queue."""
    row = await conn.fetchrow(
        "INSERT INTO patterns (type, fingerprint, embedding_id, metadata, source_text, embedding,"
        " updated_by, embedder) VALUES ($1, $2, $3, $4::jsonb, $5, $6::real[], $7, $8)"
        f" ON CONFLICT (fingerprint) DO NOTHING RETURNING {PATTERN_COLUMNS}",
        type_,
        given.fingerprint,
        given.embedding_id,
        json.dumps(dict(given.metadata or {})),
        given.source_text,
        list(embedding),
        actor,
        given.embedder or "",
    )
    if row is None:
        return None
    await conn.execute("DELETE FROM index_deletions WHERE embedding_id = $1", given.embedding_id)
    return pattern_of(row)


async def pattern_by_id(conn: Connection, pattern_id: str, *, lock: bool = False) -> Pattern | None:
    """One pattern by id, optionally locked (FOR NO KEY UPDATE) until the transaction ends."""
    row = await conn.fetchrow(
        f"SELECT {PATTERN_COLUMNS} FROM patterns WHERE id = $1{_lock(lock)}", pattern_id
    )
    return None if row is None else pattern_of(row)


async def pattern_by_fingerprint(
    conn: Connection, fingerprint: str, *, lock: bool = False
) -> Pattern | None:
    """One pattern by fingerprint, optionally locked until the transaction ends."""
    row = await conn.fetchrow(
        f"SELECT {PATTERN_COLUMNS} FROM patterns WHERE fingerprint = $1{_lock(lock)}", fingerprint
    )
    return None if row is None else pattern_of(row)


async def patterns_by_embedding_id(
    conn: Connection, embedding_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Pattern]:
    """The existing patterns among these embedding ids, without their vectors."""
    rows = await conn.fetch(
        f"SELECT {SEARCH_HIT_COLUMNS} FROM patterns WHERE embedding_id = ANY($1::uuid[])",
        list(embedding_ids),
    )
    patterns = [pattern_of(row) for row in rows]
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
        f"SELECT {PATTERN_COLUMNS} FROM patterns WHERE {' AND '.join(conditions)}"
        f" ORDER BY created_at, id LIMIT ${len(args)}",
        *args,
    )
    return [pattern_of(row) for row in rows]


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
        elif column in ("type", "source_text", "embedder"):
            args.append(value)
            assignments.append(f"{column} = ${len(args)}")
        else:
            raise ValueError(f"not an updatable pattern column: {column}")
    if reindex:
        assignments.append("index_revision = index_revision + 1")
        assignments.append("index_state = 'PENDING'")
    row = await conn.fetchrow(
        f"UPDATE patterns SET {', '.join(assignments)} WHERE id = $1 RETURNING {PATTERN_COLUMNS}",
        *args,
    )
    assert row is not None  # callers hold the row lock
    return pattern_of(row)


async def delete_pattern(conn: Connection, pattern: Pattern) -> None:
    """Deletes the pattern and queues its vector's removal from the index."""
    await conn.execute("DELETE FROM patterns WHERE id = $1", pattern.id)
    await conn.execute(
        "INSERT INTO index_deletions (embedding_id) VALUES ($1)", pattern.embedding_id
    )


def _lock(lock: bool) -> str:
    return " FOR NO KEY UPDATE" if lock else ""


def pattern_of(row: asyncpg.Record) -> Pattern:
    """The Pattern of a row selected as `PATTERN_COLUMNS` (or `SEARCH_HIT_COLUMNS`)."""
    return Pattern(
        id=row["id"],
        type=row["type"],
        fingerprint=row["fingerprint"],
        embedding_id=row["embedding_id"],
        success_count=row["success_count"],
        failure_count=row["failure_count"],
        metadata=json.loads(row["metadata"]),
        source_text=row["source_text"],
        embedding=tuple(row.get("embedding") or ()),
        embedder=row["embedder"],
        index_state=IndexState(row["index_state"]),
        index_revision=row["index_revision"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        version=row["version"],
    )
