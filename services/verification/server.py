"""Wiring of the service; a placeholder until its servicers land (RPCs are UNIMPLEMENTED)."""

from __future__ import annotations

from pathlib import Path

from sensei.verification.v1 import verification_pb2_grpc
from shared.server import ServiceContext, ServiceDefinition


async def setup(ctx: ServiceContext) -> None:
    """Registers the servicers."""
    ctx.add_servicer(
        verification_pb2_grpc.add_VerificationServiceServicer_to_server,
        verification_pb2_grpc.VerificationServiceServicer(),
    )


DEFINITION = ServiceDefinition(
    name="verification",
    service_names=("sensei.verification.v1.VerificationService",),
    package_dir=Path(__file__).parent,
    setup=setup,
)
