"""SQL of the token revocation log (followed by the other services, see shared/revocations.py)."""

from __future__ import annotations

from datetime import datetime

from services.org.store.rows import str_or_none
from shared.db import Connection
from shared.revocations import Revocation

# Serializes appends to the revocation log, so its sequence order is its commit order.
_REVOCATIONS_LOCK = 0x5E15E1_0002
# Wakes the WatchTokenRevocations streams when the log grows.
REVOCATIONS_CHANNEL = "sensei_token_revocations"


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
            api_key_id=str_or_none(row["api_key_id"]),
            subject=row["subject"],
            org_id=str_or_none(row["org_id"]),
            current_role=row["valid_role"],
            revoked_at=row["revoked_at"],
        )
        for row in rows
    ]


async def last_revocation(conn: Connection) -> int:
    """The sequence number of the newest log entry (0 when the log is empty)."""
    return int(await conn.fetchval("SELECT coalesce(max(seq), 0) FROM token_revocations"))
