"""The rules of the migration service: lifecycle, progress, plan quotas and input checks.

Everything here is pure (no I/O, no clock: callers pass ``now``). Failures raise the shared
errors of shared/errors.py as they are, so the shared interceptor maps them unchanged; each
carries its ErrorInfo ``reason`` and ``metadata`` plus the BadRequest or QuotaFailure detail:

- ``InvalidArgument``    -> INVALID_ARGUMENT with a BadRequest listing every violation
- ``FailedPrecondition`` -> FAILED_PRECONDITION (``IllegalTransition``, ``ProgressDecreased``, ...)
- ``QuotaExceeded``      -> RESOURCE_EXHAUSTED with a QuotaFailure
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from services.migration.connection_config import connection_config_violations
from shared.errors import (
    EtagMismatch,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    QuotaExceeded,
    QuotaViolation,
)

# ---------------------------------------------------------------------------------------------
# Enums (proto names without their prefix)


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

# ---------------------------------------------------------------------------------------------
# Errors: the two lifecycle refusals tests and callers tell apart (FAILED_PRECONDITION).


class IllegalTransition(FailedPrecondition):
    """A lifecycle verb that the current status does not allow (reason ILLEGAL_TRANSITION)."""

    def __init__(self, current: MigrationStatus, verb: Verb) -> None:
        super().__init__(
            f"cannot {verb.value.lower()} a migration that is {current.value}",
            reason="ILLEGAL_TRANSITION",
            metadata={"current_status": current.value, "verb": verb.value},
        )
        self.current = current
        self.verb = verb


class ProgressDecreased(FailedPrecondition):
    """A progress report below the progress already reached in this run."""

    def __init__(self, current: float, requested: float) -> None:
        super().__init__(
            f"progress cannot decrease within a run ({requested!r} < {current!r})",
            reason="PROGRESS_DECREASED",
            metadata={"current_progress": repr(current), "requested_progress": repr(requested)},
        )
        self.current = current
        self.requested = requested


# ---------------------------------------------------------------------------------------------
# Lifecycle

_NEXT_PHASE = {
    MigrationStatus.ANALYZING: MigrationStatus.MIGRATING,
    MigrationStatus.MIGRATING: MigrationStatus.VERIFYING,
}


def transition(
    current: MigrationStatus, verb: Verb, *, paused_status: MigrationStatus | None = None
) -> MigrationStatus:
    """The status ``verb`` moves a ``current`` migration to, or raise IllegalTransition.

    ``paused_status`` is the status a PAUSED migration was paused in; RESUME returns there.
    """
    if verb is Verb.START and current is MigrationStatus.PENDING:
        return MigrationStatus.ANALYZING
    if verb is Verb.ADVANCE and current in _NEXT_PHASE:
        return _NEXT_PHASE[current]
    if verb is Verb.PAUSE and current in ACTIVE_STATUSES:
        return MigrationStatus.PAUSED
    if verb is Verb.RESUME and current is MigrationStatus.PAUSED:
        if paused_status is None or paused_status not in ACTIVE_STATUSES:
            raise IllegalTransition(current, verb)
        return paused_status
    if verb is Verb.COMPLETE and current is MigrationStatus.VERIFYING:
        return MigrationStatus.COMPLETED
    if verb is Verb.FAIL and current in ACTIVE_STATUSES:
        return MigrationStatus.FAILED
    if verb is Verb.CANCEL and current not in TERMINAL_STATUSES:
        return MigrationStatus.CANCELLED
    raise IllegalTransition(current, verb)


@dataclass(frozen=True)
class Lifecycle:
    """The lifecycle columns of a migration: what the verbs and progress reports change."""

    status: MigrationStatus = MigrationStatus.PENDING
    progress: float = 0.0
    start_time: datetime | None = None
    complete_time: datetime | None = None
    paused_status: MigrationStatus | None = None
    failure_reason: str = ""


MAX_REASON_LENGTH = 2000


def apply_verb(state: Lifecycle, verb: Verb, now: datetime, *, reason: str = "") -> Lifecycle:
    """The lifecycle after ``verb`` at ``now``; raises IllegalTransition or InvalidArgument.

    START sets start_time and resets progress to 0 (a new run); a terminal status sets
    complete_time; COMPLETE sets progress to 1; FAIL needs a ``reason``.
    """
    if verb is Verb.FAIL:
        reason = reason.strip()
        violations = _text_violations("reason", reason, 1, MAX_REASON_LENGTH)
        if violations:
            raise InvalidArgument(violations)
    new_status = transition(state.status, verb, paused_status=state.paused_status)
    changes: dict[str, Any] = {"status": new_status, "paused_status": None}
    if verb is Verb.START:
        changes.update(start_time=now, complete_time=None, progress=0.0, failure_reason="")
    elif verb is Verb.PAUSE:
        changes["paused_status"] = state.status
    if new_status in TERMINAL_STATUSES:
        changes["complete_time"] = now
    if new_status is MigrationStatus.COMPLETED:
        changes["progress"] = 1.0
    if new_status is MigrationStatus.FAILED:
        changes["failure_reason"] = reason
    return dataclasses.replace(state, **changes)


def report_progress(state: Lifecycle, progress: float) -> Lifecycle:
    """The lifecycle with a new progress; the same value again is accepted unchanged.

    Raises InvalidArgument for NaN, infinities and values outside [0, 1], FailedPrecondition
    (MIGRATION_NOT_ACTIVE) unless the migration is active, ProgressDecreased below the
    progress already reached.
    """
    if not isinstance(progress, (int, float)) or isinstance(progress, bool):
        raise InvalidArgument([FieldViolation("progress", "must be a number")])
    if not math.isfinite(progress):
        raise InvalidArgument([FieldViolation("progress", "must be a finite number")])
    if not 0.0 <= progress <= 1.0:
        raise InvalidArgument([FieldViolation("progress", "must be between 0 and 1")])
    if state.status not in ACTIVE_STATUSES:
        raise FailedPrecondition(
            f"progress can only be reported while a migration is active, not {state.status}",
            reason="MIGRATION_NOT_ACTIVE",
            metadata={"current_status": state.status.value},
        )
    if progress < state.progress:
        raise ProgressDecreased(state.progress, float(progress))
    return dataclasses.replace(state, progress=float(progress))


def check_deletable(status: MigrationStatus) -> None:
    """Raise FailedPrecondition unless a migration in ``status`` may be deleted."""
    if status in IN_FLIGHT_STATUSES:
        raise FailedPrecondition(
            f"a {status.value} migration cannot be deleted; cancel it first",
            reason="MIGRATION_IN_FLIGHT",
            metadata={"current_status": status.value},
        )


def check_agent_execution_allowed(status: MigrationStatus) -> None:
    """Raise FailedPrecondition unless agents may start work on a migration in ``status``."""
    if status not in ACTIVE_STATUSES:
        raise FailedPrecondition(
            f"agents can only run while a migration is active, not {status.value}",
            reason="MIGRATION_NOT_ACTIVE",
            metadata={"current_status": status.value},
        )


# ---------------------------------------------------------------------------------------------
# Plan quotas


@dataclass(frozen=True)
class PlanLimits:
    """What a plan allows; None means unlimited."""

    active_migrations: int | None
    monthly_tokens: int | None


PLAN_LIMITS: Mapping[Plan, PlanLimits] = {
    Plan.FREE: PlanLimits(active_migrations=2, monthly_tokens=1_000_000),
    Plan.PRO: PlanLimits(active_migrations=25, monthly_tokens=50_000_000),
    Plan.ENTERPRISE: PlanLimits(active_migrations=None, monthly_tokens=None),
}


def _quota_exceeded(quota: str, plan: Plan, limit: int, usage: int, subject: str) -> QuotaExceeded:
    """RESOURCE_EXHAUSTED with one QuotaFailure violation for ``subject``.

    Reason ``ACTIVE_MIGRATIONS_QUOTA_EXCEEDED`` or ``MONTHLY_TOKENS_QUOTA_EXCEEDED``.
    """
    description = f"the {plan.value} plan allows {limit} {quota.replace('_', ' ')}; {usage} used"
    return QuotaExceeded(
        description,
        [QuotaViolation(subject, description)],
        reason=f"{quota.upper()}_QUOTA_EXCEEDED",
        metadata={"quota": quota, "plan": plan.value, "limit": str(limit), "usage": str(usage)},
    )


def check_active_migration_quota(plan: Plan, in_flight: int, *, subject: str) -> None:
    """Raise QuotaExceeded if starting one more migration passes the plan's limit.

    ``in_flight`` counts the organization's migrations in IN_FLIGHT_STATUSES right now;
    ``subject`` is the organization's resource name (the QuotaFailure subject).
    """
    limit = PLAN_LIMITS[plan].active_migrations
    if limit is not None and in_flight + 1 > limit:
        raise _quota_exceeded("active_migrations", plan, limit, in_flight, subject)


def check_token_quota(plan: Plan, used_this_month: int, *, subject: str) -> None:
    """Raise QuotaExceeded if the organization has no agent tokens left this month."""
    limit = PLAN_LIMITS[plan].monthly_tokens
    if limit is not None and used_this_month >= limit:
        raise _quota_exceeded("monthly_tokens", plan, limit, used_this_month, subject)


# ---------------------------------------------------------------------------------------------
# Agent executions


# One execution's tokens: far above any model's, far below what would overflow monthly sums.
MAX_TOKENS_PER_EXECUTION = 10**12
MAX_DURATION_MS = 366 * 24 * 3600 * 1000


def check_agent_completion(
    current: AgentExecutionStatus,
    new_status: AgentExecutionStatus | None,
    tokens_used: int,
    duration_ms: int,
    error_message: str = "",
) -> None:
    """Check a CompleteAgentExecution request against the execution's current status.

    Raises InvalidArgument listing every bad field, then FailedPrecondition
    (AGENT_EXECUTION_NOT_RUNNING) unless the execution is RUNNING.
    """
    violations: list[FieldViolation] = []
    if new_status is None or new_status is AgentExecutionStatus.RUNNING:
        violations.append(FieldViolation("status", "must be SUCCEEDED, FAILED or CANCELLED"))
    if not 0 <= tokens_used <= MAX_TOKENS_PER_EXECUTION:
        violations.append(
            FieldViolation("tokens_used", f"must be between 0 and {MAX_TOKENS_PER_EXECUTION:,}")
        )
    if not 0 <= duration_ms <= MAX_DURATION_MS:
        violations.append(
            FieldViolation("duration_ms", f"must be between 0 and {MAX_DURATION_MS:,} (a year)")
        )
    violations += _text_violations("error_message", error_message, 0, MAX_REASON_LENGTH)
    if violations:
        raise InvalidArgument(violations)
    if current is not AgentExecutionStatus.RUNNING:
        raise FailedPrecondition(
            f"the agent execution already ended ({current.value})",
            reason="AGENT_EXECUTION_NOT_RUNNING",
            metadata={"current_status": current.value},
        )


# ---------------------------------------------------------------------------------------------
# Migration fields

MAX_DISPLAY_NAME_LENGTH = 200
MAX_DESCRIPTION_LENGTH = 10_000
UPDATABLE_FIELDS = frozenset({"display_name", "description", "source_config", "target_config"})
CONFIG_FIELDS = frozenset({"source_config", "target_config"})


def _text_violations(
    name: str, value: str, min_length: int, max_length: int
) -> list[FieldViolation]:
    if min_length > 0 and not value.strip():
        return [FieldViolation(name, "is required")]
    if len(value) > max_length:
        return [FieldViolation(name, f"must be at most {max_length} characters")]
    return []


def migration_field_violations(
    values: Mapping[str, Any], *, prefix: str = "migration."
) -> list[FieldViolation]:
    """Every violation among the given migration fields (those present in ``values``).

    Keys are proto field names: display_name, description, source_config, target_config.
    """
    violations: list[FieldViolation] = []
    if "display_name" in values:
        violations += _text_violations(
            prefix + "display_name", values["display_name"], 1, MAX_DISPLAY_NAME_LENGTH
        )
    if "description" in values:
        violations += _text_violations(
            prefix + "description", values["description"], 0, MAX_DESCRIPTION_LENGTH
        )
    for name in ("source_config", "target_config"):
        if name in values:
            violations += connection_config_violations(values[name], prefix + name)
    return violations


def check_update_mask(paths: Sequence[str], status: MigrationStatus) -> None:
    """Check an UpdateMigration mask: InvalidArgument for empty/unknown paths, then
    FailedPrecondition (CONFIG_IMMUTABLE) for connection configs of a started migration."""
    violations: list[FieldViolation] = []
    if not paths:
        violations.append(FieldViolation("update_mask", "must name at least one field"))
    for path in paths:
        if path not in UPDATABLE_FIELDS:
            violations.append(
                FieldViolation(
                    "update_mask",
                    f"{path!r} cannot be updated; updatable: {', '.join(sorted(UPDATABLE_FIELDS))}",
                )
            )
    if violations:
        raise InvalidArgument(violations)
    changed_configs = sorted(CONFIG_FIELDS.intersection(paths))
    if changed_configs and status is not MigrationStatus.PENDING:
        raise FailedPrecondition(
            f"connection configs can only change while the migration is PENDING, not {status}",
            reason="CONFIG_IMMUTABLE",
            metadata={"current_status": status.value, "fields": ",".join(changed_configs)},
        )


_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
MAX_USAGE_MONTHS = 121


def usage_months(start_month: str, end_month: str, today: date) -> list[str]:
    """The months ``YYYY-MM`` from start to end inclusive; empty bounds mean ``today``'s month.

    Raises InvalidArgument for malformed bounds, a start after the end, or too long a range.
    """
    current = f"{today.year:04d}-{today.month:02d}"
    bounds: dict[str, tuple[int, int]] = {}
    violations: list[FieldViolation] = []
    for name, value in (
        ("start_month", start_month or current),
        ("end_month", end_month or current),
    ):
        match = _MONTH.match(value)
        if match is None:
            violations.append(FieldViolation(name, "must be a month written YYYY-MM"))
        else:
            bounds[name] = (int(match[1]), int(match[2]))
    if violations:
        raise InvalidArgument(violations)
    first = bounds["start_month"][0] * 12 + bounds["start_month"][1] - 1
    last = bounds["end_month"][0] * 12 + bounds["end_month"][1] - 1
    if last < first:
        raise InvalidArgument([FieldViolation("end_month", "must not be before start_month")])
    if last - first + 1 > MAX_USAGE_MONTHS:
        raise InvalidArgument(
            [FieldViolation("end_month", f"the range spans more than {MAX_USAGE_MONTHS} months")]
        )
    return [f"{m // 12:04d}-{m % 12 + 1:02d}" for m in range(first, last + 1)]


def check_etag(sent: str, current: str, resource_type: str, name: str) -> None:
    """Raise EtagMismatch (ABORTED) when an etag was sent and it is not the current one."""
    if sent and sent != current:
        raise EtagMismatch(resource_type, name)


def month_of(moment: datetime) -> date:
    """The first day of the calendar month (UTC) that ``moment`` falls in."""
    utc = moment.astimezone(UTC)
    return date(utc.year, utc.month, 1)


def month_start(month: str) -> date:
    """The first day of a ``YYYY-MM`` month (as produced by usage_months)."""
    year, number = month.split("-")
    return date(int(year), int(number), 1)
