"""The lifecycle over gRPC: every (status, verb) pair, legal and illegal, and progress rules."""

from __future__ import annotations

import itertools
import math

import grpc
import pytest

from sensei.migration.v1 import migration_pb2
from tests.harness import bad_request_fields, error_info
from tests.migration.conftest import Api, rpc_error, status_name

# How to bring a new migration into each status.
PATHS: dict[str, list[str]] = {
    "PENDING": [],
    "ANALYZING": ["START"],
    "MIGRATING": ["START", "ADVANCE"],
    "VERIFYING": ["START", "ADVANCE", "ADVANCE"],
    "PAUSED": ["START", "ADVANCE", "PAUSE"],  # paused while MIGRATING
    "COMPLETED": ["START", "ADVANCE", "ADVANCE", "COMPLETE"],
    "FAILED": ["START", "FAIL"],
    "CANCELLED": ["CANCEL"],
}
# Every legal move (docs/architecture.md#migration-lifecycle); every other (status, verb) pair
# is illegal.
LEGAL: dict[tuple[str, str], str] = {
    ("PENDING", "START"): "ANALYZING",
    ("ANALYZING", "ADVANCE"): "MIGRATING",
    ("MIGRATING", "ADVANCE"): "VERIFYING",
    ("VERIFYING", "COMPLETE"): "COMPLETED",
    **{(s, "PAUSE"): "PAUSED" for s in ("ANALYZING", "MIGRATING", "VERIFYING")},
    ("PAUSED", "RESUME"): "MIGRATING",
    **{(s, "FAIL"): "FAILED" for s in ("ANALYZING", "MIGRATING", "VERIFYING")},
    **{
        (s, "CANCEL"): "CANCELLED"
        for s in ("PENDING", "ANALYZING", "MIGRATING", "VERIFYING", "PAUSED")
    },
}
VERBS = ("START", "ADVANCE", "PAUSE", "RESUME", "COMPLETE", "FAIL", "CANCEL")
PAIRS = list(itertools.product(PATHS, VERBS))


@pytest.mark.parametrize(
    ("status", "verb"), [p for p in PAIRS if p in LEGAL], ids=lambda v: str(v).lower()
)
async def test_legal_move_reaches_its_status(api: Api, status: str, verb: str) -> None:
    owner = await api.tenant()
    created = await api.create(owner)
    await api.drive(owner, created.name, PATHS[status])
    moved = await api.move(owner, created.name, verb)
    assert status_name(moved.status) == LEGAL[(status, verb)]
    got = await api.migrations.GetMigration(
        migration_pb2.GetMigrationRequest(name=created.name), metadata=owner.metadata
    )
    assert got.migration == moved


@pytest.mark.parametrize(
    ("status", "verb"), [p for p in PAIRS if p not in LEGAL], ids=lambda v: str(v).lower()
)
async def test_illegal_move_is_failed_precondition_naming_the_status(
    api: Api, status: str, verb: str
) -> None:
    owner = await api.tenant()
    created = await api.create(owner)
    before = await api.drive(owner, created.name, PATHS[status]) or created
    error = await rpc_error(api.move(owner, created.name, verb))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    info = error_info(error)
    assert info.reason == "ILLEGAL_TRANSITION"
    assert info.metadata["current_status"] == status
    assert status in (error.details() or "")
    after = await api.migrations.GetMigration(
        migration_pb2.GetMigrationRequest(name=created.name), metadata=owner.metadata
    )
    assert after.migration.etag == before.etag  # nothing was written


async def test_start_sets_start_time_and_terminal_sets_complete_time(api: Api) -> None:
    owner = await api.tenant()
    created = await api.create(owner)
    assert not created.HasField("start_time") and not created.HasField("complete_time")
    started = await api.move(owner, created.name, "START")
    assert started.HasField("start_time") and not started.HasField("complete_time")
    done = await api.drive(owner, created.name, ["ADVANCE", "ADVANCE", "COMPLETE"])
    assert done is not None
    assert done.HasField("complete_time") and done.progress == 1.0
    assert done.start_time == started.start_time


