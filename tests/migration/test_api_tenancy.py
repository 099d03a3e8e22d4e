"""A caller never sees or touches another organization's data: every org-scoped RPC."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2

from sensei.migration.v1 import agent_execution_pb2, migration_pb2, schema_pb2
from tests.harness import error_info
from tests.migration.conftest import Api, rpc_error, stream_error, struct

DEFINITION = {"version": 1, "tables": {}}


class Target:
    """Names of one organization's resources (a migration, a schema, an agent execution)."""

    def __init__(self, org: str, migration: str, schema: str, execution: str) -> None:
        self.org = org
        self.migration = migration
        self.schema = schema
        self.execution = execution


# RPC → (stub attribute, method, request built from the victim's names).
REQUESTS: dict[str, tuple[str, str, Callable[[Target], Any]]] = {
    "CreateMigration": (
        "migrations",
        "CreateMigration",
        lambda t: migration_pb2.CreateMigrationRequest(
            parent=t.org, migration=migration_pb2.Migration(display_name="x")
        ),
    ),
    "GetMigration": (
        "migrations",
        "GetMigration",
        lambda t: migration_pb2.GetMigrationRequest(name=t.migration),
    ),
    "ListMigrations": (
        "migrations",
        "ListMigrations",
        lambda t: migration_pb2.ListMigrationsRequest(parent=t.org),
    ),
    "UpdateMigration": (
        "migrations",
        "UpdateMigration",
        lambda t: migration_pb2.UpdateMigrationRequest(
            migration=migration_pb2.Migration(name=t.migration, display_name="mine now"),
            update_mask=field_mask_pb2.FieldMask(paths=["display_name"]),
        ),
    ),
    "DeleteMigration": (
        "migrations",
        "DeleteMigration",
        lambda t: migration_pb2.DeleteMigrationRequest(name=t.migration),
    ),
    **{
        rpc: (
            "migrations",
            rpc,
            lambda t, request=request: request(name=t.migration),
        )
        for rpc, request in (
            ("StartMigration", migration_pb2.StartMigrationRequest),
            ("AdvanceMigration", migration_pb2.AdvanceMigrationRequest),
            ("PauseMigration", migration_pb2.PauseMigrationRequest),
            ("ResumeMigration", migration_pb2.ResumeMigrationRequest),
            ("CompleteMigration", migration_pb2.CompleteMigrationRequest),
            ("CancelMigration", migration_pb2.CancelMigrationRequest),
            ("GetMigrationConnections", migration_pb2.GetMigrationConnectionsRequest),
        )
    },
    "FailMigration": (
        "migrations",
        "FailMigration",
        lambda t: migration_pb2.FailMigrationRequest(name=t.migration, reason="sabotage"),
    ),
    "ReportProgress": (
        "migrations",
        "ReportProgress",
        lambda t: migration_pb2.ReportProgressRequest(name=t.migration, progress=0.9),
    ),
    "GetUsage": (
        "migrations",
        "GetUsage",
        lambda t: migration_pb2.GetUsageRequest(parent=t.org),
    ),
    "CreateSchema": (
        "schemas",
        "CreateSchema",
        lambda t: schema_pb2.CreateSchemaRequest(
            parent=t.migration,
            schema=schema_pb2.Schema(type=schema_pb2.SCHEMA_TYPE_TARGET),
        ),
    ),
    "CaptureSchema": (
        "schemas",
        "CaptureSchema",
        lambda t: schema_pb2.CaptureSchemaRequest(
            parent=t.migration, type=schema_pb2.SCHEMA_TYPE_SOURCE
        ),
    ),
    "GetSchema": ("schemas", "GetSchema", lambda t: schema_pb2.GetSchemaRequest(name=t.schema)),
    "ListSchemas": (
        "schemas",
        "ListSchemas",
        lambda t: schema_pb2.ListSchemasRequest(parent=t.migration),
    ),
    "DiffSchemas": (
        "schemas",
        "DiffSchemas",
        lambda t: schema_pb2.DiffSchemasRequest(base_schema=t.schema, target_schema=t.schema),
    ),
    "StartAgentExecution": (
        "agents",
        "StartAgentExecution",
        lambda t: agent_execution_pb2.StartAgentExecutionRequest(
            parent=t.migration,
            agent_execution=agent_execution_pb2.AgentExecution(
                agent_type=agent_execution_pb2.AGENT_TYPE_VALIDATOR
            ),
        ),
    ),
    "CompleteAgentExecution": (
        "agents",
        "CompleteAgentExecution",
        lambda t: agent_execution_pb2.CompleteAgentExecutionRequest(
            name=t.execution, status=agent_execution_pb2.AGENT_EXECUTION_STATUS_SUCCEEDED
        ),
    ),
    "GetAgentExecution": (
        "agents",
        "GetAgentExecution",
        lambda t: agent_execution_pb2.GetAgentExecutionRequest(name=t.execution),
    ),
    "ListAgentExecutions": (
        "agents",
        "ListAgentExecutions",
        lambda t: agent_execution_pb2.ListAgentExecutionsRequest(parent=t.migration),
    ),
}


