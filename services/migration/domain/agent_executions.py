"""Rules of agent executions: how one may end, within which bounds."""

from __future__ import annotations

from services.migration.domain.fields import MAX_REASON_LENGTH, text_violations
from services.migration.domain.statuses import AgentExecutionStatus
from shared.errors import FailedPrecondition, FieldViolation, InvalidArgument

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
    violations += text_violations("error_message", error_message, 0, MAX_REASON_LENGTH)
    if violations:
        raise InvalidArgument(violations)
    if current is not AgentExecutionStatus.RUNNING:
        raise FailedPrecondition(
            f"the agent execution already ended ({current.value})",
            reason="AGENT_EXECUTION_NOT_RUNNING",
            metadata={"current_status": current.value},
        )
