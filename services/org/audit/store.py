"""All SQL of the audit trail (asyncpg). One function per query; domain objects out.

Tables are unqualified: connections have the org schema on their search path.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from services.org.audit.chain import AuditEntry, ChainHead, Checkpoint
from shared.db import Connection
from shared.pagination import keyset_after

SERVICE_ROLE = "sensei_org_service"

_ENTRY_COLUMNS = (
    "id::text, org_id::text, seq, event_id::text, user_id::text, actor, action, resource_type,"
    " resource_id, ip_address, service, details::text, occurred_at, created_at, prev_hash,"
    " entry_hash"
)
_HEAD_COLUMNS = "org_id::text, seq, head_hash, appended_at, checkpoint_seq"
_CHECKPOINT_COLUMNS = "org_id::text, seq, head_hash, created_at, key_id, signature"


@dataclass(frozen=True)
class LogFilter:
    """What ListAuditLogs narrows to (None: no condition)."""

    user_id: str | None = None
    action: str | None = None
    resource_type: str | None = None
    resource_id: str | None = None
    min_seq: int | None = None
    max_seq: int | None = None


# --- the service role -----------------------------------------------------------------


async def may_assume_service_role(conn: Connection) -> bool:
    """Whether the connecting user can `SET ROLE` to the service role."""
    allowed: bool = await conn.fetchval(
        "SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = $1)"
        " AND pg_has_role(current_user, $1, 'MEMBER')",
        SERVICE_ROLE,
    )
    return allowed


async def assume_service_role(conn: Connection) -> None:
    """Runs the rest of the transaction with only the service role's privileges."""
    await conn.execute(f"SET LOCAL ROLE {SERVICE_ROLE}")


# --- appending ------------------------------------------------------------------------


async def lock_chain_heads(conn: Connection, org_ids: Sequence[str]) -> dict[str, ChainHead]:
    """The heads of these chains (created when new), locked until the transaction ends.

    Locked in org id order, so concurrent batches spanning several organizations cannot
    deadlock.
    """
    ordered = sorted(set(org_ids))
    await conn.execute(
        "INSERT INTO audit_chain_heads (org_id)"
        " SELECT id FROM unnest($1::uuid[]) AS t (id) ORDER BY id ON CONFLICT DO NOTHING",
        ordered,
    )
    rows = await conn.fetch(
        f"SELECT {_HEAD_COLUMNS} FROM audit_chain_heads WHERE org_id = ANY($1::uuid[])"
        " ORDER BY org_id FOR UPDATE",
        ordered,
    )
    return {row["org_id"]: _head(row) for row in rows}


async def lock_chain_head_if_free(conn: Connection, org_id: str) -> ChainHead | None:
    """A chain's head, locked; None when it is missing or an append holds it."""
    row = await conn.fetchrow(
        f"SELECT {_HEAD_COLUMNS} FROM audit_chain_heads WHERE org_id = $1 FOR UPDATE SKIP LOCKED",
        org_id,
    )
    return None if row is None else _head(row)


async def stored_event_ids(conn: Connection, event_ids: Sequence[str]) -> set[str]:
    """Which of these event ids are stored already."""
    rows = await conn.fetch(
        "SELECT event_id::text FROM audit_logs WHERE event_id = ANY($1::uuid[])", list(event_ids)
    )
    return {row["event_id"] for row in rows}


async def clock(conn: Connection) -> datetime:
    """The database's current time (not the transaction's start)."""
    now: datetime = await conn.fetchval("SELECT clock_timestamp()")
    return now


async def insert_entries(conn: Connection, entries: Sequence[AuditEntry]) -> None:
    """Stores new entries (one statement for the whole batch)."""
    await conn.execute(
        "INSERT INTO audit_logs (id, org_id, seq, event_id, user_id, actor, action,"
        " resource_type, resource_id, ip_address, service, details, occurred_at, created_at,"
        " prev_hash, entry_hash)"
        " SELECT id, org_id, seq, event_id, user_id, actor, action, resource_type,"
        " resource_id, ip_address, service, details::jsonb, occurred_at, created_at,"
        " prev_hash, entry_hash"
        " FROM unnest($1::uuid[], $2::uuid[], $3::bigint[], $4::uuid[], $5::uuid[], $6::text[],"
        " $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[],"
        " $13::timestamptz[], $14::timestamptz[], $15::text[], $16::text[])"
        " AS t (id, org_id, seq, event_id, user_id, actor, action, resource_type, resource_id,"
        " ip_address, service, details, occurred_at, created_at, prev_hash, entry_hash)",
        [e.id for e in entries],
        [e.org_id for e in entries],
        [e.seq for e in entries],
        [e.event_id for e in entries],
        [e.user_id for e in entries],
        [e.actor for e in entries],
        [e.action for e in entries],
        [e.resource_type for e in entries],
        [e.resource_id for e in entries],
        [e.ip_address for e in entries],
        [e.service for e in entries],
        [json.dumps(e.details) for e in entries],
        [e.occurred_at for e in entries],
        [e.created_at for e in entries],
        [e.prev_hash for e in entries],
        [e.entry_hash for e in entries],
    )


