"""Input checks of the migration service: fields, update masks, months, agent completion."""

from __future__ import annotations

from datetime import date

import pytest

from services.migration.domain import (
    AgentExecutionStatus,
    MigrationStatus,
    check_agent_completion,
    check_update_mask,
    migration_field_violations,
    usage_months,
)
from shared.errors import FailedPrecondition, InvalidArgument

TODAY = date(2026, 3, 15)


def test_valid_migration_fields_have_no_violation() -> None:
    values = {
        "display_name": "Move billing",
        "description": "",
        "source_config": {"host": "db1", "port": 5432, "database": "billing"},
        "target_config": {"dsn": "postgresql://app@db2/billing"},
    }
    assert migration_field_violations(values) == []


@pytest.mark.parametrize("name", ["", "   ", "n" * 201])
def test_bad_display_name_is_a_violation(name: str) -> None:
    violations = migration_field_violations({"display_name": name})
    assert [v.field for v in violations] == ["migration.display_name"]


def test_every_bad_field_is_reported_at_once() -> None:
    violations = migration_field_violations(
        {
            "display_name": "",
            "description": "d" * 10_001,
            "source_config": {"port": 0},
            "target_config": {"colour": "blue"},
        }
    )
    assert {v.field for v in violations} == {
        "migration.display_name",
        "migration.description",
        "migration.source_config.port",
        "migration.target_config.colour",
    }


def test_empty_update_mask_is_invalid() -> None:
    with pytest.raises(InvalidArgument) as caught:
        check_update_mask([], MigrationStatus.PENDING)
    assert [v.field for v in caught.value.violations] == ["update_mask"]


@pytest.mark.parametrize("path", ["status", "progress", "name", "nonsense"])
def test_output_only_or_unknown_update_path_is_invalid(path: str) -> None:
    with pytest.raises(InvalidArgument):
        check_update_mask(["display_name", path], MigrationStatus.PENDING)


def test_connection_configs_can_change_while_pending() -> None:
    assert check_update_mask(["source_config", "target_config"], MigrationStatus.PENDING) is None


def test_connection_configs_are_frozen_once_started() -> None:
    with pytest.raises(FailedPrecondition) as caught:
        check_update_mask(["target_config"], MigrationStatus.MIGRATING)
    assert caught.value.reason == "CONFIG_IMMUTABLE"


def test_display_name_can_change_after_start() -> None:
    assert check_update_mask(["display_name", "description"], MigrationStatus.COMPLETED) is None


def test_usage_defaults_to_the_current_month() -> None:
    assert usage_months("", "", TODAY) == ["2026-03"]


def test_usage_range_lists_every_month_across_a_year_end() -> None:
    assert usage_months("2025-11", "2026-02", TODAY) == ["2025-11", "2025-12", "2026-01", "2026-02"]


@pytest.mark.parametrize("month", ["2026-13", "2026-1", "26-01", "2026/01"])
def test_malformed_month_is_invalid(month: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        usage_months(month, "2026-03", TODAY)
    assert [v.field for v in caught.value.violations] == ["start_month"]


def test_usage_range_ending_before_it_starts_is_invalid() -> None:
    with pytest.raises(InvalidArgument):
        usage_months("2026-03", "2026-02", TODAY)


def test_usage_range_longer_than_ten_years_is_invalid() -> None:
    with pytest.raises(InvalidArgument):
        usage_months("2000-01", "2026-03", TODAY)


def test_agent_completion_with_a_terminal_status_passes() -> None:
    assert (
        check_agent_completion(AgentExecutionStatus.RUNNING, AgentExecutionStatus.SUCCEEDED, 10, 5)
        is None
    )


def test_agent_completion_reports_every_bad_field() -> None:
    with pytest.raises(InvalidArgument) as caught:
        check_agent_completion(
            AgentExecutionStatus.RUNNING, AgentExecutionStatus.RUNNING, -1, -1, "e" * 2001
        )
    assert [v.field for v in caught.value.violations] == [
        "status",
        "tokens_used",
        "duration_ms",
        "error_message",
    ]


def test_completing_a_finished_agent_execution_is_failed_precondition() -> None:
    with pytest.raises(FailedPrecondition) as caught:
        check_agent_completion(AgentExecutionStatus.FAILED, AgentExecutionStatus.SUCCEEDED, 1, 1)
    assert caught.value.reason == "AGENT_EXECUTION_NOT_RUNNING"
