"""SQL of the token signing keys."""

from __future__ import annotations

import asyncpg

from services.org.tokens import SigningKey
from shared.db import Connection

# Serializes creation and rotation of token signing keys across replicas.
_SIGNING_KEYS_LOCK = 0x5E15E1_0001

_SIGNING_KEY_COLUMNS = (
    "kid, public_key_der, private_key_encrypted, kek_id, state, created_at, retired_at"
)


async def lock_signing_keys(conn: Connection) -> None:
    """Serializes key creation/rotation across replicas until the transaction ends."""
    await conn.execute("SELECT pg_advisory_xact_lock($1)", _SIGNING_KEYS_LOCK)


async def active_signing_key(conn: Connection) -> SigningKey | None:
    """The key that signs new tokens."""
    row = await conn.fetchrow(
        f"SELECT {_SIGNING_KEY_COLUMNS} FROM token_signing_keys WHERE state = 'ACTIVE'"
    )
    return None if row is None else _signing_key(row)


async def signing_key(conn: Connection, kid: str) -> SigningKey | None:
    """A key by id (active or retired)."""
    row = await conn.fetchrow(
        f"SELECT {_SIGNING_KEY_COLUMNS} FROM token_signing_keys WHERE kid = $1", kid
    )
    return None if row is None else _signing_key(row)


async def signing_keys(conn: Connection) -> list[SigningKey]:
    """Every published key, newest first."""
    rows = await conn.fetch(
        f"SELECT {_SIGNING_KEY_COLUMNS} FROM token_signing_keys ORDER BY created_at DESC, kid"
    )
    return [_signing_key(row) for row in rows]


async def retire_active_signing_key(conn: Connection) -> None:
    """The active key stops signing (it stays published)."""
    await conn.execute(
        "UPDATE token_signing_keys SET state = 'RETIRED', retired_at = now(), updated_at = now(),"
        " version = version + 1 WHERE state = 'ACTIVE'"
    )


async def insert_active_signing_key(
    conn: Connection, kid: str, public_der: bytes, sealed: bytes, kek_id: str
) -> SigningKey:
    """Stores a new active key (the previous one must be retired first)."""
    row = await conn.fetchrow(
        f"INSERT INTO token_signing_keys (kid, public_key_der, private_key_encrypted, kek_id,"
        f" state) VALUES ($1, $2, $3, $4, 'ACTIVE') RETURNING {_SIGNING_KEY_COLUMNS}",
        kid,
        public_der,
        sealed,
        kek_id,
    )
    assert row is not None
    return _signing_key(row)


def _signing_key(row: asyncpg.Record) -> SigningKey:
    return SigningKey(
        kid=row["kid"],
        public_key_der=bytes(row["public_key_der"]),
        private_key_encrypted=bytes(row["private_key_encrypted"]),
        kek_id=row["kek_id"],
        state=row["state"],
        created_at=row["created_at"],
        retired_at=row["retired_at"],
    )
