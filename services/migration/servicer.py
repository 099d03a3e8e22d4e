"""gRPC servicers of the migration service: protos in, use-case calls, protos out. No rules.

Messages are built in messages.py (`migration_proto` redacts connection configs); only
GetMigrationConnections returns the configs in clear (and only to services).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TypeAlias

import grpc

from sensei.migration.v1 import (
    agent_execution_pb2,
    agent_execution_pb2_grpc,
    migration_pb2,
    migration_pb2_grpc,
    schema_pb2,
    schema_pb2_grpc,
)
from services.migration.domain import Verb
from services.migration.messages import (
    agent_completion_in,
    agent_execution_proto,
    agent_status_in,
    agent_type_in,
    change_proto,
    connections_proto,
    diff_proto,
    migration_patch_in,
    migration_proto,
    migration_status_in,
    migration_values_in,
    schema_fields_in,
    schema_proto,
    schema_type_in,
    struct_or_raise,
    usage_proto,
)
from services.migration.use_cases import AgentExecutions, Migrations, Schemas
from shared.errors import FieldViolation

Context: TypeAlias = grpc.aio.ServicerContext

# --- MigrationService -----------------------------------------------------------------


class MigrationServicer(migration_pb2_grpc.MigrationServiceServicer):
    """sensei.migration.v1.MigrationService."""

    def __init__(self, migrations: Migrations) -> None:
        self._migrations = migrations

    async def CreateMigration(
        self, request: migration_pb2.CreateMigrationRequest, context: Context
    ) -> migration_pb2.CreateMigrationResponse:
        violations: list[FieldViolation] = []
        values = migration_values_in(request.migration, violations)
        response: migration_pb2.CreateMigrationResponse = await self._migrations.create(
            request.parent,
            values,
            request=request,
            response_type=migration_pb2.CreateMigrationResponse,
            respond=lambda m: migration_pb2.CreateMigrationResponse(migration=migration_proto(m)),
            violations=violations,
        )
        return response

    async def GetMigration(
        self, request: migration_pb2.GetMigrationRequest, context: Context
    ) -> migration_pb2.GetMigrationResponse:
        migration = await self._migrations.get(request.name)
        return migration_pb2.GetMigrationResponse(migration=migration_proto(migration))

    async def ListMigrations(
        self, request: migration_pb2.ListMigrationsRequest, context: Context
    ) -> migration_pb2.ListMigrationsResponse:
        page = await self._migrations.list_migrations(
            request.parent,
            migration_status_in(request.status, "status"),
            request.page_size,
            request.page_token,
        )
        return migration_pb2.ListMigrationsResponse(
            migrations=[migration_proto(m) for m in page.items],
            next_page_token=page.next_page_token,
        )

    async def UpdateMigration(
        self, request: migration_pb2.UpdateMigrationRequest, context: Context
    ) -> migration_pb2.UpdateMigrationResponse:
        migration = await self._migrations.update(migration_patch_in(request))
        return migration_pb2.UpdateMigrationResponse(migration=migration_proto(migration))

    async def DeleteMigration(
        self, request: migration_pb2.DeleteMigrationRequest, context: Context
    ) -> migration_pb2.DeleteMigrationResponse:
        await self._migrations.delete(request.name, request.etag)
        return migration_pb2.DeleteMigrationResponse()

    async def StartMigration(
        self, request: migration_pb2.StartMigrationRequest, context: Context
    ) -> migration_pb2.StartMigrationResponse:
        moved = await self._migrations.move(request.name, Verb.START, request.etag)
        return migration_pb2.StartMigrationResponse(migration=migration_proto(moved))

    async def AdvanceMigration(
        self, request: migration_pb2.AdvanceMigrationRequest, context: Context
    ) -> migration_pb2.AdvanceMigrationResponse:
        moved = await self._migrations.move(request.name, Verb.ADVANCE, request.etag)
        return migration_pb2.AdvanceMigrationResponse(migration=migration_proto(moved))

    async def PauseMigration(
        self, request: migration_pb2.PauseMigrationRequest, context: Context
    ) -> migration_pb2.PauseMigrationResponse:
        moved = await self._migrations.move(request.name, Verb.PAUSE, request.etag)
        return migration_pb2.PauseMigrationResponse(migration=migration_proto(moved))

    async def ResumeMigration(
        self, request: migration_pb2.ResumeMigrationRequest, context: Context
    ) -> migration_pb2.ResumeMigrationResponse:
        moved = await self._migrations.move(request.name, Verb.RESUME, request.etag)
        return migration_pb2.ResumeMigrationResponse(migration=migration_proto(moved))

    async def CompleteMigration(
        self, request: migration_pb2.CompleteMigrationRequest, context: Context
    ) -> migration_pb2.CompleteMigrationResponse:
        moved = await self._migrations.move(request.name, Verb.COMPLETE, request.etag)
        return migration_pb2.CompleteMigrationResponse(migration=migration_proto(moved))

    async def FailMigration(
        self, request: migration_pb2.FailMigrationRequest, context: Context
    ) -> migration_pb2.FailMigrationResponse:
        moved = await self._migrations.move(
            request.name, Verb.FAIL, request.etag, reason=request.reason
        )
        return migration_pb2.FailMigrationResponse(migration=migration_proto(moved))

    async def CancelMigration(
        self, request: migration_pb2.CancelMigrationRequest, context: Context
    ) -> migration_pb2.CancelMigrationResponse:
        moved = await self._migrations.move(request.name, Verb.CANCEL, request.etag)
        return migration_pb2.CancelMigrationResponse(migration=migration_proto(moved))

    async def ReportProgress(
        self, request: migration_pb2.ReportProgressRequest, context: Context
    ) -> migration_pb2.ReportProgressResponse:
        reported = await self._migrations.report_progress(request.name, request.progress)
        return migration_pb2.ReportProgressResponse(migration=migration_proto(reported))

    async def WatchMigration(  # type: ignore[override]
        self, request: migration_pb2.WatchMigrationRequest, context: Context
    ) -> AsyncIterator[migration_pb2.WatchMigrationResponse]:
        async for change in self._migrations.watch(request.name):
            yield change_proto(change)

    async def GetUsage(
        self, request: migration_pb2.GetUsageRequest, context: Context
    ) -> migration_pb2.GetUsageResponse:
        usage = await self._migrations.usage(request.parent, request.start_month, request.end_month)
        return usage_proto(usage)

    async def GetMigrationConnections(
        self, request: migration_pb2.GetMigrationConnectionsRequest, context: Context
    ) -> migration_pb2.GetMigrationConnectionsResponse:
        return connections_proto(await self._migrations.connections(request.name))


# --- SchemaService --------------------------------------------------------------------


class SchemaServicer(schema_pb2_grpc.SchemaServiceServicer):
    """sensei.migration.v1.SchemaService."""

    def __init__(self, schemas: Schemas) -> None:
        self._schemas = schemas

    async def CreateSchema(
        self, request: schema_pb2.CreateSchemaRequest, context: Context
    ) -> schema_pb2.CreateSchemaResponse:
        schema_type, definition, metadata = schema_fields_in(request.schema)
        response: schema_pb2.CreateSchemaResponse = await self._schemas.create(
            request.parent,
            schema_type=schema_type,
            definition=definition,
            metadata=metadata,
            request=request,
            response_type=schema_pb2.CreateSchemaResponse,
            respond=lambda s: schema_pb2.CreateSchemaResponse(schema=schema_proto(s)),
        )
        return response

    async def CaptureSchema(
        self, request: schema_pb2.CaptureSchemaRequest, context: Context
    ) -> schema_pb2.CaptureSchemaResponse:
        response: schema_pb2.CaptureSchemaResponse = await self._schemas.capture(
            request.parent,
            schema_type=schema_type_in(request.type, "type"),
            namespaces=list(request.schemas),
            metadata=struct_or_raise(request.metadata, "metadata"),
            request=request,
            response_type=schema_pb2.CaptureSchemaResponse,
            respond=lambda s: schema_pb2.CaptureSchemaResponse(schema=schema_proto(s)),
        )
        return response

    async def GetSchema(
        self, request: schema_pb2.GetSchemaRequest, context: Context
    ) -> schema_pb2.GetSchemaResponse:
        return schema_pb2.GetSchemaResponse(
            schema=schema_proto(await self._schemas.get(request.name))
        )

    async def ListSchemas(
        self, request: schema_pb2.ListSchemasRequest, context: Context
    ) -> schema_pb2.ListSchemasResponse:
        page = await self._schemas.list_schemas(
            request.parent,
            schema_type_in(request.type, "type"),
            request.page_size,
            request.page_token,
        )
        return schema_pb2.ListSchemasResponse(
            schemas=[schema_proto(s) for s in page.items], next_page_token=page.next_page_token
        )

    async def DiffSchemas(
        self, request: schema_pb2.DiffSchemasRequest, context: Context
    ) -> schema_pb2.DiffSchemasResponse:
        base, target, differences = await self._schemas.diff(
            request.base_schema, request.target_schema
        )
        return diff_proto(base, target, differences)


# --- AgentExecutionService ------------------------------------------------------------


class AgentExecutionServicer(agent_execution_pb2_grpc.AgentExecutionServiceServicer):
    """sensei.migration.v1.AgentExecutionService."""

    def __init__(self, executions: AgentExecutions) -> None:
        self._executions = executions

    async def StartAgentExecution(
        self, request: agent_execution_pb2.StartAgentExecutionRequest, context: Context
    ) -> agent_execution_pb2.StartAgentExecutionResponse:
        given = request.agent_execution
        response: agent_execution_pb2.StartAgentExecutionResponse = await self._executions.start(
            request.parent,
            agent_type=agent_type_in(given.agent_type, "agent_execution.agent_type"),
            agent_input=struct_or_raise(given.input, "agent_execution.input"),
            request=request,
            response_type=agent_execution_pb2.StartAgentExecutionResponse,
            respond=lambda e: agent_execution_pb2.StartAgentExecutionResponse(
                agent_execution=agent_execution_proto(e)
            ),
        )
        return response

    async def CompleteAgentExecution(
        self, request: agent_execution_pb2.CompleteAgentExecutionRequest, context: Context
    ) -> agent_execution_pb2.CompleteAgentExecutionResponse:
        completed = await self._executions.complete(agent_completion_in(request))
        return agent_execution_pb2.CompleteAgentExecutionResponse(
            agent_execution=agent_execution_proto(completed)
        )

    async def GetAgentExecution(
        self, request: agent_execution_pb2.GetAgentExecutionRequest, context: Context
    ) -> agent_execution_pb2.GetAgentExecutionResponse:
        execution = await self._executions.get(request.name)
        return agent_execution_pb2.GetAgentExecutionResponse(
            agent_execution=agent_execution_proto(execution)
        )

    async def ListAgentExecutions(
        self, request: agent_execution_pb2.ListAgentExecutionsRequest, context: Context
    ) -> agent_execution_pb2.ListAgentExecutionsResponse:
        page = await self._executions.list_executions(
            request.parent,
            agent_type=agent_type_in(request.agent_type, "agent_type"),
            status=agent_status_in(request.status, "status"),
            size=request.page_size,
            token=request.page_token,
        )
        return agent_execution_pb2.ListAgentExecutionsResponse(
            agent_executions=[agent_execution_proto(e) for e in page.items],
            next_page_token=page.next_page_token,
        )
