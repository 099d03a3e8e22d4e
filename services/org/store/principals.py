"""SQL of the platform principals: service accounts and operators."""

from __future__ import annotations

import asyncpg

from services.org.domain import ServiceAccount
from shared.db import Connection


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


def _service_account(row: asyncpg.Record) -> ServiceAccount:
    return ServiceAccount(
        id=str(row["id"]), display_name=row["display_name"], created_at=row["created_at"]
    )