async def test_resume_returns_to_the_phase_it_was_paused_in(api: Api) -> None:
    owner = await api.tenant()
    created = await api.create(owner)
    paused = await api.drive(owner, created.name, ["START", "ADVANCE", "ADVANCE", "PAUSE"])
    assert paused is not None
    assert paused.paused_status == migration_pb2.MIGRATION_STATUS_VERIFYING
    resumed = await api.move(owner, created.name, "RESUME")
    assert resumed.status == migration_pb2.MIGRATION_STATUS_VERIFYING
    assert resumed.paused_status == migration_pb2.MIGRATION_STATUS_UNSPECIFIED


async def test_fail_keeps_the_reason_and_needs_one(api: Api) -> None:
    owner = await api.tenant()
    created = await api.create(owner)
    await api.move(owner, created.name, "START")
    error = await rpc_error(api.move(owner, created.name, "FAIL", reason="  "))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request_fields(error) == {"reason"}
    failed = await api.move(owner, created.name, "FAIL", reason="disk full")
    assert failed.failure_reason == "disk full" and failed.HasField("complete_time")


async def test_lifecycle_verb_with_a_stale_etag_is_aborted(api: Api) -> None:
    owner = await api.tenant()
    created = await api.create(owner)
    await api.move(owner, created.name, "START", etag=created.etag)
    error = await rpc_error(api.move(owner, created.name, "PAUSE", etag=created.etag))
    assert error.code() == grpc.StatusCode.ABORTED
    assert error_info(error).reason == "ETAG_MISMATCH"


async def test_unknown_migration_is_not_found(api: Api) -> None:
    owner = await api.tenant()
    missing = f"{owner.org_name}/migrations/00000000-0000-4000-8000-000000000000"
    error = await rpc_error(api.move(owner, missing, "START"))
    assert error.code() == grpc.StatusCode.NOT_FOUND


# --- progress -------------------------------------------------------------------------


async def test_progress_rises_and_never_decreases_within_a_run(api: Api) -> None:
    owner = await api.tenant()
    created = await api.create(owner)
    await api.move(owner, created.name, "START")
    assert (await api.progress(owner, created.name, 0.25)).progress == 0.25
    assert (await api.progress(owner, created.name, 0.5)).progress == 0.5
    error = await rpc_error(api.progress(owner, created.name, 0.4))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_info(error).reason == "PROGRESS_DECREASED"


async def test_reporting_the_same_progress_writes_nothing(api: Api) -> None:
    owner = await api.tenant()
    created = await api.create(owner)
    await api.move(owner, created.name, "START")
    first = await api.progress(owner, created.name, 0.3)
    again = await api.progress(owner, created.name, 0.3)
    assert again.etag == first.etag


async def test_progress_survives_pause_and_resume(api: Api) -> None:
    owner = await api.tenant()
    created = await api.create(owner)
    await api.drive(owner, created.name, ["START", "ADVANCE"])
    await api.progress(owner, created.name, 0.6)
    resumed = await api.drive(owner, created.name, ["PAUSE", "RESUME"])
    assert resumed is not None and resumed.progress == 0.6
    error = await rpc_error(api.progress(owner, created.name, 0.5))
    assert error_info(error).reason == "PROGRESS_DECREASED"


@pytest.mark.parametrize("value", [-0.1, 1.01, math.nan, math.inf])
async def test_progress_outside_zero_to_one_is_invalid(api: Api, value: float) -> None:
    owner = await api.tenant()
    created = await api.create(owner)
    await api.move(owner, created.name, "START")
    error = await rpc_error(api.progress(owner, created.name, value))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request_fields(error) == {"progress"}


@pytest.mark.parametrize("status", ["PENDING", "PAUSED", "COMPLETED", "CANCELLED"])
async def test_progress_of_an_inactive_migration_is_refused(api: Api, status: str) -> None:
    owner = await api.tenant()
    created = await api.create(owner)
    await api.drive(owner, created.name, PATHS[status])
    error = await rpc_error(api.progress(owner, created.name, 0.5))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_info(error).reason == "MIGRATION_NOT_ACTIVE"
