"""The resources of the migration service as frozen domain objects, and their names.

Connection configs here are in clear: only messages.py turns a resource into a response, and
it always redacts them (GetMigrationConnections excepted).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from services.migration.domain.lifecycle import Lifecycle
from services.migration.domain.statuses import (
    AgentExecutionStatus,
    AgentType,
    MigrationStatus,
    SchemaType,
)

ORG_PATTERN = "organizations/{org}"
MIGRATION_PATTERN = "organizations/{org}/migrations/{migration}"
SCHEMA_PATTERN = "organizations/{org}/migrations/{migration}/schemas/{schema}"
AGENT_EXECUTION_PATTERN = (
    "organizations/{org}/migrations/{migration}/agentExecutions/{agent_execution}"
)


def etag_of(resource_id: str, version: int) -> str:
    """The opaque etag of one version of a resource."""
    return hashlib.sha256(f"{resource_id}:{version}".encode()).hexdigest()[:20]


def migration_name(org_id: str, migration_id: str) -> str:
    """`organizations/{org}/migrations/{migration}`."""
    return f"organizations/{org_id}/migrations/{migration_id}"


@dataclass(frozen=True)
class MigrationDraft:
    """The caller-settable fields of a new migration (configs in clear, validated)."""

    display_name: str
    description: str
    source_config: Mapping[str, Any]
    target_config: Mapping[str, Any]


@dataclass(frozen=True)
class Migration:
    """A migration as stored, connection configs in clear."""

    id: str
    org_id: str
    display_name: str
    description: str
    source_config: Mapping[str, Any]
    target_config: Mapping[str, Any]
    lifecycle: Lifecycle
    run: int
    version: int
    created_at: datetime
    updated_at: datetime

    @property
    def name(self) -> str:
        """Resource name."""
        return migration_name(self.org_id, self.id)

    @property
    def etag(self) -> str:
        """Current etag."""
        return etag_of(self.id, self.version)

    @property
    def status(self) -> MigrationStatus:
        """Current lifecycle status."""
        return self.lifecycle.status


@dataclass(frozen=True)
class MigrationPatch:
    """An UpdateMigration request: new values (configs in clear), the mask, the etag sent."""

    name: str
    values: Mapping[str, Any]
    paths: tuple[str, ...]
    etag: str


class ChangeEvent(StrEnum):
    """What a committed write did to a migration (WatchMigration's event types)."""

    SNAPSHOT = "SNAPSHOT"  # not a write: the state a watch starts from
    STATUS_CHANGED = "STATUS_CHANGED"
    PROGRESS_CHANGED = "PROGRESS_CHANGED"
    UPDATED = "UPDATED"
    DELETED = "DELETED"


@dataclass(frozen=True)
class MigrationChange:
    """One committed version of a migration and what changed in it."""

    event: ChangeEvent
    migration: Migration


@dataclass(frozen=True)
class Schema:
    """A stored snapshot of a database schema (definition in canonical form)."""

    id: str
    org_id: str
    migration_id: str
    type: SchemaType
    definition: Mapping[str, Any]
    fingerprint: str
    metadata: Mapping[str, Any]
    created_at: datetime

    @property
    def name(self) -> str:
        """Resource name."""
        return f"{migration_name(self.org_id, self.migration_id)}/schemas/{self.id}"


@dataclass(frozen=True)
class AgentExecution:
    """One run of one agent for one migration."""

    id: str
    org_id: str
    migration_id: str
    agent_type: AgentType
    status: AgentExecutionStatus
    tokens_used: int
    duration_ms: int
    input: Mapping[str, Any]
    output: Mapping[str, Any]
    error_message: str
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None

    @property
    def name(self) -> str:
        """Resource name."""
        return f"{migration_name(self.org_id, self.migration_id)}/agentExecutions/{self.id}"


@dataclass(frozen=True)
class AgentCompletion:
    """A CompleteAgentExecution request (status None when the caller sent none)."""

    name: str
    status: AgentExecutionStatus | None
    tokens_used: int
    duration_ms: int
    output: Mapping[str, Any]
    error_message: str


@dataclass(frozen=True)
class AgentTypeUsage:
    """Tokens and executions of one agent type in one month."""

    agent_type: AgentType
    tokens_used: int
    execution_count: int


@dataclass(frozen=True)
class MonthlyUsage:
    """Tokens of one calendar month (UTC), per agent type."""

    month: str
    agent_types: tuple[AgentTypeUsage, ...]

    @property
    def tokens_used(self) -> int:
        """All agent types together."""
        return sum(usage.tokens_used for usage in self.agent_types)


@dataclass(frozen=True)
class Usage:
    """GetUsage: months of token usage and the plan's limits (None = unlimited)."""

    org_id: str
    months: tuple[MonthlyUsage, ...]
    monthly_token_limit: int | None
    active_migration_limit: int | None
    active_migrations: int


@dataclass(frozen=True)
class Connections:
    """GetMigrationConnections: a migration's connection configs in clear."""

    name: str
    source_config: Mapping[str, Any]
    target_config: Mapping[str, Any]
