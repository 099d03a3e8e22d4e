"""The lifecycle of a migration: the state machine of its verbs, progress, deletion.

Pure: no I/O, no clock (callers pass ``now``). Refusals are the shared FailedPrecondition
(``IllegalTransition``, ``ProgressDecreased`` and plain ones with their reason) and the
shared InvalidArgument; docs/architecture.md#migration-lifecycle draws the machine.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.migration.domain.fields import MAX_REASON_LENGTH, text_violations
from services.migration.domain.statuses import (
    ACTIVE_STATUSES,
    IN_FLIGHT_STATUSES,
    TERMINAL_STATUSES,
    MigrationStatus,
    Verb,
)
from shared.errors import FailedPrecondition, FieldViolation, InvalidArgument

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


def apply_verb(state: Lifecycle, verb: Verb, now: datetime, *, reason: str = "") -> Lifecycle:
    """The lifecycle after ``verb`` at ``now``; raises IllegalTransition or InvalidArgument.

    START sets start_time and resets progress to 0 (a new run); a terminal status sets
    complete_time; COMPLETE sets progress to 1; FAIL needs a ``reason``.
    """
    if verb is Verb.FAIL:
        reason = reason.strip()
        violations = text_violations("reason", reason, 1, MAX_REASON_LENGTH)
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
