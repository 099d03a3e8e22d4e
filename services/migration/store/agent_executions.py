"""The migration store's queries on agent executions and the token usage they add up to.

Tables are unqualified (the pool puts the service's schema first on the search path).
Functions that write expect to run inside the caller's transaction.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import asyncpg

from services.migration.domain import (
    AgentExecution,
    AgentExecutionStatus,
    AgentType,
    AgentTypeUsage,
)
from shared.db import Connection
from shared.pagination import keyset_after

_EXECUTION_COLUMNS = (
    "id, org_id, migration_id, agent_type, status, tokens_used, duration_ms, input::text,"
    " output::text, error_message, created_at, updated_at, completed_at"
)


def _execution_of(row: asyncpg.Record) -> AgentExecution:
    return AgentExecution(
        id=str(row["id"]),
        org_id=str(row["org_id"]),
        migration_id=str(row["migration_id"]),
        agent_type=AgentType(row["agent_type"]),
        status=AgentExecutionStatus(row["status"]),
        tokens_used=row["tokens_used"],
        duration_ms=row["duration_ms"],
        input=json.loads(row["input"]),
        output=json.loads(row["output"]),
        error_message=row["error_message"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        completed_at=row["completed_at"],
    )


async def insert_agent_execution(
    conn: Connection,
    org_id: str,
    migration_id: str,
    agent_type: AgentType,
    agent_input: Mapping[str, Any],
) -> AgentExecution:
    """Stores a new RUNNING agent execution."""
    row = await conn.fetchrow(
        "INSERT INTO agent_executions (id, org_id, migration_id, agent_type, input)"
        f" VALUES ($1, $2, $3, $4, $5::jsonb) RETURNING {_EXECUTION_COLUMNS}",
        str(uuid.uuid4()),
        org_id,
        migration_id,
        agent_type.value,
        json.dumps(agent_input),
    )
    assert row is not None
    return _execution_of(row)


async def agent_execution(
    conn: Connection, org_id: str, migration_id: str, execution_id: str, *, lock: bool = False
) -> AgentExecution | None:
    """One agent execution; `lock` takes its row lock for an update."""
    row = await conn.fetchrow(
        f"SELECT {_EXECUTION_COLUMNS} FROM agent_executions"
        " WHERE org_id = $1 AND migration_id = $2 AND id = $3" + (" FOR UPDATE" if lock else ""),
        org_id,
        migration_id,
        execution_id,
    )
    return None if row is None else _execution_of(row)


async def complete_agent_execution(
    conn: Connection,
    execution_id: str,
    *,
    status: AgentExecutionStatus,
    tokens_used: int,
    duration_ms: int,
    output: Mapping[str, Any],
    error_message: str,
) -> AgentExecution:
    """Records how an execution ended."""
    row = await conn.fetchrow(
        "UPDATE agent_executions SET status = $2, tokens_used = $3, duration_ms = $4,"
        " output = $5::jsonb, error_message = $6, updated_at = now(), completed_at = now()"
        f" WHERE id = $1 RETURNING {_EXECUTION_COLUMNS}",
        execution_id,
        status.value,
        tokens_used,
        duration_ms,
        json.dumps(output),
        error_message,
    )
    assert row is not None
    return _execution_of(row)


async def list_agent_executions(
    conn: Connection,
    org_id: str,
    migration_id: str,
    *,
    agent_type: AgentType | None,
    status: AgentExecutionStatus | None,
    after: Sequence[Any] | None,
    limit: int,
) -> list[AgentExecution]:
    """A page of a migration's executions by (created_at, id), optionally filtered."""
    keyset, args = keyset_after(("created_at", "id"), after)
    conditions = [keyset]
    args.extend([migration_id, org_id])
    conditions.append(f"migration_id = ${len(args) - 1} AND org_id = ${len(args)}")
    if agent_type is not None:
        args.append(agent_type.value)
        conditions.append(f"agent_type = ${len(args)}")
    if status is not None:
        args.append(status.value)
        conditions.append(f"status = ${len(args)}")
    args.append(limit)
    rows = await conn.fetch(
        f"SELECT {_EXECUTION_COLUMNS} FROM agent_executions WHERE {' AND '.join(conditions)}"
        f" ORDER BY created_at, id LIMIT ${len(args)}",
        *args,
    )
    return [_execution_of(row) for row in rows]


# --- token usage --------------------------------------------------------------------------


async def add_token_usage(
    conn: Connection,
    org_id: str,
    month: date,
    agent_type: AgentType,
    *,
    tokens: int = 0,
    executions: int = 0,
) -> None:
    """Adds tokens and executions to an organization's month and agent type."""
    await conn.execute(
        "INSERT INTO token_usage (org_id, month, agent_type, tokens_used, execution_count)"
        " VALUES ($1, $2, $3, $4, $5)"
        " ON CONFLICT (org_id, month, agent_type) DO UPDATE SET"
        " tokens_used = token_usage.tokens_used + EXCLUDED.tokens_used,"
        " execution_count = token_usage.execution_count + EXCLUDED.execution_count",
        org_id,
        month,
        agent_type.value,
        tokens,
        executions,
    )


async def tokens_in_month(conn: Connection, org_id: str, month: date) -> int:
    """Tokens an organization's executions used in one month."""
    total: int = await conn.fetchval(
        "SELECT coalesce(sum(tokens_used), 0)::bigint FROM token_usage"
        " WHERE org_id = $1 AND month = $2",
        org_id,
        month,
    )
    return total


async def token_usage(
    conn: Connection, org_id: str, first: date, last: date
) -> list[tuple[date, AgentTypeUsage]]:
    """(month, usage of one agent type) for the months in [first, last] that have usage."""
    rows = await conn.fetch(
        "SELECT month, agent_type, tokens_used, execution_count FROM token_usage"
        " WHERE org_id = $1 AND month BETWEEN $2 AND $3 ORDER BY month, agent_type",
        org_id,
        first,
        last,
    )
    return [
        (
            row["month"],
            AgentTypeUsage(
                AgentType(row["agent_type"]), row["tokens_used"], row["execution_count"]
            ),
        )
        for row in rows
    ]
