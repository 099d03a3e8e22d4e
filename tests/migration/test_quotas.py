"""Plan quotas: active migrations and monthly agent tokens (docs/architecture.md#plan-quotas)."""

from __future__ import annotations

import pytest
from google.rpc import error_details_pb2

from services.migration.domain import (
    IN_FLIGHT_STATUSES,
    MigrationStatus,
    Plan,
    check_active_migration_quota,
    check_token_quota,
)
from shared.errors import QuotaExceeded

ORG = "organizations/0b5d5a53-7d4e-4a4b-9a4e-3f0c9b1d2e11"


@pytest.mark.parametrize(("plan", "in_flight"), [(Plan.FREE, 1), (Plan.PRO, 24)])
def test_starting_the_last_allowed_migration_passes(plan: Plan, in_flight: int) -> None:
    assert check_active_migration_quota(plan, in_flight, subject=ORG) is None


@pytest.mark.parametrize(("plan", "in_flight"), [(Plan.FREE, 2), (Plan.PRO, 25), (Plan.PRO, 40)])
def test_starting_past_the_active_migration_limit_is_refused(plan: Plan, in_flight: int) -> None:
    with pytest.raises(QuotaExceeded) as caught:
        check_active_migration_quota(plan, in_flight, subject=ORG)
    assert caught.value.reason == "ACTIVE_MIGRATIONS_QUOTA_EXCEEDED"
    assert caught.value.metadata["usage"] == str(in_flight)


def test_enterprise_has_no_active_migration_limit() -> None:
    assert check_active_migration_quota(Plan.ENTERPRISE, 10**6, subject=ORG) is None


@pytest.mark.parametrize(("plan", "used"), [(Plan.FREE, 999_999), (Plan.PRO, 49_999_999)])
def test_agents_may_start_while_tokens_remain(plan: Plan, used: int) -> None:
    assert check_token_quota(plan, used, subject=ORG) is None


@pytest.mark.parametrize(
    ("plan", "used", "limit"),
    [
        (Plan.FREE, 1_000_000, 1_000_000),
        (Plan.FREE, 1_500_000, 1_000_000),
        (Plan.PRO, 50_000_000, 50_000_000),
    ],
)
def test_agents_cannot_start_once_the_monthly_tokens_are_spent(
    plan: Plan, used: int, limit: int
) -> None:
    with pytest.raises(QuotaExceeded) as caught:
        check_token_quota(plan, used, subject=ORG)
    assert caught.value.reason == "MONTHLY_TOKENS_QUOTA_EXCEEDED"
    assert caught.value.metadata["limit"] == str(limit)


def test_enterprise_has_no_token_limit() -> None:
    assert check_token_quota(Plan.ENTERPRISE, 10**15, subject=ORG) is None


def test_quota_error_carries_a_quota_failure_for_the_organization() -> None:
    with pytest.raises(QuotaExceeded) as caught:
        check_active_migration_quota(Plan.FREE, 2, subject=ORG)
    (packed,) = caught.value.details()
    failure = error_details_pb2.QuotaFailure()
    assert packed.Unpack(failure)
    assert [v.subject for v in failure.violations] == [ORG]
    assert caught.value.metadata == {
        "quota": "active_migrations",
        "plan": "FREE",
        "limit": "2",
        "usage": "2",
    }


def test_paused_migrations_count_as_active_but_pending_and_finished_do_not() -> None:
    assert MigrationStatus.PAUSED in IN_FLIGHT_STATUSES
    assert not IN_FLIGHT_STATUSES & {
        MigrationStatus.PENDING,
        MigrationStatus.COMPLETED,
        MigrationStatus.FAILED,
        MigrationStatus.CANCELLED,
    }
