"""Plan quotas (active migrations, monthly agent tokens) and the months usage is counted in.

A limit reached is the shared QuotaExceeded (RESOURCE_EXHAUSTED with a QuotaFailure);
docs/architecture.md#plan-quotas.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime

from services.migration.domain.statuses import Plan
from shared.errors import FieldViolation, InvalidArgument, QuotaExceeded, QuotaViolation


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


def month_of(moment: datetime) -> date:
    """The first day of the calendar month (UTC) that ``moment`` falls in."""
    utc = moment.astimezone(UTC)
    return date(utc.year, utc.month, 1)


def month_start(month: str) -> date:
    """The first day of a ``YYYY-MM`` month (as produced by usage_months)."""
    year, number = month.split("-")
    return date(int(year), int(number), 1)
