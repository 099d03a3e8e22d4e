"""The verification service's view of the migration service, over its generated stubs.

Calls are made as this service's own service principal (`ServiceCredentials`). gRPC failures
become domain errors: NOT_FOUND stays NotFound, a refused precondition or argument becomes
FailedPrecondition (permanent), anything else is Unavailable (retryable).
"""

from __future__ import annotations

import grpc
from google.protobuf import json_format

from sensei.migration.v1 import (
    migration_pb2,
    migration_pb2_grpc,
    schema_pb2,
    schema_pb2_grpc,
)
from services.verification.schema_parity import SchemaDifference, SchemaRef
from shared import client, protoconv
from shared.credentials import ServiceCredentials
from shared.errors import DomainError, FailedPrecondition, NotFound, Unavailable

_PERMANENT = {grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.INVALID_ARGUMENT}

SIDES = {"source": schema_pb2.SCHEMA_TYPE_SOURCE, "target": schema_pb2.SCHEMA_TYPE_TARGET}


class MigrationClient:
    """GetMigration, GetMigrationConnections, CaptureSchema and DiffSchemas."""

    def __init__(
        self, address: str, credentials: ServiceCredentials, *, timeout_seconds: float = 30.0
    ) -> None:
        self._address = address
        self._credentials = credentials
        self._timeout = timeout_seconds
        self._channel: grpc.aio.Channel | None = None

    def _stubs(
        self,
    ) -> tuple[migration_pb2_grpc.MigrationServiceStub, schema_pb2_grpc.SchemaServiceStub]:
        if self._channel is None:
            self._channel = client.channel(self._address)
        return (
            migration_pb2_grpc.MigrationServiceStub(self._channel),
            schema_pb2_grpc.SchemaServiceStub(self._channel),
        )

    async def close(self) -> None:
        """Closes the channel."""
        if self._channel is not None:
            await self._channel.close()

    async def migration_org(self, name: str) -> str:
        """The organization id of an existing migration; NotFound when there is none."""
        migrations, _ = self._stubs()
        try:
            response = await migrations.GetMigration(
                migration_pb2.GetMigrationRequest(name=name),
                metadata=await self._credentials.metadata(),
                timeout=self._timeout,
            )
        except grpc.aio.AioRpcError as exc:
            raise _domain_error(exc, "Migration", name) from None
        return str(response.migration.org_id)

    async def connections(self, name: str) -> tuple[dict[str, object], dict[str, object]]:
        """The migration's (source, target) connection configs, credentials in clear."""
        migrations, _ = self._stubs()
        try:
            response = await migrations.GetMigrationConnections(
                migration_pb2.GetMigrationConnectionsRequest(name=name),
                metadata=await self._credentials.metadata(),
                timeout=self._timeout,
            )
        except grpc.aio.AioRpcError as exc:
            raise _domain_error(exc, "Migration", name) from None
        return (
            json_format.MessageToDict(response.source_config),
            json_format.MessageToDict(response.target_config),
        )

    async def capture(self, migration: str, side: str, request_id: str) -> SchemaRef:
        """Captures the live `side` ("source" or "target") database's schema; stores it there."""
        _, schemas = self._stubs()
        try:
            response = await schemas.CaptureSchema(
                schema_pb2.CaptureSchemaRequest(
                    parent=migration,
                    type=SIDES[side],
                    metadata=protoconv.struct_of({"captured_by": "verification"}),
                    request_id=request_id,
                ),
                metadata=await self._credentials.metadata(),
                timeout=self._timeout,
            )
        except grpc.aio.AioRpcError as exc:
            raise _domain_error(exc, "Migration", migration) from None
        schema = response.schema
        return SchemaRef(
            name=schema.name,
            fingerprint=schema.fingerprint,
            definition=json_format.MessageToDict(schema.definition),
        )

    async def diff(self, base: SchemaRef, target: SchemaRef) -> list[SchemaDifference]:
        """Every difference between two stored schemas."""
        _, schemas = self._stubs()
        try:
            response = await schemas.DiffSchemas(
                schema_pb2.DiffSchemasRequest(base_schema=base.name, target_schema=target.name),
                metadata=await self._credentials.metadata(),
                timeout=self._timeout,
            )
        except grpc.aio.AioRpcError as exc:
            raise _domain_error(exc, "Schema", base.name) from None
        return [_difference(d) for d in response.differences]


def _difference(message: schema_pb2.SchemaDifference) -> SchemaDifference:
    return SchemaDifference(
        kind=schema_pb2.DifferenceKind.Name(message.kind).removeprefix("DIFFERENCE_KIND_"),
        object_type=schema_pb2.SchemaObjectType.Name(message.object_type).removeprefix(
            "SCHEMA_OBJECT_TYPE_"
        ),
        path=message.path,
        table=message.table,
        object_name=message.object_name,
        attribute=message.attribute,
        before=json_format.MessageToDict(message.before) if message.HasField("before") else None,
        after=json_format.MessageToDict(message.after) if message.HasField("after") else None,
        reason=message.reason,
    )


def _domain_error(exc: grpc.aio.AioRpcError, resource_type: str, name: str) -> DomainError:
    code = exc.code()
    if code == grpc.StatusCode.NOT_FOUND:
        return NotFound(resource_type, name)
    if code in _PERMANENT:
        return FailedPrecondition(
            f"the migration service refused: {exc.details()}",
            reason="MIGRATION_SERVICE_REFUSED",
            metadata={"code": code.name},
        )
    return Unavailable(
        f"the migration service is unavailable: {code.name}: {exc.details()}",
        reason="MIGRATION_SERVICE_UNAVAILABLE",
        metadata={"code": code.name},
    )
