"""The migration lifecycle (docs/architecture.md#migration-lifecycle): transitions, timestamps
and progress."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime

import pytest

from services.migration.domain import (
    ACTIVE_STATUSES,
    IN_FLIGHT_STATUSES,
    TERMINAL_STATUSES,
    IllegalTransition,
    Lifecycle,
    MigrationStatus,
    ProgressDecreased,
    Verb,
    apply_verb,
    check_agent_execution_allowed,
    check_deletable,
    report_progress,
    transition,
)
from shared.errors import FailedPrecondition, InvalidArgument

S = MigrationStatus
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
LATER = datetime(2026, 5, 2, 12, 0, tzinfo=UTC)

# The whole table, written out independently of the implementation; RESUME is tested apart.
LEGAL = {
    (S.PENDING, Verb.START): S.ANALYZING,
    (S.PENDING, Verb.CANCEL): S.CANCELLED,
    (S.ANALYZING, Verb.ADVANCE): S.MIGRATING,
    (S.ANALYZING, Verb.PAUSE): S.PAUSED,
    (S.ANALYZING, Verb.FAIL): S.FAILED,
    (S.ANALYZING, Verb.CANCEL): S.CANCELLED,
    (S.MIGRATING, Verb.ADVANCE): S.VERIFYING,
    (S.MIGRATING, Verb.PAUSE): S.PAUSED,
    (S.MIGRATING, Verb.FAIL): S.FAILED,
    (S.MIGRATING, Verb.CANCEL): S.CANCELLED,
    (S.VERIFYING, Verb.COMPLETE): S.COMPLETED,
    (S.VERIFYING, Verb.PAUSE): S.PAUSED,
    (S.VERIFYING, Verb.FAIL): S.FAILED,
    (S.VERIFYING, Verb.CANCEL): S.CANCELLED,
    (S.PAUSED, Verb.CANCEL): S.CANCELLED,
}
ILLEGAL = [
    pair
    for pair in itertools.product(S, Verb)
    if pair not in LEGAL and pair != (S.PAUSED, Verb.RESUME)
]


@pytest.mark.parametrize(("current", "verb"), list(LEGAL), ids=str)
def test_legal_transition_moves_to_the_expected_status(current: S, verb: Verb) -> None:
    assert transition(current, verb) is LEGAL[(current, verb)]


@pytest.mark.parametrize(("current", "verb"), ILLEGAL, ids=str)
def test_illegal_transition_is_failed_precondition(current: S, verb: Verb) -> None:
    with pytest.raises(IllegalTransition) as caught:
        transition(current, verb, paused_status=S.ANALYZING)
    assert isinstance(caught.value, FailedPrecondition)
    assert caught.value.reason == "ILLEGAL_TRANSITION"
    assert caught.value.metadata == {"current_status": current.value, "verb": verb.value}


@pytest.mark.parametrize("phase", sorted(ACTIVE_STATUSES))
def test_resume_returns_to_the_phase_it_was_paused_in(phase: S) -> None:
    assert transition(S.PAUSED, Verb.RESUME, paused_status=phase) is phase


def test_resume_without_a_recorded_phase_is_illegal() -> None:
    with pytest.raises(IllegalTransition):
        transition(S.PAUSED, Verb.RESUME, paused_status=None)


def test_terminal_statuses_allow_no_verb() -> None:
    for status, verb in itertools.product(TERMINAL_STATUSES, Verb):
        with pytest.raises(IllegalTransition):
            transition(status, verb, paused_status=S.ANALYZING)


def test_start_sets_start_time_and_begins_the_run_at_zero() -> None:
    started = apply_verb(Lifecycle(S.PENDING, progress=0.3), Verb.START, NOW)
    assert (started.status, started.start_time, started.progress) == (S.ANALYZING, NOW, 0.0)
    assert started.complete_time is None


def test_advance_keeps_start_time_and_progress() -> None:
    state = Lifecycle(S.ANALYZING, progress=0.4, start_time=NOW)
    advanced = apply_verb(state, Verb.ADVANCE, LATER)
    assert (advanced.status, advanced.start_time, advanced.progress) == (S.MIGRATING, NOW, 0.4)


@pytest.mark.parametrize(
    ("current", "verb"),
    [
        (S.VERIFYING, Verb.COMPLETE),
        (S.MIGRATING, Verb.FAIL),
        (S.PENDING, Verb.CANCEL),
        (S.PAUSED, Verb.CANCEL),
    ],
)
def test_terminal_status_sets_complete_time(current: S, verb: Verb) -> None:
    state = Lifecycle(current, start_time=NOW, paused_status=S.MIGRATING)
    ended = apply_verb(state, verb, LATER, reason="disk full")
    assert ended.status in TERMINAL_STATUSES
    assert ended.complete_time == LATER


@pytest.mark.parametrize(
    ("current", "verb"),
    [(S.PENDING, Verb.START), (S.ANALYZING, Verb.ADVANCE), (S.MIGRATING, Verb.PAUSE)],
)
def test_non_terminal_status_leaves_complete_time_unset(current: S, verb: Verb) -> None:
    assert apply_verb(Lifecycle(current, start_time=NOW), verb, LATER).complete_time is None


def test_complete_sets_progress_to_one() -> None:
    state = Lifecycle(S.VERIFYING, progress=0.9, start_time=NOW)
    assert apply_verb(state, Verb.COMPLETE, LATER).progress == 1.0


def test_fail_records_the_reason() -> None:
    failed = apply_verb(Lifecycle(S.MIGRATING), Verb.FAIL, NOW, reason="  target disk full ")
    assert (failed.status, failed.failure_reason) == (S.FAILED, "target disk full")


@pytest.mark.parametrize("reason", ["", "   ", "x" * 2001])
def test_fail_without_a_usable_reason_is_invalid(reason: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        apply_verb(Lifecycle(S.MIGRATING), Verb.FAIL, NOW, reason=reason)
    assert [v.field for v in caught.value.violations] == ["reason"]


def test_pause_remembers_the_phase_and_keeps_progress() -> None:
    paused = apply_verb(Lifecycle(S.VERIFYING, progress=0.7), Verb.PAUSE, NOW)
    assert (paused.status, paused.paused_status, paused.progress) == (S.PAUSED, S.VERIFYING, 0.7)


def test_resume_clears_the_remembered_phase() -> None:
    resumed = apply_verb(Lifecycle(S.PAUSED, paused_status=S.MIGRATING), Verb.RESUME, NOW)
    assert (resumed.status, resumed.paused_status) == (S.MIGRATING, None)


@pytest.mark.parametrize("progress", [0.0, 0.25, 1.0])
def test_progress_within_bounds_is_recorded(progress: float) -> None:
    assert report_progress(Lifecycle(S.MIGRATING), progress).progress == progress


def test_progress_equal_to_the_current_value_is_accepted() -> None:
    assert report_progress(Lifecycle(S.MIGRATING, progress=0.5), 0.5).progress == 0.5


def test_decreasing_progress_is_failed_precondition() -> None:
    with pytest.raises(ProgressDecreased) as caught:
        report_progress(Lifecycle(S.MIGRATING, progress=0.5), 0.49)
    assert caught.value.reason == "PROGRESS_DECREASED"


def test_progress_keeps_rising_across_phases() -> None:
    state = report_progress(Lifecycle(S.ANALYZING), 0.3)
    state = apply_verb(state, Verb.ADVANCE, NOW)
    with pytest.raises(ProgressDecreased):
        report_progress(state, 0.1)


@pytest.mark.parametrize("progress", [math.nan, math.inf, -math.inf])
def test_non_finite_progress_is_invalid(progress: float) -> None:
    with pytest.raises(InvalidArgument) as caught:
        report_progress(Lifecycle(S.MIGRATING), progress)
    assert [v.field for v in caught.value.violations] == ["progress"]


@pytest.mark.parametrize("progress", [-0.001, 1.001, 2.0])
def test_progress_outside_zero_to_one_is_invalid(progress: float) -> None:
    with pytest.raises(InvalidArgument):
        report_progress(Lifecycle(S.MIGRATING), progress)


@pytest.mark.parametrize("status", sorted(set(S) - ACTIVE_STATUSES))
def test_progress_of_an_inactive_migration_is_failed_precondition(status: S) -> None:
    with pytest.raises(FailedPrecondition) as caught:
        report_progress(Lifecycle(status), 0.5)
    assert caught.value.reason == "MIGRATION_NOT_ACTIVE"


@pytest.mark.parametrize("status", sorted(IN_FLIGHT_STATUSES))
def test_in_flight_migration_cannot_be_deleted(status: S) -> None:
    with pytest.raises(FailedPrecondition) as caught:
        check_deletable(status)
    assert caught.value.reason == "MIGRATION_IN_FLIGHT"


@pytest.mark.parametrize("status", sorted(TERMINAL_STATUSES | {S.PENDING}))
def test_pending_or_finished_migration_can_be_deleted(status: S) -> None:
    assert check_deletable(status) is None


@pytest.mark.parametrize("status", sorted(set(S) - ACTIVE_STATUSES))
def test_agents_cannot_start_on_an_inactive_migration(status: S) -> None:
    with pytest.raises(FailedPrecondition):
        check_agent_execution_allowed(status)


@pytest.mark.parametrize("status", sorted(ACTIVE_STATUSES))
def test_agents_may_start_on_an_active_migration(status: S) -> None:
    assert check_agent_execution_allowed(status) is None
