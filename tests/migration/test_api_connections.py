"""Connection credentials: encrypted at rest, redacted in every response, clear only to services."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import grpc
from google.protobuf import field_mask_pb2
from google.protobuf.message import Message

from sensei.migration.v1 import migration_pb2
from tests.harness import Identity, error_info
from tests.migration.conftest import Api, read_to_end, rpc_error, struct

SECRET = "hunter2-" + uuid.uuid4().hex
DSN_SECRET = "dsnpass-" + uuid.uuid4().hex
SOURCE = {"host": "db1", "port": 5432, "user": "app", "password": SECRET, "database": "shop"}
TARGET = {"dsn": f"postgresql://app:{DSN_SECRET}@db2:5432/shop"}


def assert_redacted(message: Message) -> None:
    """Neither secret appears anywhere in the serialized message."""
    body = message.SerializeToString()
    assert SECRET.encode() not in body and DSN_SECRET.encode() not in body, type(message)


async def _connections(
    api: Api, who: Identity, name: str
) -> migration_pb2.GetMigrationConnectionsResponse:
    response: migration_pb2.GetMigrationConnectionsResponse = (
        await api.migrations.GetMigrationConnections(
            migration_pb2.GetMigrationConnectionsRequest(name=name), metadata=who.metadata
        )
    )
    return response


async def test_credentials_are_redacted_in_every_response(api: Api) -> None:
    owner = await api.tenant()
    request_id = str(uuid.uuid4())
    responses: list[Message] = []
    created = await api.migrations.CreateMigration(
        migration_pb2.CreateMigrationRequest(
            parent=owner.org_name,
            migration=migration_pb2.Migration(
                display_name="secret move",
                source_config=struct(SOURCE),
                target_config=struct(TARGET),
            ),
            request_id=request_id,
        ),
        metadata=owner.metadata,
    )
    name = created.migration.name
    responses.append(created)
    assert dict(created.migration.source_config)["password"] == "REDACTED"
    assert dict(created.migration.target_config)["dsn"] == "postgresql://app:REDACTED@db2:5432/shop"
    replayed = await api.migrations.CreateMigration(
        migration_pb2.CreateMigrationRequest(
            parent=owner.org_name,
            migration=migration_pb2.Migration(
                display_name="secret move",
                source_config=struct(SOURCE),
                target_config=struct(TARGET),
            ),
            request_id=request_id,
        ),
        metadata=owner.metadata,
    )
    responses.append(replayed)
    watch = api.migrations.WatchMigration(
        migration_pb2.WatchMigrationRequest(name=name), metadata=owner.metadata
    )
    responses.append(await watch.read())
    responses.append(
        await api.migrations.GetMigration(
            migration_pb2.GetMigrationRequest(name=name), metadata=owner.metadata
        )
    )
    responses.append(
        await api.migrations.ListMigrations(
            migration_pb2.ListMigrationsRequest(parent=owner.org_name), metadata=owner.metadata
        )
    )
    body = migration_pb2.Migration(name=name, display_name="renamed", source_config=struct(SOURCE))
    responses.append(
        await api.migrations.UpdateMigration(
            migration_pb2.UpdateMigrationRequest(
                migration=body,
                update_mask=field_mask_pb2.FieldMask(paths=["display_name", "source_config"]),
            ),
            metadata=owner.metadata,
        )
    )
    for verb in ("START", "PAUSE", "RESUME", "ADVANCE", "ADVANCE"):
        responses.append(await api.move(owner, name, verb))
    responses.append(
        await api.migrations.ReportProgress(
            migration_pb2.ReportProgressRequest(name=name, progress=0.5), metadata=owner.metadata
        )
    )
    responses.append(await api.move(owner, name, "COMPLETE"))
    responses += await read_to_end(watch)
    for verb in ("FAIL", "CANCEL"):
        other = await api.create(owner, source_config=SOURCE, target_config=TARGET)
        await api.move(owner, other.name, "START")
        responses.append(await api.move(owner, other.name, verb))
    assert len(responses) > 15
    for message in responses:
        assert_redacted(message)


async def test_credentials_are_encrypted_at_rest(api: Api) -> None:
    owner = await api.tenant()
    created = await api.create(owner, source_config=SOURCE, target_config=TARGET)
    await api.move(owner, created.name, "START")
    conn = await api.db()
    try:
        for table in ("migrations", "migration_changes", "audit_outbox", "request_ids"):
            rows = await conn.fetch(f"SELECT t::text AS row FROM {table} t")
            for row in rows:
                assert SECRET not in row["row"] and DSN_SECRET not in row["row"], table
        sealed = await conn.fetchval(
            "SELECT source_config_sealed FROM migrations WHERE id = $1", uuid.UUID(created.id)
        )
        assert b"hunter2" not in sealed and b"db1" not in sealed
    finally:
        await conn.close()


async def test_service_reads_connections_in_clear(api: Api) -> None:
    owner = await api.tenant()
    created = await api.create(owner, source_config=SOURCE, target_config=TARGET)
    service = await api.suite.service()
    connections = await _connections(api, service, created.name)
    assert connections.name == created.name
    assert dict(connections.source_config)["password"] == SECRET
    assert dict(connections.target_config)["dsn"] == TARGET["dsn"]


async def test_users_cannot_read_connections(api: Api) -> None:
    owner = await api.tenant()
    created = await api.create(owner, source_config=SOURCE)
    member = await api.suite.user("MEMBER", owner.org_id)
    for who in (owner, member):
        error = await rpc_error(_connections(api, who, created.name))
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED
        assert error_info(error).reason == "SERVICE_ONLY"


async def test_sending_a_redacted_config_back_keeps_the_secrets(api: Api) -> None:
    owner = await api.tenant()
    created = await api.create(owner, source_config=SOURCE, target_config=TARGET)
    edited = migration_pb2.Migration()
    edited.CopyFrom(created)  # configs as read: redacted
    edited.source_config["sslmode"] = "require"  # same destination, another setting
    await api.migrations.UpdateMigration(
        migration_pb2.UpdateMigrationRequest(
            migration=edited,
            update_mask=field_mask_pb2.FieldMask(paths=["source_config", "target_config"]),
        ),
        metadata=owner.metadata,
    )
    connections = await _connections(api, await api.suite.service(), created.name)
    source: dict[str, Any] = dict(connections.source_config)
    assert source["sslmode"] == "require" and source["password"] == SECRET
    assert dict(connections.target_config)["dsn"] == TARGET["dsn"]


async def test_watch_and_get_agree_on_the_redacted_form(api: Api) -> None:
    owner = await api.tenant()
    created = await api.create(owner, source_config=SOURCE)
    watch = api.migrations.WatchMigration(
        migration_pb2.WatchMigrationRequest(name=created.name), metadata=owner.metadata
    )
    first = await asyncio.wait_for(watch.read(), 10)
    watch.cancel()
    assert first.migration == created
