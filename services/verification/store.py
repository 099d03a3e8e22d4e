"""All SQL of the verification service (schema `verification`, on the search path).

One function per query; each takes a `shared.db.Connection` (the caller owns the transaction)
and returns domain objects. Channels: every committed change of a verification is announced on
`CHANGES_CHANNEL` by a trigger (see migrations/0001_init.sql); new jobs on `JOBS_CHANNEL`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import asyncpg

from services.verification.domain import (
    Certificate,
    Lease,
    NewVerification,
    Verification,
    VerificationStatus,
    VerificationType,
)
from services.verification.keyring import SigningKeyRecord, SigningKeyStatus
from shared.db import Connection
from shared.pagination import keyset_after

CHANGES_CHANNEL = "sensei_verification_changes"
JOBS_CHANNEL = "sensei_verification_jobs"

# A fetched row, or the JSON of a row that a change notification carries.
Row = asyncpg.Record | Mapping[str, Any]

_SIGNING_KEYS_LOCK = 0x5E45E1_0002  # pg_advisory_xact_lock key of key rotation

_VERIFICATION_COLUMNS = (
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


# --- verifications -----------------------------------------------------------------------------


async def insert_verification(
    conn: Connection, verification_id: str, new: NewVerification, created_by: str
) -> Verification:
    """Stores a PENDING verification."""
    row = await conn.fetchrow(
        "INSERT INTO verifications (id, org_id, migration_id, type, status, tables, created_by)"
        f" VALUES ($1, $2, $3, $4, 'PENDING', $5, $6) RETURNING {_VERIFICATION_COLUMNS}",
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
        f"SELECT {_VERIFICATION_COLUMNS} FROM verifications"
        " WHERE id = $1 AND org_id = $2 AND migration_id = $3",
        verification_id,
        org_id,
        migration_id,
    )
    return None if row is None else verification_of(row)


async def verification_by_id(conn: Connection, verification_id: str) -> Verification | None:
    """A verification by id alone (workers)."""
    row = await conn.fetchrow(
        f"SELECT {_VERIFICATION_COLUMNS} FROM verifications WHERE id = $1", verification_id
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
        f"SELECT {_VERIFICATION_COLUMNS} FROM verifications WHERE {' AND '.join(conditions)}"
        f" ORDER BY created_at, id LIMIT ${len(args)}",
        *args,
    )
    return [verification_of(row) for row in rows]


async def start_verification(conn: Connection, verification_id: str) -> Verification:
    """RUNNING, progress reset (a reclaimed job starts over); the first start time is kept."""
    row = await conn.fetchrow(
        "UPDATE verifications SET status = 'RUNNING', tables_done = 0, tables_total = 0,"
        " started_at = coalesce(started_at, now()), updated_at = now(), version = version + 1"
        f" WHERE id = $1 RETURNING {_VERIFICATION_COLUMNS}",
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
        f" WHERE id = $1 RETURNING {_VERIFICATION_COLUMNS}",
        verification_id,
        status.value,
        score,
        json.dumps(result),
        certificate_id,
    )
    assert row is not None
    return verification_of(row)


async def close_organization(conn: Connection, org_id: str) -> list[Verification]:
    """Records a deleted organization; ends the jobs of its unfinished verifications (a
    worker still running one loses its lease) and returns those verifications, locked."""
    await conn.execute(
        "INSERT INTO deleted_organizations (org_id) VALUES ($1) ON CONFLICT DO NOTHING", org_id
    )
    rows = await conn.fetch(
        f"SELECT {_VERIFICATION_COLUMNS} FROM verifications"
        " WHERE org_id = $1 AND status IN ('PENDING', 'RUNNING') ORDER BY id FOR UPDATE",
        org_id,
    )
    await conn.execute(
        "UPDATE jobs SET state = 'done', updated_at = now()"
        " WHERE state <> 'done' AND verification_id = ANY($1::uuid[])",
        [row["id"] for row in rows],
    )
    return [verification_of(row) for row in rows]


async def organization_deleted(conn: Connection, org_id: str) -> bool:
    """Whether the organization was deleted."""
    return bool(
        await conn.fetchval("SELECT true FROM deleted_organizations WHERE org_id = $1", org_id)
    )


# --- jobs --------------------------------------------------------------------------------------


async def enqueue_job(conn: Connection, verification_id: str) -> None:
    """Queues the job of a verification and wakes idle workers (at commit)."""
    await conn.execute("INSERT INTO jobs (verification_id) VALUES ($1)", verification_id)
    await conn.execute("SELECT pg_notify($1, $2)", JOBS_CHANNEL, verification_id)


async def claim_next_job(conn: Connection, worker_id: str, lease_seconds: float) -> Lease | None:
    """Claims the earliest claimable job: queued and due, or running with an expired lease.

    `FOR UPDATE SKIP LOCKED` lets replicas claim side by side without waiting on each other.
    """
    row = await conn.fetchrow(
        "WITH next AS ("
        " SELECT verification_id FROM jobs"
        " WHERE state <> 'done' AND lease_until <= now()"
        " ORDER BY lease_until LIMIT 1 FOR UPDATE SKIP LOCKED)"
        " UPDATE jobs SET state = 'running', worker_id = $1, attempts = attempts + 1,"
        " lease_until = clock_timestamp() + make_interval(secs => $2), updated_at = now()"
        " FROM next WHERE jobs.verification_id = next.verification_id"
        " RETURNING jobs.verification_id::text AS verification_id, jobs.attempts",
        worker_id,
        lease_seconds,
    )
    if row is None:
        return None
    return Lease(row["verification_id"], worker_id, row["attempts"])


async def renew_lease(conn: Connection, lease: Lease, lease_seconds: float) -> bool:
    """Extends a held lease; False when the worker lost the job."""
    renewed = await conn.fetchval(
        "UPDATE jobs SET lease_until = clock_timestamp() + make_interval(secs => $4),"
        " updated_at = now()"
        " WHERE verification_id = $1 AND worker_id = $2 AND attempts = $3 AND state = 'running'"
        " RETURNING true",
        lease.verification_id,
        lease.worker_id,
        lease.attempt,
        lease_seconds,
    )
    return bool(renewed)


async def hold_lease(conn: Connection, lease: Lease) -> bool:
    """Locks the job row while the worker still holds it (fences writes of a lost worker)."""
    held = await conn.fetchval(
        "SELECT true FROM jobs"
        " WHERE verification_id = $1 AND worker_id = $2 AND attempts = $3 AND state = 'running'"
        " FOR UPDATE",
        lease.verification_id,
        lease.worker_id,
        lease.attempt,
    )
    return bool(held)


async def retry_job_later(conn: Connection, lease: Lease, delay_seconds: float, error: str) -> bool:
    """Gives a held job back to the queue, claimable after `delay_seconds`."""
    released = await conn.fetchval(
        "UPDATE jobs SET state = 'queued', worker_id = NULL, last_error = $4,"
        " lease_until = clock_timestamp() + make_interval(secs => $5), updated_at = now()"
        " WHERE verification_id = $1 AND worker_id = $2 AND attempts = $3 AND state = 'running'"
        " RETURNING true",
        lease.verification_id,
        lease.worker_id,
        lease.attempt,
        error,
        delay_seconds,
    )
    return bool(released)


async def complete_job(conn: Connection, lease: Lease, error: str = "") -> bool:
    """Marks a held job done; False (and nothing written) when the worker lost it."""
    done = await conn.fetchval(
        "UPDATE jobs SET state = 'done', last_error = $4, updated_at = now()"
        " WHERE verification_id = $1 AND worker_id = $2 AND attempts = $3 AND state = 'running'"
        " RETURNING true",
        lease.verification_id,
        lease.worker_id,
        lease.attempt,
        error,
    )
    return bool(done)


# --- certificates ------------------------------------------------------------------------------

_CERTIFICATE_COLUMNS = (
    "id::text AS id, org_id::text AS org_id, migration_id::text AS migration_id,"
    " verification_id::text AS verification_id, key_id, envelope, verification_type, score,"
    " result_digest, source_schema_fingerprint, target_schema_fingerprint, issued_at"
)


def _certificate(row: Row) -> Certificate:
    return Certificate(
        id=row["id"],
        org_id=row["org_id"],
        migration_id=row["migration_id"],
        verification_id=row["verification_id"],
        key_id=row["key_id"],
        envelope=bytes(row["envelope"]),
        verification_type=VerificationType(row["verification_type"]),
        score=float(row["score"]),
        result_digest=row["result_digest"],
        source_schema_fingerprint=row["source_schema_fingerprint"],
        target_schema_fingerprint=row["target_schema_fingerprint"],
        issued_at=row["issued_at"],
    )


async def insert_certificate(conn: Connection, certificate: Certificate) -> None:
    """Stores an issued certificate, envelope bytes verbatim."""
    await conn.execute(
        "INSERT INTO certificates (id, org_id, migration_id, verification_id, key_id, envelope,"
        " verification_type, score, result_digest, source_schema_fingerprint,"
        " target_schema_fingerprint, issued_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        certificate.id,
        certificate.org_id,
        certificate.migration_id,
        certificate.verification_id,
        certificate.key_id,
        certificate.envelope,
        certificate.verification_type.value,
        certificate.score,
        certificate.result_digest,
        certificate.source_schema_fingerprint,
        certificate.target_schema_fingerprint,
        certificate.issued_at,
    )


async def certificate(conn: Connection, org_id: str, certificate_id: str) -> Certificate | None:
    """One certificate of an organization."""
    row = await conn.fetchrow(
        f"SELECT {_CERTIFICATE_COLUMNS} FROM certificates WHERE id = $1 AND org_id = $2",
        certificate_id,
        org_id,
    )
    return None if row is None else _certificate(row)


# --- signing keys ------------------------------------------------------------------------------

_KEY_COLUMNS = "key_id, public_key_der, status, not_before, not_after, revoke_time, revoke_reason"


def _signing_key(row: Row) -> SigningKeyRecord:
    return SigningKeyRecord(
        key_id=row["key_id"],
        public_key_der=bytes(row["public_key_der"]),
        status=SigningKeyStatus(row["status"]),
        not_before=row["not_before"],
        not_after=row["not_after"],
        revoke_time=row["revoke_time"],
        revoke_reason=row["revoke_reason"],
    )


async def lock_signing_keys(conn: Connection) -> None:
    """Serializes key creation, rotation and revocation across replicas (until commit)."""
    await conn.execute("SELECT pg_advisory_xact_lock($1)", _SIGNING_KEYS_LOCK)


async def active_signing_key(
    conn: Connection, *, share_lock: bool = False
) -> SigningKeyRecord | None:
    """The key that signs new certificates; `share_lock` holds off rotation until commit."""
    row = await conn.fetchrow(
        f"SELECT {_KEY_COLUMNS} FROM signing_keys WHERE status = 'active'"
        + (" FOR SHARE" if share_lock else "")
    )
    return None if row is None else _signing_key(row)


async def signing_key(conn: Connection, key_id: str) -> SigningKeyRecord | None:
    """One key, locked for update."""
    row = await conn.fetchrow(
        f"SELECT {_KEY_COLUMNS} FROM signing_keys WHERE key_id = $1 FOR UPDATE", key_id
    )
    return None if row is None else _signing_key(row)


async def signing_keys(conn: Connection) -> list[SigningKeyRecord]:
    """Every key, newest first."""
    rows = await conn.fetch(
        f"SELECT {_KEY_COLUMNS} FROM signing_keys ORDER BY not_before DESC, key_id DESC"
    )
    return [_signing_key(row) for row in rows]


async def signing_keys_page(
    conn: Connection, after: Sequence[Any] | None, limit: int
) -> list[SigningKeyRecord]:
    """Keys newest first, after the (not_before, key_id) of the previous page's last key."""
    keyset, args = keyset_after(("not_before", "key_id"), after, first_param=2, descending=True)
    rows = await conn.fetch(
        f"SELECT {_KEY_COLUMNS} FROM signing_keys WHERE {keyset}"
        " ORDER BY not_before DESC, key_id DESC LIMIT $1",
        limit,
        *args,
    )
    return [_signing_key(row) for row in rows]


