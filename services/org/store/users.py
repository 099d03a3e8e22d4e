"""SQL of users."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg

from services.org.domain import Role, User, UserDraft
from services.org.store.rows import RowLock, set_clause
from shared.db import Connection
from shared.errors import AlreadyExists
from shared.pagination import keyset_after

_USER_COLUMNS = "id, org_id, email, display_name, role, avatar_url, created_at, updated_at, version"


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
    assignments, args = set_clause(values, {"display_name", "email", "role", "avatar_url"})
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
