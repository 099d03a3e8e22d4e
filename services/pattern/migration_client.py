"""The pattern service's view of the migration service: does a migration exist, and whose.

RecordPatternOutcome names a migration of the caller's organization; this asks the
migration service (`GetMigration`, as this service's own service principal) before an
outcome counts. NOT_FOUND stays NotFound; anything else means the answer is unknown, so
the outcome is refused with UNAVAILABLE (retryable) rather than counted unchecked.
"""

from __future__ import annotations

from typing import Protocol

import grpc

from sensei.migration.v1 import migration_pb2, migration_pb2_grpc
from shared import client
from shared.credentials import ServiceCredentials
from shared.errors import NotFound, Unavailable


class MigrationDirectory(Protocol):
    """Tells which organization an existing migration belongs to."""

    async def migration_org(self, name: str) -> str:
        """The organization id of migration `name`; NotFound when there is none."""
        ...


class MigrationClient:
    """GetMigration over the generated stub, with this service's credentials."""

    def __init__(
        self, address: str, credentials: ServiceCredentials, *, timeout_seconds: float = 5.0
    ) -> None:
        self._address = address
        self._credentials = credentials
        self._timeout = timeout_seconds
        self._channel: grpc.aio.Channel | None = None

    async def migration_org(self, name: str) -> str:
        """The organization id of migration `name`; NotFound when there is none."""
        if self._channel is None:
            self._channel = client.channel(self._address)
        stub = migration_pb2_grpc.MigrationServiceStub(self._channel)
        try:
            metadata = await self._credentials.metadata()
            response = await stub.GetMigration(
                migration_pb2.GetMigrationRequest(name=name),
                metadata=metadata,
                timeout=self._timeout,
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                raise NotFound("Migration", name) from None
            raise Unavailable(
                f"cannot check the migration with the migration service: {exc.code().name}",
                reason="MIGRATION_SERVICE_UNAVAILABLE",
                metadata={"code": exc.code().name},
            ) from None
        return str(response.migration.org_id)

    async def close(self) -> None:
        """Closes the channel."""
        if self._channel is not None:
            await self._channel.close()
