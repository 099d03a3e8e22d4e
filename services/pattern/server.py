"""Wiring of the service; a placeholder until its servicers land (RPCs are UNIMPLEMENTED)."""

from __future__ import annotations

from pathlib import Path

from sensei.pattern.v1 import pattern_pb2_grpc
from shared.server import ServiceContext, ServiceDefinition


async def setup(ctx: ServiceContext) -> None:
    """Registers the servicers."""
    ctx.add_servicer(
        pattern_pb2_grpc.add_PatternServiceServicer_to_server,
        pattern_pb2_grpc.PatternServiceServicer(),
    )


DEFINITION = ServiceDefinition(
    name="pattern",
    service_names=("sensei.pattern.v1.PatternService",),
    package_dir=Path(__file__).parent,
    setup=setup,
)
