"""SQL of API keys, and what a key's tokens may do (exchange and freshness reads)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from services.org.domain import ApiKey, ApiKeyOwner, NewSecret, TokenStanding
from services.org.store.rows import RowLock, str_or_none
from shared.db import Connection
from shared.pagination import keyset_after
from shared.principals import OPERATOR_ROLE, SERVICE_ROLE

_KEY_COLUMNS = (
    "id, org_id, user_id, service_account_id, display_name, prefix, created_at, expires_at,"
    " revoked_at, last_used_at"
)


async def insert_api_key(
    conn: Connection,
    *,
    secret: NewSecret,
    display_name: str,
    org_id: str | None = None,
    user_id: str | None = None,
    service_account_id: str | None = None,
    operator_id: str | None = None,
    expires_at: datetime | None = None,
) -> ApiKey:
    """Stores a key's hash and metadata."""
    row = await conn.fetchrow(
        f"INSERT INTO api_keys (org_id, user_id, service_account_id, operator_id, display_name,"
        f" prefix, secret_sha256, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        f" RETURNING {_KEY_COLUMNS}",
        org_id,
        user_id,
        service_account_id,
        operator_id,
        display_name,
        secret.prefix,
        secret.sha256,
        expires_at,
    )
    assert row is not None
    return _api_key(row)


async def api_key(
    conn: Connection, org_id: str, key_id: str, *, lock: RowLock = RowLock.NONE
) -> ApiKey | None:
    """One API key of an organization, optionally locked until the transaction ends."""
    row = await conn.fetchrow(
        f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE org_id = $1 AND id = $2 {lock.value}",
        org_id,
        key_id,
    )
    return None if row is None else _api_key(row)


async def api_keys_page(
    conn: Connection,
    org_id: str,
    *,
    user_id: str | None,
    show_revoked: bool,
    after: Sequence[Any] | None,
    limit: int,
) -> list[ApiKey]:
    """An organization's API keys in (created_at, id) order, optionally filtered."""
    keyset, args = keyset_after(("created_at", "id"), after)
    conditions = [keyset]
    args.append(org_id)
    conditions.append(f"org_id = ${len(args)}")
    if user_id is not None:
        args.append(user_id)
        conditions.append(f"user_id = ${len(args)}")
    if not show_revoked:
        conditions.append("revoked_at IS NULL")
    args.append(limit)
    rows = await conn.fetch(
        f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE {' AND '.join(conditions)}"
        f" ORDER BY created_at, id LIMIT ${len(args)}",
        *args,
    )
    return [_api_key(row) for row in rows]


async def revoke_api_key(conn: Connection, key_id: str) -> ApiKey:
    """Marks a key revoked (keeps the first revocation time)."""
    row = await conn.fetchrow(
        f"UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()), updated_at = now(),"
        f" version = version + 1 WHERE id = $1 RETURNING {_KEY_COLUMNS}",
        key_id,
    )
    assert row is not None
    return _api_key(row)


async def api_key_owner(conn: Connection, sha256: bytes) -> ApiKeyOwner | None:
    """The key with a secret digest and who it acts as (the user's current role)."""
    row = await conn.fetchrow(
        "SELECT k.id, k.org_id, k.user_id, k.service_account_id, k.display_name, k.prefix,"
        " k.created_at, k.expires_at, k.revoked_at, k.last_used_at, u.role AS user_role,"
        " k.operator_id"
        " FROM api_keys k LEFT JOIN users u ON u.id = k.user_id"
        " WHERE k.secret_sha256 = $1",
        sha256,
    )
    if row is None:
        return None
    key = _api_key(row)
    if key.service_account_id is not None:
        return ApiKeyOwner(key, SERVICE_ROLE, f"serviceAccounts/{key.service_account_id}")
    if row["operator_id"] is not None:
        return ApiKeyOwner(key, OPERATOR_ROLE, f"operators/{row['operator_id']}")
    return ApiKeyOwner(key, str(row["user_role"]), f"users/{key.user_id}")


async def touch_api_key(conn: Connection, key_id: str) -> None:
    """Records that a key was just exchanged."""
    await conn.execute("UPDATE api_keys SET last_used_at = now() WHERE id = $1", key_id)


async def token_standing(conn: Connection, key_id: str) -> TokenStanding | None:
    """What a token exchanged from API key `key_id` may still do: None when the key is gone.

    The key goes with its user, service account, operator or organization (ON DELETE
    CASCADE), so one primary-key read answers for all of them.
    """
    row = await conn.fetchrow(
        "SELECT k.revoked_at, k.user_id, u.role AS user_role"
        " FROM api_keys k LEFT JOIN users u ON u.id = k.user_id WHERE k.id = $1",
        key_id,
    )
    if row is None:
        return None
    return TokenStanding(
        revoked=row["revoked_at"] is not None,
        user_role=str_or_none(row["user_role"]),
    )


def _api_key(row: asyncpg.Record) -> ApiKey:
    return ApiKey(
        id=str(row["id"]),
        org_id=str_or_none(row["org_id"]),
        user_id=str_or_none(row["user_id"]),
        service_account_id=str_or_none(row["service_account_id"]),
        display_name=row["display_name"],
        prefix=row["prefix"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
        last_used_at=row["last_used_at"],
    )
