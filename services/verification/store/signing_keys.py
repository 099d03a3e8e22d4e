"""SQL of certificate signing keys (the `signing_keys` table): public halves and status.

Creation, rotation and revocation serialize on one advisory lock (`lock_signing_keys`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from services.verification.keyring import SigningKeyRecord, SigningKeyStatus
from shared.db import Connection
from shared.pagination import keyset_after

_SIGNING_KEYS_LOCK = 0x5E45E1_0002  # pg_advisory_xact_lock key of key rotation

_KEY_COLUMNS = "key_id, public_key_der, status, not_before, not_after, revoke_time, revoke_reason"


def _signing_key(row: asyncpg.Record) -> SigningKeyRecord:
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
    """The database's clock (one clock for every replica's timestamps: key windows, issue times)."""
    now: datetime = await conn.fetchval("SELECT clock_timestamp()")
    return now