async def closed_chains(conn: Connection, org_ids: Sequence[str]) -> set[str]:
    """Which of these chains are closed (their organization was deleted)."""
    rows = await conn.fetch(
        "SELECT org_id::text FROM audit_chain_heads"
        " WHERE org_id = ANY($1::uuid[]) AND closed_at IS NOT NULL",
        list(org_ids),
    )
    return {row["org_id"] for row in rows}


async def close_chain(conn: Connection, org_id: str) -> None:
    """Closes a (locked) chain: nothing is appended after its organization's deletion."""
    await conn.execute("UPDATE audit_chain_heads SET closed_at = now() WHERE org_id = $1", org_id)


async def advance_chain_head(conn: Connection, head: ChainHead) -> None:
    """Moves a (locked) chain head to its new last entry."""
    await conn.execute(
        "UPDATE audit_chain_heads SET seq = $2, head_hash = $3, appended_at = $4 WHERE org_id = $1",
        head.org_id,
        head.seq,
        head.head_hash,
        head.appended_at,
    )


async def insert_checkpoint(conn: Connection, checkpoint: Checkpoint) -> None:
    """Stores a signed checkpoint and notes it on the (locked) chain head."""
    await conn.execute(
        "INSERT INTO audit_checkpoints (org_id, seq, head_hash, created_at, key_id, signature)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        checkpoint.org_id,
        checkpoint.seq,
        checkpoint.head_hash,
        checkpoint.created_at,
        checkpoint.key_id,
        checkpoint.signature,
    )
    await conn.execute(
        "UPDATE audit_chain_heads SET checkpoint_seq = $2, checkpoint_at = $3 WHERE org_id = $1",
        checkpoint.org_id,
        checkpoint.seq,
        checkpoint.created_at,
    )


async def chains_ahead_of_checkpoint(conn: Connection, limit: int) -> list[str]:
    """Organizations whose chain grew since its last checkpoint."""
    rows = await conn.fetch(
        "SELECT org_id::text FROM audit_chain_heads WHERE seq > checkpoint_seq"
        " ORDER BY org_id LIMIT $1",
        limit,
    )
    return [row["org_id"] for row in rows]


# --- reading --------------------------------------------------------------------------


async def audit_logs_page(
    conn: Connection, org_id: str, where: LogFilter, after: Sequence[Any] | None, limit: int
) -> list[AuditEntry]:
    """Entries of one organization, highest seq first, after the keyset position [seq]."""
    keyset, args = keyset_after(("seq",), after, descending=True)
    conditions = [keyset]
    args.append(org_id)
    conditions.append(f"org_id = ${len(args)}")
    for column, value in (
        ("user_id", where.user_id),
        ("action", where.action),
        ("resource_type", where.resource_type),
        ("resource_id", where.resource_id),
    ):
        if value is not None:
            args.append(value)
            conditions.append(f"{column} = ${len(args)}")
    for condition, bound in (
        ("seq >=", where.min_seq),
        ("seq <=", where.max_seq),
    ):
        if bound is not None:
            args.append(bound)
            conditions.append(f"{condition} ${len(args)}")
    args.append(limit)
    rows = await conn.fetch(
        f"SELECT {_ENTRY_COLUMNS} FROM audit_logs WHERE {' AND '.join(conditions)}"
        f" ORDER BY seq DESC LIMIT ${len(args)}",
        *args,
    )
    return [_entry(row) for row in rows]


