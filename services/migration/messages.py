"""Proto ⇄ domain mapping of the migration service's messages: requests in, resources out.

Every Migration message is built by `migration_proto`, which redacts the connection configs;
only `connections_proto` (GetMigrationConnections, services only) carries them in clear.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from google.protobuf import struct_pb2

from sensei.migration.v1 import agent_execution_pb2, migration_pb2, schema_pb2
from services.migration.connection_config import redact_connection_config
from services.migration.domain import (
    AgentCompletion,
    AgentExecution,
    AgentExecutionStatus,
    AgentType,
    Connections,
    Migration,
    MigrationChange,
    MigrationPatch,
    MigrationStatus,
    Schema,
    SchemaType,
    Usage,
)
from services.migration.schema_difference import SchemaDifference
from shared import protoconv
from shared.connection_configs import POSTGRESQL, engine_of
from shared.errors import FieldViolation, InvalidArgument

E = TypeVar("E", MigrationStatus, SchemaType, AgentType, AgentExecutionStatus)


# --- enums ------------------------------------------------------------------------------


def _enum_in(domain_enum: type[E], enum_type: Any, value: int, field_name: str) -> E | None:
    """The domain value of a proto enum number: UNSPECIFIED → None, unknown → INVALID_ARGUMENT."""
    if value == 0:
        return None
    try:
        name: str = enum_type.Name(value)
    except ValueError:
        raise InvalidArgument.single(field_name, f"unknown enum value {value}") from None
    return domain_enum(name.removeprefix(_PREFIXES[domain_enum]))


_PREFIXES: dict[type[Any], str] = {
    MigrationStatus: "MIGRATION_STATUS_",
    SchemaType: "SCHEMA_TYPE_",
    AgentType: "AGENT_TYPE_",
    AgentExecutionStatus: "AGENT_EXECUTION_STATUS_",
}


def migration_status_in(value: int, field_name: str) -> MigrationStatus | None:
    """A MigrationStatus filter (UNSPECIFIED → None)."""
    return _enum_in(MigrationStatus, migration_pb2.MigrationStatus, value, field_name)


def schema_type_in(value: int, field_name: str) -> SchemaType | None:
    """A SchemaType (UNSPECIFIED → None)."""
    return _enum_in(SchemaType, schema_pb2.SchemaType, value, field_name)


def agent_type_in(value: int, field_name: str) -> AgentType | None:
    """An AgentType (UNSPECIFIED → None)."""
    return _enum_in(AgentType, agent_execution_pb2.AgentType, value, field_name)


def agent_status_in(value: int, field_name: str) -> AgentExecutionStatus | None:
    """An AgentExecutionStatus (UNSPECIFIED → None)."""
    return _enum_in(
        AgentExecutionStatus, agent_execution_pb2.AgentExecutionStatus, value, field_name
    )


def _status_out(status: MigrationStatus | None) -> migration_pb2.MigrationStatus.ValueType:
    if status is None:
        return migration_pb2.MIGRATION_STATUS_UNSPECIFIED
    return migration_pb2.MigrationStatus.Value(f"MIGRATION_STATUS_{status.value}")


def _agent_type_out(agent_type: AgentType) -> agent_execution_pb2.AgentType.ValueType:
    return agent_execution_pb2.AgentType.Value(f"AGENT_TYPE_{agent_type.value}")


def struct_in(struct: struct_pb2.Struct, field_name: str, violations: list[FieldViolation]) -> Any:
    """A Struct as a dict; its problems are added to `violations` (then it is `{}`)."""
    try:
        return protoconv.dict_of(struct, field_name)
    except InvalidArgument as exc:
        violations.extend(exc.violations)
        return {}


def struct_or_raise(struct: struct_pb2.Struct, field_name: str) -> dict[str, Any]:
    """A Struct as a dict; INVALID_ARGUMENT naming `field_name` when it is not valid JSON."""
    value: dict[str, Any] = protoconv.dict_of(struct, field_name)
    return value


def _value_of(value: Any) -> struct_pb2.Value:
    out = struct_pb2.Value()
    if value is None:
        out.null_value = struct_pb2.NULL_VALUE
    elif isinstance(value, bool):
        out.bool_value = value
    elif isinstance(value, (int, float)):
        out.number_value = value
    elif isinstance(value, str):
        out.string_value = value
    elif isinstance(value, Mapping):
        out.struct_value.update(dict(value))
    else:
        out.list_value.extend(list(value))
    return out


# --- requests -------------------------------------------------------------------------


def migration_values_in(
    migration: migration_pb2.Migration, violations: list[FieldViolation]
) -> dict[str, Any]:
    """The fields of a CreateMigration request; bad Structs are added to `violations`."""
    return {
        "display_name": migration.display_name,
        "description": migration.description,
        "source_config": struct_in(migration.source_config, "migration.source_config", violations),
        "target_config": struct_in(migration.target_config, "migration.target_config", violations),
    }


def migration_patch_in(request: migration_pb2.UpdateMigrationRequest) -> MigrationPatch:
    """An UpdateMigration request; INVALID_ARGUMENT when a masked config is not valid JSON."""
    given = request.migration
    paths = tuple(request.update_mask.paths)
    violations: list[FieldViolation] = []
    values: dict[str, Any] = {
        "display_name": given.display_name,
        "description": given.description,
    }
    for side in ("source_config", "target_config"):
        if side in paths:
            values[side] = struct_in(getattr(given, side), f"migration.{side}", violations)
    if violations:
        raise InvalidArgument(violations)
    return MigrationPatch(name=given.name, values=values, paths=paths, etag=given.etag)


def schema_fields_in(
    schema: schema_pb2.Schema,
) -> tuple[SchemaType | None, dict[str, Any], dict[str, Any]]:
    """Type, definition and metadata of a CreateSchema request; INVALID_ARGUMENT if malformed."""
    violations: list[FieldViolation] = []
    schema_type = schema_type_in(schema.type, "schema.type")
    definition = struct_in(schema.definition, "schema.definition", violations)
    metadata = struct_in(schema.metadata, "schema.metadata", violations)
    if violations:
        raise InvalidArgument(violations)
    return schema_type, definition, metadata


def agent_completion_in(
    request: agent_execution_pb2.CompleteAgentExecutionRequest,
) -> AgentCompletion:
    """A CompleteAgentExecution request (status None when UNSPECIFIED)."""
    return AgentCompletion(
        name=request.name,
        status=agent_status_in(request.status, "status"),
        tokens_used=request.tokens_used,
        duration_ms=request.duration_ms,
        output=struct_or_raise(request.output, "output"),
        error_message=request.error_message,
    )


# --- resources ------------------------------------------------------------------------


def migration_proto(migration: Migration) -> migration_pb2.Migration:
    """The API form of a migration, connection configs redacted."""
    state = migration.lifecycle
    return migration_pb2.Migration(
        name=migration.name,
        id=migration.id,
        org_id=migration.org_id,
        display_name=migration.display_name,
        description=migration.description,
        status=_status_out(state.status),
        source_config=protoconv.struct_of(redact_connection_config(migration.source_config)),
        target_config=protoconv.struct_of(redact_connection_config(migration.target_config)),
        progress=state.progress,
        start_time=protoconv.timestamp(state.start_time),
        complete_time=protoconv.timestamp(state.complete_time),
        paused_status=_status_out(state.paused_status),
        failure_reason=state.failure_reason,
        create_time=protoconv.timestamp(migration.created_at),
        update_time=protoconv.timestamp(migration.updated_at),
        etag=migration.etag,
        source_engine=engine_of(migration.source_config),
        target_engine=engine_of(migration.target_config),
    )


def change_proto(change: MigrationChange) -> migration_pb2.WatchMigrationResponse:
    """One WatchMigration event: what changed and the migration after it (configs redacted)."""
    return migration_pb2.WatchMigrationResponse(
        event_type=migration_pb2.MigrationEventType.Value(
            f"MIGRATION_EVENT_TYPE_{change.event.value}"
        ),
        migration=migration_proto(change.migration),
    )


def connections_proto(
    connections: Connections,
) -> migration_pb2.GetMigrationConnectionsResponse:
    """GetMigrationConnections: the one message that carries connection configs in clear."""
    return migration_pb2.GetMigrationConnectionsResponse(
        name=connections.name,
        source_config=protoconv.struct_of(dict(connections.source_config)),
        target_config=protoconv.struct_of(dict(connections.target_config)),
    )


def schema_proto(schema: Schema) -> schema_pb2.Schema:
    """The API form of a schema."""
    return schema_pb2.Schema(
        name=schema.name,
        id=schema.id,
        org_id=schema.org_id,
        migration_id=schema.migration_id,
        type=schema_pb2.SchemaType.Value(f"SCHEMA_TYPE_{schema.type.value}"),
        definition=protoconv.struct_of(dict(schema.definition)),
        fingerprint=schema.fingerprint,
        metadata=protoconv.struct_of(dict(schema.metadata)),
        create_time=protoconv.timestamp(schema.created_at),
        engine=str(schema.definition.get("engine", POSTGRESQL)),
    )


def difference_proto(difference: SchemaDifference) -> schema_pb2.SchemaDifference:
    """The API form of one schema difference (before/after unset where meaningless)."""
    out = schema_pb2.SchemaDifference(
        kind=schema_pb2.DifferenceKind.Value(f"DIFFERENCE_KIND_{difference.kind.value}"),
        object_type=schema_pb2.SchemaObjectType.Value(
            f"SCHEMA_OBJECT_TYPE_{difference.object_type.value}"
        ),
        path=difference.path,
        table=difference.table,
        object_name=difference.object_name,
        attribute=difference.attribute,
        reason=difference.reason,
    )
    if difference.kind.value != "ADDED":
        out.before.CopyFrom(_value_of(difference.before))
    if difference.kind.value != "REMOVED":
        out.after.CopyFrom(_value_of(difference.after))
    return out


def diff_proto(
    base: Schema, target: Schema, differences: list[SchemaDifference]
) -> schema_pb2.DiffSchemasResponse:
    """The API form of DiffSchemas: both fingerprints and every difference."""
    return schema_pb2.DiffSchemasResponse(
        base_fingerprint=base.fingerprint,
        target_fingerprint=target.fingerprint,
        differences=[difference_proto(d) for d in differences],
    )


def agent_execution_proto(execution: AgentExecution) -> agent_execution_pb2.AgentExecution:
    """The API form of an agent execution."""
    return agent_execution_pb2.AgentExecution(
        name=execution.name,
        id=execution.id,
        org_id=execution.org_id,
        migration_id=execution.migration_id,
        agent_type=_agent_type_out(execution.agent_type),
        status=agent_execution_pb2.AgentExecutionStatus.Value(
            f"AGENT_EXECUTION_STATUS_{execution.status.value}"
        ),
        tokens_used=execution.tokens_used,
        duration_ms=execution.duration_ms,
        input=protoconv.struct_of(dict(execution.input)),
        output=protoconv.struct_of(dict(execution.output)),
        create_time=protoconv.timestamp(execution.created_at),
        update_time=protoconv.timestamp(execution.updated_at),
        complete_time=protoconv.timestamp(execution.completed_at),
        error_message=execution.error_message,
    )


def usage_proto(usage: Usage) -> migration_pb2.GetUsageResponse:
    """The API form of GetUsage."""
    response = migration_pb2.GetUsageResponse(
        org_id=usage.org_id,
        months=[
            migration_pb2.MonthlyUsage(
                month=month.month,
                tokens_used=month.tokens_used,
                agent_types=[
                    migration_pb2.AgentTypeUsage(
                        agent_type=_agent_type_out(item.agent_type),
                        tokens_used=item.tokens_used,
                        execution_count=item.execution_count,
                    )
                    for item in month.agent_types
                ],
            )
            for month in usage.months
        ],
        active_migrations=usage.active_migrations,
    )
    if usage.monthly_token_limit is not None:
        response.monthly_token_limit = usage.monthly_token_limit
    if usage.active_migration_limit is not None:
        response.active_migration_limit = usage.active_migration_limit
    return response
