"""SQL of deleted organizations (the `deleted_organizations` table), and the cancelling of
their unfinished verifications' jobs."""

from __future__ import annotations

from services.verification.domain import Verification
from services.verification.store.verifications import VERIFICATION_COLUMNS, verification_of
from shared.db import Connection


async def close_organization(conn: Connection, org_id: str) -> list[Verification]:
    """Records a deleted organization; ends the jobs of its unfinished verifications (a
    worker still running one loses its lease) and returns those verifications, locked."""
    await conn.execute(
        "INSERT INTO deleted_organizations (org_id) VALUES ($1) ON CONFLICT DO NOTHING", org_id
    )
    rows = await conn.fetch(
        f"SELECT {VERIFICATION_COLUMNS} FROM verifications"
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