async def _victim(api: Api) -> tuple[Any, Target]:
    owner = await api.tenant()
    migration = await api.create(owner)
    await api.move(owner, migration.name, "START")
    schema = await api.schemas.CreateSchema(
        schema_pb2.CreateSchemaRequest(
            parent=migration.name,
            schema=schema_pb2.Schema(
                type=schema_pb2.SCHEMA_TYPE_SOURCE, definition=struct(DEFINITION)
            ),
        ),
        metadata=owner.metadata,
    )
    execution = await api.agents.StartAgentExecution(
        agent_execution_pb2.StartAgentExecutionRequest(
            parent=migration.name,
            agent_execution=agent_execution_pb2.AgentExecution(
                agent_type=agent_execution_pb2.AGENT_TYPE_SCHEMA_ANALYZER
            ),
        ),
        metadata=owner.metadata,
    )
    return owner, Target(
        owner.org_name, migration.name, schema.schema.name, execution.agent_execution.name
    )


def test_every_org_scoped_rpc_is_covered() -> None:
    services = [
        migration_pb2.DESCRIPTOR.services_by_name["MigrationService"],
        schema_pb2.DESCRIPTOR.services_by_name["SchemaService"],
        agent_execution_pb2.DESCRIPTOR.services_by_name["AgentExecutionService"],
    ]
    rpcs = {method.name for service in services for method in service.methods}
    assert rpcs - {"WatchMigration"} == set(REQUESTS)


@pytest.mark.parametrize("rpc", sorted(REQUESTS))
async def test_another_organizations_member_is_denied(api: Api, rpc: str) -> None:
    victim_owner, target = await _victim(api)
    intruder = await api.tenant()
    stub_name, method, build = REQUESTS[rpc]
    call = getattr(getattr(api, stub_name), method)
    error = await rpc_error(call(build(target), metadata=intruder.metadata))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    if rpc != "GetMigrationConnections":  # refused even earlier: services only
        assert error_info(error).reason == "OTHER_ORGANIZATION"
    still = await api.migrations.GetMigration(
        migration_pb2.GetMigrationRequest(name=target.migration), metadata=victim_owner.metadata
    )
    assert still.migration.status == migration_pb2.MIGRATION_STATUS_ANALYZING
    assert still.migration.progress == 0.0


async def test_another_organization_cannot_watch(api: Api) -> None:
    _, target = await _victim(api)
    intruder = await api.tenant()
    error = await stream_error(
        api.migrations.WatchMigration(
            migration_pb2.WatchMigrationRequest(name=target.migration), metadata=intruder.metadata
        )
    )
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_diff_refuses_a_target_schema_of_another_organization(api: Api) -> None:
    _, theirs = await _victim(api)
    me, mine = await _victim(api)
    error = await rpc_error(
        api.schemas.DiffSchemas(
            schema_pb2.DiffSchemasRequest(base_schema=mine.schema, target_schema=theirs.schema),
            metadata=me.metadata,
        )
    )
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error_info(error).reason == "OTHER_ORGANIZATION"


