"""The rules and objects of the migration service: pure, no I/O, no clock (callers pass ``now``).

Callers use this package as one module (`domain.apply_verb`, `from services.migration.domain
import Migration`); the code lives by what it is about: `statuses` (the enums and status
sets), `lifecycle` (the state machine, progress, deletion), `quotas` (plan limits, usage
months), `agent_executions` (how an execution may end), `fields` (migration fields, update
masks, etags) and `resources` (the frozen resources and their names). Refusals are the
shared errors of shared/errors.py, raised as they are: InvalidArgument (a BadRequest listing
every violation), FailedPrecondition (``IllegalTransition``, ``ProgressDecreased``, ...) and
QuotaExceeded (a QuotaFailure).
"""

from services.migration.domain.agent_executions import (
    MAX_DURATION_MS,
    MAX_TOKENS_PER_EXECUTION,
    check_agent_completion,
)
from services.migration.domain.fields import (
    CONFIG_FIELDS,
    MAX_DESCRIPTION_LENGTH,
    MAX_DISPLAY_NAME_LENGTH,
    MAX_REASON_LENGTH,
    UPDATABLE_FIELDS,
    check_etag,
    check_update_mask,
    migration_field_violations,
    text_violations,
)
from services.migration.domain.lifecycle import (
    IllegalTransition,
    Lifecycle,
    ProgressDecreased,
    apply_verb,
    check_agent_execution_allowed,
    check_deletable,
    report_progress,
    transition,
)
from services.migration.domain.quotas import (
    MAX_USAGE_MONTHS,
    PLAN_LIMITS,
    PlanLimits,
    check_active_migration_quota,
    check_token_quota,
    month_of,
    month_start,
    usage_months,
)
from services.migration.domain.resources import (
    AGENT_EXECUTION_PATTERN,
    MIGRATION_PATTERN,
    ORG_PATTERN,
    SCHEMA_PATTERN,
    AgentCompletion,
    AgentExecution,
    AgentTypeUsage,
    ChangeEvent,
    Connections,
    Migration,
    MigrationChange,
    MigrationDraft,
    MigrationPatch,
    MonthlyUsage,
    Schema,
    Usage,
    etag_of,
    migration_name,
)
from services.migration.domain.statuses import (
    ACTIVE_STATUSES,
    IN_FLIGHT_STATUSES,
    TERMINAL_STATUSES,
    AgentExecutionStatus,
    AgentType,
    MigrationStatus,
    Plan,
    SchemaType,
    Verb,
)

__all__ = [
    "ACTIVE_STATUSES",
    "AGENT_EXECUTION_PATTERN",
    "CONFIG_FIELDS",
    "IN_FLIGHT_STATUSES",
    "MAX_DESCRIPTION_LENGTH",
    "MAX_DISPLAY_NAME_LENGTH",
    "MAX_DURATION_MS",
    "MAX_REASON_LENGTH",
    "MAX_TOKENS_PER_EXECUTION",
    "MAX_USAGE_MONTHS",
    "MIGRATION_PATTERN",
    "ORG_PATTERN",
    "PLAN_LIMITS",
    "SCHEMA_PATTERN",
    "TERMINAL_STATUSES",
    "UPDATABLE_FIELDS",
    "AgentCompletion",
    "AgentExecution",
    "AgentExecutionStatus",
    "AgentType",
    "AgentTypeUsage",
    "ChangeEvent",
    "Connections",
    "IllegalTransition",
    "Lifecycle",
    "Migration",
    "MigrationChange",
    "MigrationDraft",
    "MigrationPatch",
    "MigrationStatus",
    "MonthlyUsage",
    "Plan",
    "PlanLimits",
    "ProgressDecreased",
    "Schema",
    "SchemaType",
    "Usage",
    "Verb",
    "apply_verb",
    "check_active_migration_quota",
    "check_agent_completion",
    "check_agent_execution_allowed",
    "check_deletable",
    "check_etag",
    "check_token_quota",
    "check_update_mask",
    "etag_of",
    "migration_field_violations",
    "migration_name",
    "month_of",
    "month_start",
    "report_progress",
    "text_violations",
    "transition",
    "usage_months",
]
