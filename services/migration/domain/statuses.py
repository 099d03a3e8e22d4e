"""The migration service's enums (proto names without their prefix) and status sets."""

from __future__ import annotations

from enum import StrEnum


class Plan(StrEnum):
    """An organization's plan (owned by the org service)."""

    FREE = "FREE"
    PRO = "PRO"
    ENTERPRISE = "ENTERPRISE"


class MigrationStatus(StrEnum):
    """Where a migration stands in its lifecycle."""

    PENDING = "PENDING"
    ANALYZING = "ANALYZING"
    MIGRATING = "MIGRATING"
    VERIFYING = "VERIFYING"
    PAUSED = "PAUSED"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


class Verb(StrEnum):
    """A lifecycle RPC, named by its verb."""

    START = "START"
    ADVANCE = "ADVANCE"
    PAUSE = "PAUSE"
    RESUME = "RESUME"
    COMPLETE = "COMPLETE"
    FAIL = "FAIL"
    CANCEL = "CANCEL"


class SchemaType(StrEnum):
    """Which side of a migration a schema describes."""

    SOURCE = "SOURCE"
    TARGET = "TARGET"


class AgentType(StrEnum):
    """The kind of agent that ran."""

    SCHEMA_ANALYZER = "SCHEMA_ANALYZER"
    SCHEMA_MAPPER = "SCHEMA_MAPPER"
    DATA_MIGRATOR = "DATA_MIGRATOR"
    VALIDATOR = "VALIDATOR"
    OPTIMIZER = "OPTIMIZER"


class AgentExecutionStatus(StrEnum):
    """Where an agent execution stands; RUNNING is the only non-terminal status."""

    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


ACTIVE_STATUSES = frozenset(
    {MigrationStatus.ANALYZING, MigrationStatus.MIGRATING, MigrationStatus.VERIFYING}
)
TERMINAL_STATUSES = frozenset(
    {MigrationStatus.COMPLETED, MigrationStatus.FAILED, MigrationStatus.CANCELLED}
)
# Started and not finished: what the plan's "active migrations" limit counts (pausing does not
# free a slot, or pausing would be a way around the quota).
IN_FLIGHT_STATUSES = ACTIVE_STATUSES | {MigrationStatus.PAUSED}
