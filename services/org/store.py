"""All SQL of the org service (asyncpg). One function per query; domain objects out.

Table names are unqualified: connections have the service schema on their search_path.
Unique-constraint violations become ALREADY_EXISTS here, where the constraint is known.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from enum import Enum
from typing import Any

import asyncpg

from services.org.domain import (
    ApiKey,
    ApiKeyOwner,
    NewSecret,
    Organization,
    OrganizationDraft,
    Plan,
    Role,
    ServiceAccount,
    TokenStanding,
    User,
    UserDraft,
)
from services.org.tokens import SigningKey
from shared.auth import OPERATOR_ROLE, SERVICE_ROLE
from shared.db import Connection
from shared.errors import AlreadyExists
from shared.pagination import keyset_after
from shared.revocations import Revocation

# Serializes creation and rotation of token signing keys across replicas.
_SIGNING_KEYS_LOCK = 0x5E15E1_0001
# Serializes appends to the revocation log, so its sequence order is its commit order.
_REVOCATIONS_LOCK = 0x5E15E1_0002
# Wakes the WatchTokenRevocations streams when the log grows.
REVOCATIONS_CHANNEL = "sensei_token_revocations"


class RowLock(Enum):
    """How a read locks the rows it returns, until the transaction ends."""

    NONE = ""
    # Keeps the row from being deleted (children may be inserted meanwhile).
    KEY_SHARE = "FOR KEY SHARE"
    # For updates that keep the key: children may still be inserted meanwhile.
    NO_KEY_UPDATE = "FOR NO KEY UPDATE"
    # For deletes: waits for, and blocks, KEY SHARE holders.
    UPDATE = "FOR UPDATE"


_ORG_COLUMNS = "id, display_name, slug, plan, settings, created_at, updated_at, version"
_USER_COLUMNS = "id, org_id, email, display_name, role, avatar_url, created_at, updated_at, version"
_KEY_COLUMNS = (
    "id, org_id, user_id, service_account_id, display_name, prefix, created_at, expires_at,"
    " revoked_at, last_used_at"
)
_SIGNING_KEY_COLUMNS = (
    "kid, public_key_der, private_key_encrypted, kek_id, state, created_at, retired_at"
)


# --- organizations --------------------------------------------------------------------


async def insert_organization(conn: Connection, draft: OrganizationDraft) -> Organization:
    """Creates an organization; ALREADY_EXISTS when the slug is taken."""
    try:
        row = await conn.fetchrow(
            f"INSERT INTO organizations (display_name, slug, plan, settings)"
            f" VALUES ($1, $2, $3, $4::jsonb) RETURNING {_ORG_COLUMNS}",
            draft.display_name,
            draft.slug,
            draft.plan,
            json.dumps(dict(draft.settings)),
        )
    except asyncpg.UniqueViolationError:
        raise AlreadyExists("Organization", "slug", draft.slug) from None
    assert row is not None
    return _organization(row)


async def insert_organization_if_absent(conn: Connection, draft: OrganizationDraft) -> Organization:
    """Creates an organization unless its slug exists; returns the one with that slug."""
    await conn.execute(
        "INSERT INTO organizations (display_name, slug, plan, settings)"
        " VALUES ($1, $2, $3, $4::jsonb) ON CONFLICT (slug) DO NOTHING",
        draft.display_name,
        draft.slug,
        draft.plan,
        json.dumps(dict(draft.settings)),
    )
    found = await organization_by_slug(conn, draft.slug)
    assert found is not None
    return found


async def organization(
    conn: Connection, org_id: str, *, lock: RowLock = RowLock.NONE
) -> Organization | None:
    """One organization by id, optionally locked until the transaction ends."""
    row = await conn.fetchrow(
        f"SELECT {_ORG_COLUMNS} FROM organizations WHERE id = $1 {lock.value}", org_id
    )
    return None if row is None else _organization(row)


async def organization_by_slug(conn: Connection, slug: str) -> Organization | None:
    """One organization by slug."""
    row = await conn.fetchrow(f"SELECT {_ORG_COLUMNS} FROM organizations WHERE slug = $1", slug)
    return None if row is None else _organization(row)


async def organizations_page(
    conn: Connection,
    *,
    plan: str | None,
    only_id: str | None,
    after: Sequence[Any] | None,
    limit: int,
) -> list[Organization]:
    """Organizations in (created_at, id) order after a keyset position, optionally filtered."""
    keyset, args = keyset_after(("created_at", "id"), after)
    conditions = [keyset]
    if plan is not None:
        args.append(plan)
        conditions.append(f"plan = ${len(args)}")
    if only_id is not None:
        args.append(only_id)
        conditions.append(f"id = ${len(args)}")
    args.append(limit)
    rows = await conn.fetch(
        f"SELECT {_ORG_COLUMNS} FROM organizations WHERE {' AND '.join(conditions)}"
        f" ORDER BY created_at, id LIMIT ${len(args)}",
        *args,
    )
    return [_organization(row) for row in rows]


async def update_organization(
    conn: Connection, org_id: str, values: Mapping[str, Any]
) -> Organization:
    """Writes changed columns, bumps the version; ALREADY_EXISTS on a taken slug."""
    assignments, args = _assignments(
        values, {"display_name", "slug", "plan", "settings"}, jsonb={"settings"}
    )
    args.append(org_id)
    try:
        row = await conn.fetchrow(
            f"UPDATE organizations SET {assignments} WHERE id = ${len(args)}"
            f" RETURNING {_ORG_COLUMNS}",
            *args,
        )
    except asyncpg.UniqueViolationError:
        raise AlreadyExists("Organization", "slug", str(values.get("slug"))) from None
    assert row is not None
    return _organization(row)


async def delete_organization(conn: Connection, org_id: str) -> None:
    """Deletes an organization; its users and API keys go with it (ON DELETE CASCADE)."""
    await conn.execute("DELETE FROM organizations WHERE id = $1", org_id)


# --- users ----------------------------------------------------------------------------


async def insert_user(conn: Connection, org_id: str, draft: UserDraft) -> User:
    """Creates a user; ALREADY_EXISTS when the e-mail is taken."""
    try:
        row = await conn.fetchrow(
            f"INSERT INTO users (org_id, email, display_name, role, avatar_url)"
            f" VALUES ($1, $2, $3, $4, $5) RETURNING {_USER_COLUMNS}",
            org_id,
            draft.email,
            draft.display_name,
            draft.role,
            draft.avatar_url,
        )
    except asyncpg.UniqueViolationError:
        raise AlreadyExists("User", "email", draft.email) from None
    assert row is not None
    return _user(row)


async def user(
    conn: Connection, org_id: str, user_id: str, *, lock: RowLock = RowLock.NONE
) -> User | None:
    """One user of an organization, optionally locked until the transaction ends."""
    row = await conn.fetchrow(
        f"SELECT {_USER_COLUMNS} FROM users WHERE org_id = $1 AND id = $2 {lock.value}",
        org_id,
        user_id,
    )
    return None if row is None else _user(row)


async def user_by_email(conn: Connection, email: str) -> User | None:
    """The user with an e-mail (stored lower-cased)."""
    row = await conn.fetchrow(f"SELECT {_USER_COLUMNS} FROM users WHERE email = $1", email)
    return None if row is None else _user(row)


async def users_page(
    conn: Connection,
    org_id: str,
    *,
    role: str | None,
    after: Sequence[Any] | None,
    limit: int,
) -> list[User]:
    """An organization's users in (created_at, id) order, optionally of one role."""
    keyset, args = keyset_after(("created_at", "id"), after)
    conditions = [keyset]
    args.append(org_id)
    conditions.append(f"org_id = ${len(args)}")
    if role is not None:
        args.append(role)
        conditions.append(f"role = ${len(args)}")
    args.append(limit)
    rows = await conn.fetch(
        f"SELECT {_USER_COLUMNS} FROM users WHERE {' AND '.join(conditions)}"
        f" ORDER BY created_at, id LIMIT ${len(args)}",
        *args,
    )
    return [_user(row) for row in rows]