async def test_a_service_cannot_diff_across_organizations_either(api: Api) -> None:
    _, theirs = await _victim(api)
    _, mine = await _victim(api)
    service = await api.suite.service()
    error = await rpc_error(
        api.schemas.DiffSchemas(
            schema_pb2.DiffSchemasRequest(base_schema=mine.schema, target_schema=theirs.schema),
            metadata=service.metadata,
        )
    )
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_ids_of_one_organization_under_anothers_name_are_not_found(api: Api) -> None:
    _, theirs = await _victim(api)
    me = await api.tenant()
    migration_id = theirs.migration.rsplit("/", 1)[1]
    error = await rpc_error(
        api.migrations.GetMigration(
            migration_pb2.GetMigrationRequest(name=f"{me.org_name}/migrations/{migration_id}"),
            metadata=me.metadata,
        )
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND


# --- a List under a parent that is not there answers NOT_FOUND, as Get does ----------------

LISTS_UNDER_A_MIGRATION: dict[str, tuple[str, str, Callable[[str], Any]]] = {
    "ListSchemas": (
        "schemas",
        "ListSchemas",
        lambda parent: schema_pb2.ListSchemasRequest(parent=parent),
    ),
    "ListAgentExecutions": (
        "agents",
        "ListAgentExecutions",
        lambda parent: agent_execution_pb2.ListAgentExecutionsRequest(parent=parent),
    ),
}


@pytest.mark.parametrize("rpc", sorted(LISTS_UNDER_A_MIGRATION))
async def test_list_under_another_organizations_migration_id_is_not_found(
    api: Api, rpc: str
) -> None:
    _, theirs = await _victim(api)
    me = await api.tenant()
    migration_id = theirs.migration.rsplit("/", 1)[1]
    stub_name, method, build = LISTS_UNDER_A_MIGRATION[rpc]
    call = getattr(getattr(api, stub_name), method)
    error = await rpc_error(
        call(build(f"{me.org_name}/migrations/{migration_id}"), metadata=me.metadata)
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize("rpc", sorted(LISTS_UNDER_A_MIGRATION))
async def test_list_under_a_deleted_migration_is_not_found(api: Api, rpc: str) -> None:
    owner = await api.tenant()
    migration = await api.create(owner)
    await api.migrations.DeleteMigration(
        migration_pb2.DeleteMigrationRequest(name=migration.name), metadata=owner.metadata
    )
    stub_name, method, build = LISTS_UNDER_A_MIGRATION[rpc]
    call = getattr(getattr(api, stub_name), method)
    error = await rpc_error(call(build(migration.name), metadata=owner.metadata))
    assert error.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize("rpc", sorted(LISTS_UNDER_A_MIGRATION))
async def test_list_under_an_existing_migration_without_children_is_empty(
    api: Api, rpc: str
) -> None:
    owner = await api.tenant()
    migration = await api.create(owner)
    stub_name, method, build = LISTS_UNDER_A_MIGRATION[rpc]
    call = getattr(getattr(api, stub_name), method)
    response = await call(build(migration.name), metadata=owner.metadata)
    assert response.next_page_token == ""
    assert len(response.schemas if rpc == "ListSchemas" else response.agent_executions) == 0


async def test_a_platform_principal_listing_an_organization_that_is_not_there_is_not_found(
    api: Api,
) -> None:
    service = await api.suite.service()
    error = await rpc_error(
        api.migrations.ListMigrations(
            migration_pb2.ListMigrationsRequest(parent=f"organizations/{uuid.uuid4()}"),
            metadata=service.metadata,
        )
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND
    owner = await api.tenant()
    await api.create(owner)
    listed = await api.migrations.ListMigrations(
        migration_pb2.ListMigrationsRequest(parent=owner.org_name), metadata=service.metadata
    )
    assert len(listed.migrations) == 1
