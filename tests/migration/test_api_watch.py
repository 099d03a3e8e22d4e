"""WatchMigration: a snapshot, then every committed change in order, to every watcher.

No sleeps: each test waits for the watchers' first message (the snapshot, sent after the
watcher subscribed), then drives the changes, then reads the streams to their end.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2

from sensei.migration.v1 import migration_pb2, migration_pb2_grpc
from services.migration.watch import LISTENER_APPLICATION_NAME
from shared import config as config_module
from shared.server import start
from tests.harness import Identity
from tests.harness.suite import definition_of
from tests.migration.conftest import Api, read_to_end, status_name, stream_error

EVENT = migration_pb2.MigrationEventType


def _event(response: migration_pb2.WatchMigrationResponse) -> tuple[str, str, float]:
    return (
        EVENT.Name(response.event_type).removeprefix("MIGRATION_EVENT_TYPE_"),
        status_name(response.migration.status),
        response.migration.progress,
    )


def _watch(stub: migration_pb2_grpc.MigrationServiceStub, who: Identity, name: str) -> Any:
    return stub.WatchMigration(
        migration_pb2.WatchMigrationRequest(name=name), metadata=who.metadata
    )


async def _first(call: Any) -> migration_pb2.WatchMigrationResponse:
    response: migration_pb2.WatchMigrationResponse = await asyncio.wait_for(call.read(), 10)
    return response


async def _run_to_completion(api: Api, owner: Identity, name: str) -> None:
    await api.move(owner, name, "START")
    await api.progress(owner, name, 0.5)
    await api.move(owner, name, "ADVANCE")
    await api.migrations.UpdateMigration(
        migration_pb2.UpdateMigrationRequest(
            migration=migration_pb2.Migration(name=name, description="now with notes"),
            update_mask=field_mask_pb2.FieldMask(paths=["description"]),
        ),
        metadata=owner.metadata,
    )
    await api.drive(owner, name, ["PAUSE", "RESUME", "ADVANCE"])
    await api.progress(owner, name, 0.9)
    await api.move(owner, name, "COMPLETE")


EXPECTED = [
    ("SNAPSHOT", "PENDING", 0.0),
    ("STATUS_CHANGED", "ANALYZING", 0.0),
    ("PROGRESS_CHANGED", "ANALYZING", 0.5),
    ("STATUS_CHANGED", "MIGRATING", 0.5),
    ("UPDATED", "MIGRATING", 0.5),
    ("STATUS_CHANGED", "PAUSED", 0.5),
    ("STATUS_CHANGED", "MIGRATING", 0.5),
    ("STATUS_CHANGED", "VERIFYING", 0.5),
    ("PROGRESS_CHANGED", "VERIFYING", 0.9),
    ("STATUS_CHANGED", "COMPLETED", 1.0),
]


async def test_two_watchers_see_the_same_changes_in_order_until_terminal(api: Api) -> None:
    owner = await api.tenant()
    viewer = await api.suite.user("VIEWER", owner.org_id)
    created = await api.create(owner)
    watchers = [
        _watch(api.migrations, owner, created.name),
        _watch(api.migrations, viewer, created.name),
    ]
    firsts = [await _first(call) for call in watchers]
    assert [f.migration for f in firsts] == [created, created]
    await _run_to_completion(api, owner, created.name)
    streams = [
        [first, *await read_to_end(call)] for first, call in zip(firsts, watchers, strict=True)
    ]
    assert [_event(r) for r in streams[0]] == EXPECTED
    assert streams[0] == streams[1]
    etags = [r.migration.etag for r in streams[0]]
    assert len(set(etags)) == len(etags)  # each committed version exactly once
    for call in watchers:
        assert await call.code() == grpc.StatusCode.OK


@pytest.fixture
async def second_replica(api: Api) -> AsyncIterator[migration_pb2_grpc.MigrationServiceStub]:
    """Another migration service process on the same database (a replica)."""
    env = api.suite.service_env("migration", {"SENSEI_MIGRATION_PORT": "0"})
    running = await start(definition_of("migration"), config_module.load("migration", env))
    channel = grpc.aio.insecure_channel(running.address)
    try:
        yield migration_pb2_grpc.MigrationServiceStub(channel)
    finally:
        await channel.close()
        await running.stop(0.2)


async def test_a_watcher_on_another_replica_sees_the_changes(
    api: Api, second_replica: migration_pb2_grpc.MigrationServiceStub
) -> None:
    owner = await api.tenant()
    created = await api.create(owner)
    here, there = (
        _watch(api.migrations, owner, created.name),
        _watch(second_replica, owner, created.name),
    )
    firsts = [await _first(here), await _first(there)]
    await _run_to_completion(api, owner, created.name)
    seen_here = [firsts[0], *await read_to_end(here)]
    seen_there = [firsts[1], *await read_to_end(there)]
    assert [_event(r) for r in seen_there] == EXPECTED
    assert seen_there == seen_here


async def test_watch_ends_with_deleted_when_the_migration_is_deleted(api: Api) -> None:
    owner = await api.tenant()
    created = await api.create(owner)
    call = _watch(api.migrations, owner, created.name)
    await _first(call)
    await api.migrations.DeleteMigration(
        migration_pb2.DeleteMigrationRequest(name=created.name), metadata=owner.metadata
    )
    rest = await read_to_end(call)
    assert [_event(r)[0] for r in rest] == ["DELETED"]
    assert rest[0].migration.id == created.id


async def test_watching_a_terminal_migration_sends_only_the_snapshot(api: Api) -> None:
    owner = await api.tenant()
    created = await api.create(owner)
    await api.move(owner, created.name, "CANCEL")
    events = await read_to_end(_watch(api.migrations, owner, created.name))
    assert [_event(r) for r in events] == [("SNAPSHOT", "CANCELLED", 0.0)]


async def test_watching_an_unknown_migration_is_not_found(api: Api) -> None:
    owner = await api.tenant()
    missing = f"{owner.org_name}/migrations/00000000-0000-4000-8000-000000000000"
    error = await stream_error(_watch(api.migrations, owner, missing))
    assert error.code() == grpc.StatusCode.NOT_FOUND


async def test_a_watcher_that_leaves_does_not_disturb_the_others(api: Api) -> None:
    owner = await api.tenant()
    created = await api.create(owner)
    leaving, staying = (
        _watch(api.migrations, owner, created.name),
        _watch(api.migrations, owner, created.name),
    )
    await _first(leaving)
    await _first(staying)
    leaving.cancel()
    await api.move(owner, created.name, "CANCEL")
    rest = await read_to_end(staying)
    assert [_event(r) for r in rest] == [("STATUS_CHANGED", "CANCELLED", 0.0)]
    assert await leaving.code() == grpc.StatusCode.CANCELLED


async def test_watchers_catch_up_after_the_listener_connection_is_lost(api: Api) -> None:
    owner = await api.tenant()
    created = await api.create(owner)
    call = _watch(api.migrations, owner, created.name)
    await _first(call)
    conn = await api.db()
    try:
        killed = await conn.fetchval(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = $1 AND datname = current_database()) AS t",
            LISTENER_APPLICATION_NAME,
        )
    finally:
        await conn.close()
    assert killed >= 1
    await api.drive(owner, created.name, ["START", "CANCEL"])
    rest = await asyncio.wait_for(read_to_end(call), 10)
    assert [_event(r) for r in rest] == [
        ("STATUS_CHANGED", "ANALYZING", 0.0),
        ("STATUS_CHANGED", "CANCELLED", 0.0),
    ]
