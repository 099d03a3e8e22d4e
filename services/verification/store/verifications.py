"""SQL of verifications (the `verifications` table).

Every committed change of a verification is announced on `CHANGES_CHANNEL` by a trigger
(see migrations/0001_init.sql); `verification_of` reads a row or the JSON a notification carries.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import asyncpg

from services.verification.domain import (
    NewVerification,
    Verification,
    VerificationStatus,
    VerificationType,
)
from shared.db import Connection
from shared.pagination import keyset_after

CHANGES_CHANNEL = "sensei_verification_changes"

# A fetched row, or the JSON of a row that a change notification carries.
Row = asyncpg.Record | Mapping[str, Any]

VERIFICATION_COLUMNS = (
    "id::text AS id, org_id::text AS org_id, migration_id::text AS migration_id, type, status,"
    " score, certificate_id::text AS certificate_id, result::text AS result, tables,"
    " tables_done, tables_total, created_by, created_at, updated_at, started_at, finished_at,"
    " version"
)


def verification_of(row: Row) -> Verification:
    """A Verification from a row (or from the JSON a change notification carries)."""
    result = row.get("result")
    return Verification(
        id=str(row["id"]),
        org_id=str(row["org_id"]),
        migration_id=str(row["migration_id"]),
        type=VerificationType(row["type"]),
        status=VerificationStatus(row["status"]),
        score=float(row["score"]),
        certificate_id=None if row["certificate_id"] is None else str(row["certificate_id"]),
        result=json.loads(result) if isinstance(result, str) else dict(result or {}),
        tables=tuple(row["tables"] or ()),
        tables_done=int(row["tables_done"]),
        tables_total=int(row["tables_total"]),
        created_at=_time(row["created_at"]),
        updated_at=_time(row["updated_at"]),
        started_at=_optional_time(row["started_at"]),
        finished_at=_optional_time(row["finished_at"]),
        version=int(row["version"]),
        created_by=str(row.get("created_by") or ""),
    )


def _time(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def _optional_time(value: Any) -> datetime | None:
    return None if value is None else _time(value)


async def insert_verification(
    conn: Connection, verification_id: str, new: NewVerification, created_by: str
) -> Verification:
    """Stores a PENDING verification."""
    row = await conn.fetchrow(
        "INSERT INTO verifications (id, org_id, migration_id, type, status, tables, created_by)"
        f" VALUES ($1, $2, $3, $4, 'PENDING', $5, $6) RETURNING {VERIFICATION_COLUMNS}",
        verification_id,
        new.org_id,
        new.migration_id,
        new.type.value,
        list(new.tables),
        created_by,
    )
    assert row is not None
    return verification_of(row)


async def verification(
    conn: Connection, org_id: str, migration_id: str, verification_id: str
) -> Verification | None:
    """One verification of one migration of one organization."""
    row = await conn.fetchrow(
        f"SELECT {VERIFICATION_COLUMNS} FROM verifications"
        " WHERE id = $1 AND org_id = $2 AND migration_id = $3",
        verification_id,
        org_id,
        migration_id,
    )
    return None if row is None else verification_of(row)


async def verification_by_id(conn: Connection, verification_id: str) -> Verification | None:
    """A verification by id alone (workers)."""
    row = await conn.fetchrow(
        f"SELECT {VERIFICATION_COLUMNS} FROM verifications WHERE id = $1", verification_id
    )
    return None if row is None else verification_of(row)


async def verifications_page(
    conn: Connection,
    org_id: str,
    *,
    migration_id: str | None,
    type_filter: VerificationType | None,
    status_filter: VerificationStatus | None,
    after: Sequence[Any] | None,
    limit: int,
) -> list[Verification]:
    """Verifications of an organization (optionally of one migration) by (created_at, id)."""
    keyset, args = keyset_after(("created_at", "id"), after)
    conditions = [keyset]
    args.append(org_id)
    conditions.append(f"org_id = ${len(args)}")
    if migration_id is not None:
        args.append(migration_id)
        conditions.append(f"migration_id = ${len(args)}")
    if type_filter is not None:
        args.append(type_filter.value)
        conditions.append(f"type = ${len(args)}")
    if status_filter is not None:
        args.append(status_filter.value)
        conditions.append(f"status = ${len(args)}")
    args.append(limit)
    rows = await conn.fetch(
        f"SELECT {VERIFICATION_COLUMNS} FROM verifications WHERE {' AND '.join(conditions)}"
        f" ORDER BY created_at, id LIMIT ${len(args)}",
        *args,
    )
    return [verification_of(row) for row in rows]


async def start_verification(conn: Connection, verification_id: str) -> Verification:
    """RUNNING, progress reset (a reclaimed job starts over); the first start time is kept."""
    row = await conn.fetchrow(
        "UPDATE verifications SET status = 'RUNNING', tables_done = 0, tables_total = 0,"
        " started_at = coalesce(started_at, now()), updated_at = now(), version = version + 1"
        f" WHERE id = $1 RETURNING {VERIFICATION_COLUMNS}",
        verification_id,
    )
    assert row is not None
    return verification_of(row)


async def set_progress(
    conn: Connection, verification_id: str, tables_done: int, tables_total: int
) -> None:
    """Records how many tables are done; a no-op when nothing changed."""
    await conn.execute(
        "UPDATE verifications SET tables_done = $2, tables_total = $3, updated_at = now(),"
        " version = version + 1"
        " WHERE id = $1 AND (tables_done, tables_total) IS DISTINCT FROM ($2, $3)",
        verification_id,
        tables_done,
        tables_total,
    )


async def finish_verification(
    conn: Connection,
    verification_id: str,
    *,
    status: VerificationStatus,
    score: float,
    result: Mapping[str, Any],
    certificate_id: str | None,
) -> Verification:
    """The terminal status, score, result and certificate of a verification."""
    row = await conn.fetchrow(
        "UPDATE verifications SET status = $2, score = $3, result = $4::jsonb,"
        " certificate_id = $5, finished_at = now(), updated_at = now(), version = version + 1,"
        " tables_done = CASE WHEN $2 = 'ERROR' THEN tables_done ELSE tables_total END"
        f" WHERE id = $1 RETURNING {VERIFICATION_COLUMNS}",
        verification_id,
        status.value,
        score,
        json.dumps(result),
        certificate_id,
    )
    assert row is not None
    return verification_of(row)