async def lock_owners(conn: Connection, org_id: str) -> int:
    """Locks the organization's OWNER rows for the transaction and counts them.

    Two concurrent demotions of the last two owners serialize here, so one of them sees
    the other's result and is refused.
    """
    rows = await conn.fetch(
        "SELECT id FROM users WHERE org_id = $1 AND role = 'OWNER' ORDER BY id FOR NO KEY UPDATE",
        org_id,
    )
    return len(rows)


async def update_user(conn: Connection, user_id: str, values: Mapping[str, Any]) -> User:
    """Writes changed columns, bumps the version; ALREADY_EXISTS on a taken e-mail."""
    assignments, args = _assignments(values, {"display_name", "email", "role", "avatar_url"})
    args.append(user_id)
    try:
        row = await conn.fetchrow(
            f"UPDATE users SET {assignments} WHERE id = ${len(args)} RETURNING {_USER_COLUMNS}",
            *args,
        )
    except asyncpg.UniqueViolationError:
        raise AlreadyExists("User", "email", str(values.get("email"))) from None
    assert row is not None
    return _user(row)


async def delete_user(conn: Connection, user_id: str) -> None:
    """Deletes a user; their API keys go with them (ON DELETE CASCADE)."""
    await conn.execute("DELETE FROM users WHERE id = $1", user_id)


# --- service accounts -----------------------------------------------------------------


async def insert_service_account(conn: Connection, display_name: str) -> ServiceAccount:
    """Creates a service account."""
    row = await conn.fetchrow(
        "INSERT INTO service_accounts (display_name) VALUES ($1)"
        " RETURNING id, display_name, created_at",
        display_name,
    )
    assert row is not None
    return _service_account(row)