async def seq_bounds(
    conn: Connection, org_id: str, start: datetime | None, end: datetime | None
) -> tuple[int, int] | None:
    """The seq range of entries stored in [start, end); None when there are none.

    Create times never decrease along a chain, so a time range is a seq range.
    """
    low, high = 1, None
    if start is not None:
        low = await conn.fetchval(
            "SELECT seq FROM audit_logs WHERE org_id = $1 AND created_at >= $2"
            " ORDER BY created_at, seq LIMIT 1",
            org_id,
            start,
        )
    if end is not None:
        high = await conn.fetchval(
            "SELECT seq FROM audit_logs WHERE org_id = $1 AND created_at < $2"
            " ORDER BY created_at DESC, seq DESC LIMIT 1",
            org_id,
            end,
        )
    else:
        high = await conn.fetchval(
            "SELECT seq FROM audit_logs WHERE org_id = $1 ORDER BY seq DESC LIMIT 1", org_id
        )
    if low is None or high is None or low > high:
        return None
    return int(low), int(high)


async def chain_head(conn: Connection, org_id: str) -> ChainHead | None:
    """A chain's head record."""
    row = await conn.fetchrow(
        f"SELECT {_HEAD_COLUMNS} FROM audit_chain_heads WHERE org_id = $1", org_id
    )
    return None if row is None else _head(row)


async def furthest_seq(conn: Connection, org_id: str) -> int:
    """The highest seq anything knows of: entries, checkpoints, the head record."""
    seq: int = await conn.fetchval(
        "SELECT GREATEST("
        " (SELECT max(seq) FROM audit_logs WHERE org_id = $1),"
        " (SELECT max(seq) FROM audit_checkpoints WHERE org_id = $1),"
        " (SELECT seq FROM audit_chain_heads WHERE org_id = $1), 0)",
        org_id,
    )
    return seq


async def entries_after(
    conn: Connection, org_id: str, after_seq: int, end_seq: int, limit: int
) -> list[AuditEntry]:
    """Entries with after_seq < seq <= end_seq, in seq order."""
    rows = await conn.fetch(
        f"SELECT {_ENTRY_COLUMNS} FROM audit_logs WHERE org_id = $1 AND seq > $2 AND seq <= $3"
        " ORDER BY seq LIMIT $4",
        org_id,
        after_seq,
        end_seq,
        limit,
    )
    return [_entry(row) for row in rows]


async def entry_hash_at(conn: Connection, org_id: str, seq: int) -> str | None:
    """The stored hash of one entry."""
    value: str | None = await conn.fetchval(
        "SELECT entry_hash FROM audit_logs WHERE org_id = $1 AND seq = $2", org_id, seq
    )
    return value


async def checkpoints_between(
    conn: Connection, org_id: str, first_seq: int, last_seq: int
) -> list[Checkpoint]:
    """Checkpoints of one chain in a seq range, in seq order."""
    rows = await conn.fetch(
        f"SELECT {_CHECKPOINT_COLUMNS} FROM audit_checkpoints"
        " WHERE org_id = $1 AND seq BETWEEN $2 AND $3 ORDER BY seq",
        org_id,
        first_seq,
        last_seq,
    )
    return [_checkpoint(row) for row in rows]


async def latest_checkpoint(conn: Connection, org_id: str) -> Checkpoint | None:
    """The checkpoint with the highest seq."""
    row = await conn.fetchrow(
        f"SELECT {_CHECKPOINT_COLUMNS} FROM audit_checkpoints WHERE org_id = $1"
        " ORDER BY seq DESC LIMIT 1",
        org_id,
    )
    return None if row is None else _checkpoint(row)


# --- rows -----------------------------------------------------------------------------


def _head(row: asyncpg.Record) -> ChainHead:
    return ChainHead(
        org_id=row["org_id"],
        seq=row["seq"],
        head_hash=row["head_hash"],
        appended_at=row["appended_at"],
        checkpoint_seq=row["checkpoint_seq"],
    )


def _entry(row: asyncpg.Record) -> AuditEntry:
    return AuditEntry(
        id=row["id"],
        org_id=row["org_id"],
        seq=row["seq"],
        event_id=row["event_id"],
        user_id=row["user_id"],
        actor=row["actor"],
        action=row["action"],
        resource_type=row["resource_type"],
        resource_id=row["resource_id"],
        ip_address=row["ip_address"],
        service=row["service"],
        details=json.loads(row["details"]),
        occurred_at=row["occurred_at"],
        created_at=row["created_at"],
        prev_hash=row["prev_hash"],
        entry_hash=row["entry_hash"],
    )


def _checkpoint(row: asyncpg.Record) -> Checkpoint:
    return Checkpoint(
        org_id=row["org_id"],
        seq=row["seq"],
        head_hash=row["head_hash"],
        created_at=row["created_at"],
        key_id=row["key_id"],
        signature=bytes(row["signature"]),
    )
