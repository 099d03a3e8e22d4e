"""Use cases of AgentExecutionService: record agent runs and the tokens they spend.

Tokens count against the organization's plan in the calendar month (UTC) the execution
started: StartAgentExecution is refused once that month's tokens reached the limit;
CompleteAgentExecution always records what was spent (it is spent either way).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import asyncpg
from google.protobuf.message import Message

from services.migration import domain, store
from services.migration.domain import (
    AGENT_EXECUTION_PATTERN,
    MIGRATION_PATTERN,
    AgentCompletion,
    AgentExecution,
    AgentExecutionStatus,
    AgentType,
)
from services.migration.org_directory import OrgDirectory
from shared import outbox
from shared.db import Connection
from shared.errors import FieldViolation, InvalidArgument, NotFound
from shared.idempotency import create_once
from shared.names import parse_name
from shared.pagination import Page, PageTokens, page_of, page_size

ResponseT = TypeVar("ResponseT", bound=Message)

RESOURCE = "agent_execution"


class AgentExecutions:
    """Agent executions of migrations and the organization's token usage."""

    def __init__(self, pool: asyncpg.Pool, orgs: OrgDirectory, page_tokens: PageTokens) -> None:
        self._pool = pool
        self._orgs = orgs
        self._tokens = page_tokens

    async def start(
        self,
        parent: str,
        *,
        agent_type: AgentType | None,
        agent_input: Mapping[str, Any],
        request: Message,
        response_type: type[ResponseT],
        respond: Callable[[AgentExecution], ResponseT],
    ) -> ResponseT:
        """StartAgentExecution: the migration must be active and tokens left this month."""
        ids = parse_name(parent, MIGRATION_PATTERN, "parent")
        org_id, migration_id = ids["org"], ids["migration"]
        if agent_type is None:
            raise InvalidArgument(
                [FieldViolation("agent_execution.agent_type", "must be set (AGENT_TYPE_...)")]
            )

        async def create(conn: Connection) -> ResponseT:
            # SHARE: the migration cannot leave its active status until this commits.
            status = await store.migration_status(conn, org_id, migration_id, lock="SHARE")
            if status is None:
                raise NotFound("Migration", parent)
            domain.check_agent_execution_allowed(status)
            org = await self._orgs.organization(org_id)
            month = domain.month_of(await store.transaction_time(conn))
            await store.lock_org_quota(conn, org_id)
            used = await store.tokens_in_month(conn, org_id, month)
            domain.check_token_quota(org.plan, used, subject=f"organizations/{org_id}")
            execution = await store.insert_agent_execution(
                conn, org_id, migration_id, agent_type, agent_input
            )
            await store.add_token_usage(conn, org_id, month, agent_type, executions=1)
            await outbox.record(
                conn,
                action="agent_execution.start",
                resource_type=RESOURCE,
                resource_id=execution.id,
                org_id=org_id,
                details={"migration_id": migration_id, "agent_type": agent_type.value},
            )
            return respond(execution)

        return await create_once(self._pool, request, response_type, create)

    async def complete(self, completion: AgentCompletion) -> AgentExecution:
        """CompleteAgentExecution: only RUNNING executions; duration measured when not sent."""
        ids = parse_name(completion.name, AGENT_EXECUTION_PATTERN, "name")
        async with self._pool.acquire() as conn, conn.transaction():
            current = await self._require(conn, ids, completion.name, lock=True)
            domain.check_agent_completion(
                current.status,
                completion.status,
                completion.tokens_used,
                completion.duration_ms,
                completion.error_message,
            )
            assert completion.status is not None
            duration_ms = completion.duration_ms
            if duration_ms == 0:
                elapsed = await store.transaction_time(conn) - current.created_at
                duration_ms = max(0, int(elapsed.total_seconds() * 1000))
            completed = await store.complete_agent_execution(
                conn,
                current.id,
                status=completion.status,
                tokens_used=completion.tokens_used,
                duration_ms=duration_ms,
                output=completion.output,
                error_message=completion.error_message.strip(),
            )
            await store.add_token_usage(
                conn,
                current.org_id,
                domain.month_of(current.created_at),
                current.agent_type,
                tokens=completion.tokens_used,
            )
            await outbox.record(
                conn,
                action="agent_execution.complete",
                resource_type=RESOURCE,
                resource_id=current.id,
                org_id=current.org_id,
                details={
                    "migration_id": current.migration_id,
                    "status": completion.status.value,
                    "tokens_used": completion.tokens_used,
                },
            )
            return completed

    async def get(self, name: str) -> AgentExecution:
        """GetAgentExecution."""
        ids = parse_name(name, AGENT_EXECUTION_PATTERN, "name")
        async with self._pool.acquire() as conn:
            return await self._require(conn, ids, name)

    async def list_executions(
        self,
        parent: str,
        *,
        agent_type: AgentType | None,
        status: AgentExecutionStatus | None,
        size: int,
        token: str,
    ) -> Page[AgentExecution]:
        """ListAgentExecutions: keyset pages by (create_time, id), optionally filtered."""
        ids = parse_name(parent, MIGRATION_PATTERN, "parent")
        limit = page_size(size)
        query = (
            "agent_executions",
            ids["org"],
            ids["migration"],
            agent_type.value if agent_type else "",
            status.value if status else "",
        )
        after = self._tokens.decode(token, query)
        async with self._pool.acquire() as conn:
            # A missing parent answers NOT_FOUND, as GetMigration does (docs/api-conventions.md).
            if await store.migration_status(conn, ids["org"], ids["migration"]) is None:
                raise NotFound("Migration", parent)
            rows = await store.list_agent_executions(
                conn,
                ids["org"],
                ids["migration"],
                agent_type=agent_type,
                status=status,
                after=after,
                limit=limit + 1,
            )
        return page_of(self._tokens, rows, limit, query, lambda e: (e.created_at, e.id))

    async def _require(
        self, conn: Connection, ids: Mapping[str, str], name: str, *, lock: bool = False
    ) -> AgentExecution:
        found = await store.agent_execution(
            conn, ids["org"], ids["migration"], ids["agent_execution"], lock=lock
        )
        if found is None:
            raise NotFound("AgentExecution", name)
        return found