async def service_account_by_display_name(
    conn: Connection, display_name: str
) -> ServiceAccount | None:
    """The oldest service account with a display name."""
    row = await conn.fetchrow(
        "SELECT id, display_name, created_at FROM service_accounts WHERE display_name = $1"
        " ORDER BY created_at, id LIMIT 1",
        display_name,
    )
    return None if row is None else _service_account(row)


# --- operators ------------------------------------------------------------------------


async def operator_by_display_name(conn: Connection, display_name: str) -> str | None:
    """The id of the operator with this display name, if there is one."""
    value = await conn.fetchval("SELECT id FROM operators WHERE display_name = $1", display_name)
    return None if value is None else str(value)


async def insert_operator_if_absent(conn: Connection, display_name: str) -> str:
    """The id of the operator with this display name, created first if absent."""
    await conn.execute(
        "INSERT INTO operators (display_name) VALUES ($1) ON CONFLICT (display_name) DO NOTHING",
        display_name,
    )
    operator_id = await operator_by_display_name(conn, display_name)
    assert operator_id is not None
    return operator_id


# --- api keys -------------------------------------------------------------------------


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
        user_role=_str_or_none(row["user_role"]),
    )


# --- the revocation log ---------------------------------------------------------------


async def append_revocation(
    conn: Connection,
    *,
    api_key_id: str | None = None,
    subject: str | None = None,
    org_id: str | None = None,
    current_role: str | None = None,
) -> None:
    """Appends one entry to the revocation log (inside the change's transaction)."""
    await conn.execute("SELECT pg_advisory_xact_lock($1)", _REVOCATIONS_LOCK)
    await conn.execute(
        "INSERT INTO token_revocations (api_key_id, subject, org_id, valid_role)"
        " VALUES ($1, $2, $3, $4)",
        api_key_id,
        subject,
        org_id,
        current_role,
    )
    await conn.execute("SELECT pg_notify($1, '')", REVOCATIONS_CHANNEL)


async def revocations_after(
    conn: Connection, after: int, *, still_matter_since: datetime, limit: int
) -> list[Revocation]:
    """Log entries after sequence `after`, oldest first.

    Organization deletions are always returned; key and principal entries only when they
    are newer than `still_matter_since` (older ones concern only expired tokens).
    """
    rows = await conn.fetch(
        "SELECT seq, api_key_id, subject, org_id, valid_role, revoked_at"
        " FROM token_revocations"
        " WHERE seq > $1 AND (org_id IS NOT NULL OR revoked_at >= $2)"
        " ORDER BY seq LIMIT $3",
        after,
        still_matter_since,
        limit,
    )
    return [
        Revocation(
            sequence=row["seq"],
            api_key_id=_str_or_none(row["api_key_id"]),
            subject=row["subject"],
            org_id=_str_or_none(row["org_id"]),
            current_role=row["valid_role"],
            revoked_at=row["revoked_at"],
        )
        for row in rows
    ]


async def last_revocation(conn: Connection) -> int:
    """The sequence number of the newest log entry (0 when the log is empty)."""
    return int(await conn.fetchval("SELECT coalesce(max(seq), 0) FROM token_revocations"))


# --- token signing keys ---------------------------------------------------------------


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


# --- helpers --------------------------------------------------------------------------


def _assignments(
    values: Mapping[str, Any], allowed: set[str], jsonb: frozenset[str] | set[str] = frozenset()
) -> tuple[str, list[Any]]:
    parts, args = ["updated_at = now()", "version = version + 1"], []
    for column, value in values.items():
        if column not in allowed:
            raise ValueError(f"not an updatable column: {column}")
        if column in jsonb:
            args.append(json.dumps(value))
            parts.append(f"{column} = ${len(args)}::jsonb")
        else:
            args.append(value)
            parts.append(f"{column} = ${len(args)}")
    return ", ".join(parts), args


def _organization(row: asyncpg.Record) -> Organization:
    return Organization(
        id=str(row["id"]),
        display_name=row["display_name"],
        slug=row["slug"],
        plan=Plan(row["plan"]),
        settings=json.loads(row["settings"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        version=row["version"],
    )


def _user(row: asyncpg.Record) -> User:
    return User(
        id=str(row["id"]),
        org_id=str(row["org_id"]),
        email=row["email"],
        display_name=row["display_name"],
        role=Role(row["role"]),
        avatar_url=row["avatar_url"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        version=row["version"],
    )


def _service_account(row: asyncpg.Record) -> ServiceAccount:
    return ServiceAccount(
        id=str(row["id"]), display_name=row["display_name"], created_at=row["created_at"]
    )


def _api_key(row: asyncpg.Record) -> ApiKey:
    return ApiKey(
        id=str(row["id"]),
        org_id=_str_or_none(row["org_id"]),
        user_id=_str_or_none(row["user_id"]),
        service_account_id=_str_or_none(row["service_account_id"]),
        display_name=row["display_name"],
        prefix=row["prefix"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
        last_used_at=row["last_used_at"],
    )


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


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)
