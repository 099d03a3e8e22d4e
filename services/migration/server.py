"""Wiring of the service; a placeholder until its servicers land (RPCs are UNIMPLEMENTED)."""

from __future__ import annotations

from pathlib import Path

from sensei.migration.v1 import agent_execution_pb2_grpc, migration_pb2_grpc, schema_pb2_grpc
from shared.server import ServiceContext, ServiceDefinition


async def setup(ctx: ServiceContext) -> None:
    """Registers the servicers."""
    ctx.add_servicer(
        migration_pb2_grpc.add_MigrationServiceServicer_to_server,
        migration_pb2_grpc.MigrationServiceServicer(),
    )
    ctx.add_servicer(
        schema_pb2_grpc.add_SchemaServiceServicer_to_server, schema_pb2_grpc.SchemaServiceServicer()
    )
    ctx.add_servicer(
        agent_execution_pb2_grpc.add_AgentExecutionServiceServicer_to_server,
        agent_execution_pb2_grpc.AgentExecutionServiceServicer(),
    )


DEFINITION = ServiceDefinition(
    name="migration",
    service_names=(
        "sensei.migration.v1.MigrationService",
        "sensei.migration.v1.SchemaService",
        "sensei.migration.v1.AgentExecutionService",
    ),
    package_dir=Path(__file__).parent,
    setup=setup,
)
