"""MigrationService standard methods over gRPC: create, get, list, update, delete."""

from __future__ import annotations

import uuid

import grpc
import pytest
from google.protobuf import field_mask_pb2

from sensei.migration.v1 import migration_pb2
from tests.harness import bad_request_fields, error_info
from tests.migration.conftest import Api, rpc_error, struct


async def test_create_returns_a_pending_migration_that_get_returns(api: Api) -> None:
    owner = await api.tenant()
    created = await api.create(
        owner,
        display_name="Move billing",
        description="to the new cluster",
        source_config={"host": "db1", "port": 5432, "database": "billing"},
    )
    assert created.name == f"{owner.org_name}/migrations/{created.id}"
    assert created.org_id == owner.org_id
    assert created.status == migration_pb2.MIGRATION_STATUS_PENDING
    assert created.progress == 0.0 and created.etag
    assert created.create_time.seconds and created.update_time.seconds
    assert dict(created.source_config)["host"] == "db1"
    got = await api.migrations.GetMigration(
        migration_pb2.GetMigrationRequest(name=created.name), metadata=owner.metadata
    )
    assert got.migration == created


async def test_create_reports_every_violation_at_once(api: Api) -> None:
    owner = await api.tenant()
    error = await rpc_error(
        api.create(
            owner,
            display_name=" ",
            description="x" * 10_001,
            source_config={"hostname": "db1", "port": 70000},
            target_config={"dsn": "mysql://nope"},
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request_fields(error) == {
        "migration.display_name",
        "migration.description",
        "migration.source_config.hostname",
        "migration.source_config.port",
        "migration.target_config.dsn",
    }


async def test_create_with_a_malformed_parent_is_invalid(api: Api) -> None:
    owner = await api.tenant()
    error = await rpc_error(
        api.migrations.CreateMigration(
            migration_pb2.CreateMigrationRequest(
                parent="organizations/not-a-uuid",
                migration=migration_pb2.Migration(display_name="x"),
            ),
            metadata=owner.metadata,
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request_fields(error) == {"parent"}


async def test_create_with_a_repeated_request_id_returns_the_first_and_writes_nothing(
    api: Api,
) -> None:
    owner = await api.tenant()
    request_id = str(uuid.uuid4())
    first = await api.create(owner, request_id=request_id, display_name="once")
    again = await api.create(owner, request_id=request_id, display_name="once")
    assert again == first
    count = await api.fetchval(
        "SELECT count(*) FROM migrations WHERE org_id = $1", uuid.UUID(owner.org_id)
    )
    assert count == 1


async def test_request_id_reused_with_another_body_is_invalid(api: Api) -> None:
    owner = await api.tenant()
    request_id = str(uuid.uuid4())
    await api.create(owner, request_id=request_id, display_name="one")
    error = await rpc_error(api.create(owner, request_id=request_id, display_name="two"))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(error).reason == "REQUEST_ID_REUSED"


async def test_viewer_reads_but_cannot_create(api: Api) -> None:
    owner = await api.tenant()
    created = await api.create(owner)
    viewer = await api.suite.user("VIEWER", owner.org_id)
    got = await api.migrations.GetMigration(
        migration_pb2.GetMigrationRequest(name=created.name), metadata=viewer.metadata
    )
    assert got.migration.id == created.id
    error = await rpc_error(api.create(viewer))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error_info(error).reason == "ROLE_TOO_LOW"


# --- update ---------------------------------------------------------------------------


def _update(
    migration: migration_pb2.Migration, *paths: str, etag: str | None = None
) -> migration_pb2.UpdateMigrationRequest:
    body = migration_pb2.Migration()
    body.CopyFrom(migration)
    if etag is not None:
        body.etag = etag
    return migration_pb2.UpdateMigrationRequest(
        migration=body, update_mask=field_mask_pb2.FieldMask(paths=list(paths))
    )


async def test_update_changes_only_the_masked_fields(api: Api) -> None:
    owner = await api.tenant()
    created = await api.create(owner, display_name="old", description="keep me")
    edited = migration_pb2.Migration()
    edited.CopyFrom(created)
    edited.display_name = "new"
    edited.description = "ignored: not in the mask"
    updated = await api.migrations.UpdateMigration(
        _update(edited, "display_name"), metadata=owner.metadata
    )
    assert updated.migration.display_name == "new"
    assert updated.migration.description == "keep me"
    assert updated.migration.etag != created.etag


async def test_update_with_a_stale_etag_is_aborted(api: Api) -> None:
    owner = await api.tenant()
    created = await api.create(owner)
    first = migration_pb2.Migration()
    first.CopyFrom(created)
    first.display_name = "first writer"
    await api.migrations.UpdateMigration(_update(first, "display_name"), metadata=owner.metadata)
    second = migration_pb2.Migration()
    second.CopyFrom(created)  # still carries the etag read before the first update
    second.display_name = "second writer"
    error = await rpc_error(
        api.migrations.UpdateMigration(_update(second, "display_name"), metadata=owner.metadata)
    )
    assert error.code() == grpc.StatusCode.ABORTED
    assert error_info(error).reason == "ETAG_MISMATCH"


@pytest.mark.parametrize("paths", [[], ["status"], ["progress"], ["nope"]])
async def test_update_with_an_empty_or_bad_mask_is_invalid(api: Api, paths: list[str]) -> None:
    owner = await api.tenant()
    created = await api.create(owner)
    error = await rpc_error(
        api.migrations.UpdateMigration(_update(created, *paths), metadata=owner.metadata)
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request_fields(error) == {"update_mask"}


async def test_configs_cannot_change_once_started(api: Api) -> None:
    owner = await api.tenant()
    created = await api.create(owner)
    started = await api.move(owner, created.name, "START")
    started.source_config.CopyFrom(struct({"host": "elsewhere"}))
    error = await rpc_error(
        api.migrations.UpdateMigration(_update(started, "source_config"), metadata=owner.metadata)
    )
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_info(error).reason == "CONFIG_IMMUTABLE"


# --- delete ---------------------------------------------------------------------------


async def test_delete_removes_a_pending_migration(api: Api) -> None:
    owner = await api.tenant()
    created = await api.create(owner)
    await api.migrations.DeleteMigration(
        migration_pb2.DeleteMigrationRequest(name=created.name, etag=created.etag),
        metadata=owner.metadata,
    )
    error = await rpc_error(
        api.migrations.GetMigration(
            migration_pb2.GetMigrationRequest(name=created.name), metadata=owner.metadata
        )
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND


async def test_delete_of_an_in_flight_migration_is_refused(api: Api) -> None:
    owner = await api.tenant()
    created = await api.create(owner)
    await api.move(owner, created.name, "START")
    error = await rpc_error(
        api.migrations.DeleteMigration(
            migration_pb2.DeleteMigrationRequest(name=created.name), metadata=owner.metadata
        )
    )
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_info(error).reason == "MIGRATION_IN_FLIGHT"


async def test_delete_with_a_stale_etag_is_aborted(api: Api) -> None:
    owner = await api.tenant()
    created = await api.create(owner)
    await api.drive(owner, created.name, ["CANCEL"])
    error = await rpc_error(
        api.migrations.DeleteMigration(
            migration_pb2.DeleteMigrationRequest(name=created.name, etag=created.etag),
            metadata=owner.metadata,
        )
    )
    assert error.code() == grpc.StatusCode.ABORTED


# --- list -----------------------------------------------------------------------------


async def _list(
    api: Api, who: object, parent: str, size: int, token: str = "", *, status: int = 0
) -> migration_pb2.ListMigrationsResponse:
    response: migration_pb2.ListMigrationsResponse = await api.migrations.ListMigrations(
        migration_pb2.ListMigrationsRequest(
            parent=parent, page_size=size, page_token=token, status=status
        ),
        metadata=who.metadata,  # type: ignore[attr-defined]
    )
    return response


async def test_list_pages_to_the_end_in_creation_order(api: Api) -> None:
    owner = await api.tenant()
    made = [(await api.create(owner, display_name=f"m{i}")).id for i in range(7)]
    seen: list[str] = []
    sizes: list[int] = []
    token = ""
    while True:
        page = await _list(api, owner, owner.org_name, 3, token)
        seen += [m.id for m in page.migrations]
        sizes.append(len(page.migrations))
        token = page.next_page_token
        if not token:
            break
    assert seen == made
    assert sizes == [3, 3, 1]


async def test_list_filters_by_status(api: Api) -> None:
    owner = await api.tenant()
    pending = await api.create(owner)
    started = await api.create(owner)
    await api.move(owner, started.name, "START")
    page = await _list(
        api, owner, owner.org_name, 0, status=migration_pb2.MIGRATION_STATUS_ANALYZING
    )
    assert [m.id for m in page.migrations] == [started.id]
    page = await _list(api, owner, owner.org_name, 0, status=migration_pb2.MIGRATION_STATUS_PENDING)
    assert [m.id for m in page.migrations] == [pending.id]


async def test_tampered_page_token_is_invalid(api: Api) -> None:
    owner = await api.tenant()
    for _ in range(3):
        await api.create(owner)
    token = (await _list(api, owner, owner.org_name, 1)).next_page_token
    tampered = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    error = await rpc_error(_list(api, owner, owner.org_name, 1, tampered))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request_fields(error) == {"page_token"}


async def test_page_token_of_another_filter_is_invalid(api: Api) -> None:
    owner = await api.tenant()
    for _ in range(2):
        await api.create(owner)
    token = (await _list(api, owner, owner.org_name, 1)).next_page_token
    error = await rpc_error(
        _list(api, owner, owner.org_name, 1, token, status=migration_pb2.MIGRATION_STATUS_PENDING)
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_negative_page_size_is_invalid(api: Api) -> None:
    owner = await api.tenant()
    error = await rpc_error(_list(api, owner, owner.org_name, -1))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request_fields(error) == {"page_size"}
