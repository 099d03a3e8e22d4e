"""Organizations as the migration service needs them: existence and plan, from the org service.

`OrgDirectory` calls `OrganizationService.GetOrganization` with the service's own access
token and caches what it learns for a short while (30 s by default), so plan checks cost no
round trip on the hot path and a plan change shows within the TTL. When the org service
cannot answer, the call is UNAVAILABLE (retryable), never INTERNAL.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import grpc

from sensei.org.v1 import organization_pb2, organization_pb2_grpc
from services.migration.domain import Plan
from shared import client
from shared.credentials import ServiceCredentials
from shared.errors import NotFound, Unavailable

DEFAULT_TTL_SECONDS = 30.0
CALL_TIMEOUT_SECONDS = 5.0
MAX_CACHED = 10_000
# Reconnect soon after the org service comes back (gRPC's default backoff grows to 2 min).
_CHANNEL_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2_000),
]


@dataclass(frozen=True)
class OrgInfo:
    """What the migration service knows of an organization."""

    id: str
    plan: Plan


class OrgDirectory:
    """Looks organizations up in the org service, with a short cache."""

    def __init__(
        self,
        org_address: str,
        credentials: ServiceCredentials,
        *,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._address = org_address
        self._credentials = credentials
        self._ttl = ttl_seconds
        self._clock = clock
        self._cache: dict[str, tuple[float, OrgInfo]] = {}
        self._channel: grpc.aio.Channel | None = None

    async def organization(self, org_id: str) -> OrgInfo:
        """The organization; NOT_FOUND if the org service does not know it, else UNAVAILABLE."""
        cached = self._cache.get(org_id)
        if cached is not None and self._clock() < cached[0]:
            return cached[1]
        info = await self._fetch(org_id)
        now = self._clock()
        if len(self._cache) >= MAX_CACHED:
            self._cache = {key: entry for key, entry in self._cache.items() if now < entry[0]}
        self._cache[org_id] = (now + self._ttl, info)
        return info

    def forget(self, org_id: str) -> None:
        """Drops what is cached of an organization (it was deleted: ask again next time)."""
        self._cache.pop(org_id, None)

    async def _fetch(self, org_id: str) -> OrgInfo:
        if self._channel is None:
            self._channel = client.channel(self._address, options=_CHANNEL_OPTIONS)
        stub = organization_pb2_grpc.OrganizationServiceStub(self._channel)
        name = f"organizations/{org_id}"
        try:
            response = await stub.GetOrganization(
                organization_pb2.GetOrganizationRequest(name=name),
                metadata=await self._credentials.metadata(),
                timeout=CALL_TIMEOUT_SECONDS,
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                raise NotFound("Organization", name) from None
            raise Unavailable(
                f"cannot reach the org service to check the organization: {exc.code().name}",
                reason="ORG_UNAVAILABLE",
            ) from None
        plan_value = response.organization.plan
        try:
            plan = Plan(organization_pb2.Plan.Name(plan_value).removeprefix("PLAN_"))
        except ValueError:
            # An org service newer than us: treat an unknown plan as the most restrictive.
            plan = Plan.FREE
        return OrgInfo(id=org_id, plan=plan)

    async def close(self) -> None:
        """Closes the channel to the org service."""
        if self._channel is not None:
            await self._channel.close()