async def insert_signing_key(conn: Connection, record: SigningKeyRecord) -> SigningKeyRecord:
    """Publishes a key."""
    row = await conn.fetchrow(
        "INSERT INTO signing_keys (key_id, public_key_der, status, not_before, not_after,"
        " revoke_time, revoke_reason) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        f" RETURNING {_KEY_COLUMNS}",
        record.key_id,
        record.public_key_der,
        record.status.value,
        record.not_before,
        record.not_after,
        record.revoke_time,
        record.revoke_reason,
    )
    assert row is not None
    return _signing_key(row)


async def update_signing_key(conn: Connection, record: SigningKeyRecord) -> SigningKeyRecord:
    """Stores a key's new status and window."""
    row = await conn.fetchrow(
        "UPDATE signing_keys SET status = $2, not_after = $3, revoke_time = $4,"
        f" revoke_reason = $5 WHERE key_id = $1 RETURNING {_KEY_COLUMNS}",
        record.key_id,
        record.status.value,
        record.not_after,
        record.revoke_time,
        record.revoke_reason,
    )
    assert row is not None
    return _signing_key(row)


async def database_now(conn: Connection) -> datetime:
    """The database's clock (one clock for every replica's timestamps)."""
    now: datetime = await conn.fetchval("SELECT clock_timestamp()")
    return now


async def count_pending_jobs(conn: Connection) -> int:
    """Jobs queued or running (the queue depth metric)."""
    count: int = await conn.fetchval("SELECT count(*) FROM jobs WHERE state <> 'done'")
    return count
