"""SQL of organizations."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg

from services.org.domain import Organization, OrganizationDraft, Plan
from services.org.store.rows import RowLock, set_clause
from shared.db import Connection
from shared.errors import AlreadyExists
from shared.pagination import keyset_after

_ORG_COLUMNS = "id, display_name, slug, plan, settings, created_at, updated_at, version"


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
    assignments, args = set_clause(
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
