"""The pattern store's queries on outcomes: counting them, once per request and per migration.

Table names are unqualified: connections have the service schema on their search_path.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from services.pattern.domain import Outcome, Pattern, pattern_name
from services.pattern.store.patterns import PATTERN_COLUMNS, pattern_of
from shared.db import Connection
from shared.errors import NotFound


async def count_outcome(
    conn: Connection, pattern_id: str, outcome: Outcome, actor: str
) -> Pattern | None:
    """Adds one to the outcome's counter in one atomic UPDATE; None if the pattern is gone."""
    column = "success_count" if outcome is Outcome.SUCCESS else "failure_count"
    row = await conn.fetchrow(
        f"UPDATE patterns SET {column} = {column} + 1, version = version + 1,"
        f" updated_at = now(), updated_by = $2 WHERE id = $1 RETURNING {PATTERN_COLUMNS}",
        pattern_id,
        actor,
    )
    return None if row is None else pattern_of(row)


async def claim_outcome_request(
    conn: Connection, caller: str, request_id: str, pattern_id: str, outcome: Outcome
) -> bool:
    """Claims a request id for one outcome; False when the caller used it before (a
    concurrent first use is waited for)."""
    try:
        claimed = await conn.fetchval(
            "INSERT INTO outcome_requests (caller, request_id, pattern_id, outcome)"
            " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING true",
            caller,
            request_id,
            pattern_id,
            outcome.value,
        )
    except asyncpg.ForeignKeyViolationError:
        # Deleted since the caller read it.
        raise NotFound("Pattern", pattern_name(pattern_id)) from None
    return bool(claimed)


async def claim_outcome_migration(
    conn: Connection,
    *,
    pattern_id: str,
    migration_id: str,
    org_id: str,
    outcome: Outcome,
    caller: str,
) -> Outcome | None:
    """Claims the (pattern, migration) pair for one outcome: None when this call claimed
    it, else the outcome recorded first (a concurrent first claim is waited for)."""
    try:
        claimed = await conn.fetchval(
            "INSERT INTO pattern_outcomes (pattern_id, migration_id, org_id, outcome, caller)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING true",
            pattern_id,
            migration_id,
            org_id,
            outcome.value,
            caller,
        )
    except asyncpg.ForeignKeyViolationError:
        raise NotFound("Pattern", pattern_name(pattern_id)) from None
    if claimed:
        return None
    first = await conn.fetchval(
        "SELECT outcome FROM pattern_outcomes WHERE pattern_id = $1 AND migration_id = $2",
        pattern_id,
        migration_id,
    )
    return Outcome(first)


@dataclass(frozen=True)
class OutcomeRequest:
    """What an earlier RecordPatternOutcome with a request id counted."""

    pattern_id: str
    outcome: Outcome


async def outcome_request(conn: Connection, caller: str, request_id: str) -> OutcomeRequest | None:
    """The outcome an earlier call with this request id counted, if its pattern still exists."""
    row = await conn.fetchrow(
        "SELECT pattern_id::text, outcome FROM outcome_requests"
        " WHERE caller = $1 AND request_id = $2",
        caller,
        request_id,
    )
    return None if row is None else OutcomeRequest(row["pattern_id"], Outcome(row["outcome"]))
