"""A bare test server built with the shared bootstrap, and tokens signed by a test key."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from sensei.org.v1 import organization_pb2, organization_pb2_grpc
from shared import config as config_module
from shared.db import Connection
from shared.errors import NotFound
from shared.idempotency import create_once
from shared.revocations import FollowedFreshness, RevocationList
from shared.server import RunningService, ServiceContext, ServiceDefinition, start

TEST_KID = "test-key"


@dataclass
class StaticKeys:
    """A KeySource with one fixed key, and a way to mint tokens with it."""

    private_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )

    async def public_key(self, kid: str) -> ec.EllipticCurvePublicKey | None:
        return self.private_key.public_key() if kid == TEST_KID else None

    def token(self, role: str = "OWNER", org: str | None = None, **claims: Any) -> str:
        now = int(time.time())
        body: dict[str, Any] = {
            "sub": f"users/{uuid.uuid4()}",
            "role": role,
            "iss": "sensei-org",
            "aud": "sensei",
            "iat": now,
            "exp": now + 300,
            "jti": uuid.uuid4().hex,
        }
        if org is not None:
            body["org"] = org
        body.update(claims)
        return jwt.encode(body, self.private_key, algorithm="ES256", headers={"kid": TEST_KID})


class ProbeOrganizations(organization_pb2_grpc.OrganizationServiceServicer):  # type: ignore[misc]
    """An OrganizationService whose GetOrganization can be held open, for shutdown tests, and
    whose CreateOrganization is an idempotent create writing one `probe_created` row."""

    def __init__(self) -> None:
        self.pool: asyncpg.Pool | None = None
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.hold = False
        self.raise_unexpected = False
        # Raised by GetOrganization when set; awaited by it first when set (a downstream call).
        self.error: Exception | None = None
        self.downstream: Callable[[], Awaitable[None]] | None = None

    async def GetOrganization(self, request: Any, context: Any) -> Any:
        if self.raise_unexpected:
            raise ValueError("a bug")
        if self.error is not None:
            raise self.error
        if self.downstream is not None:
            await self.downstream()
        if self.hold:
            self.entered.set()
            await self.release.wait()
        org_id = request.name.split("/")[1]
        if org_id.startswith("0"):
            raise NotFound("Organization", request.name)
        return organization_pb2.GetOrganizationResponse(
            organization=organization_pb2.Organization(name=request.name, id=org_id)
        )

    async def CreateOrganization(self, request: Any, context: Any) -> Any:
        async def create(conn: Connection) -> organization_pb2.CreateOrganizationResponse:
            org_id = str(uuid.uuid4())
            await conn.execute(
                "INSERT INTO probe_created (id, slug) VALUES ($1, $2)",
                org_id,
                request.organization.slug,
            )
            return organization_pb2.CreateOrganizationResponse(
                organization=organization_pb2.Organization(
                    name=f"organizations/{org_id}", id=org_id, slug=request.organization.slug
                )
            )

        assert self.pool is not None
        return await create_once(
            self.pool, request, organization_pb2.CreateOrganizationResponse, create
        )


@dataclass
class ProbeServer:
    running: RunningService
    servicer: ProbeOrganizations
    keys: StaticKeys

    @property
    def address(self) -> str:
        return self.running.address


@pytest.fixture
async def probe_server(database_url: str) -> AsyncIterator[ProbeServer]:
    keys = StaticKeys()
    servicer = ProbeOrganizations()

    async def setup(ctx: ServiceContext) -> None:
        ctx.key_source = keys
        # No org service here: a revocation view that is current and revokes nothing.
        nothing_revoked = RevocationList()
        nothing_revoked.confirmed(0)
        ctx.freshness = FollowedFreshness(nothing_revoked)
        async with ctx.pool.acquire() as conn:
            await conn.execute("CREATE TABLE IF NOT EXISTS probe_created (id uuid, slug text)")
        servicer.pool = ctx.pool
        ctx.add_servicer(organization_pb2_grpc.add_OrganizationServiceServicer_to_server, servicer)

    definition = ServiceDefinition(
        name="org",
        service_names=("sensei.org.v1.OrganizationService",),
        package_dir=Path(__file__).parent / "probe-service",  # no migrations of its own
        setup=setup,
    )
    config = config_module.load(
        "org",
        {
            "SENSEI_DATABASE_URL": database_url,
            "SENSEI_ORG_PORT": "0",
            "SENSEI_ORG_DB_SCHEMA": "probe",
            "SENSEI_ENV": "dev",
        },
    )
    running = await start(definition, config)
    try:
        yield ProbeServer(running, servicer, keys)
    finally:
        await running.stop(0.1)
