"""Runs Sensei services in-process on ephemeral ports against one test database.

`Suite` starts the services a test asks for (org always first: the others verify tokens
with its keys and send it audit events), bootstraps a first organization with an owner,
a service account and the platform operator, and hands out access tokens for any role in
any organization, obtained the way real callers get them: an API key exchanged over gRPC.
"""

from __future__ import annotations

import importlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import grpc

from devstack.postgres import free_port
from sensei.org.v1 import (
    auth_pb2,
    auth_pb2_grpc,
    organization_pb2,
    organization_pb2_grpc,
    user_pb2,
    user_pb2_grpc,
)
from shared import config as config_module
from shared import secrets
from shared.server import RunningService, ServiceDefinition, start
from shared.tls import TlsSettings, secure_channel

ALL_SERVICES = ("org", "migration", "verification", "pattern")

# Fresh secrets for the whole run, so a restarted service still opens what it sealed.
RUN_SECRETS = secrets.generate()


def definition_of(service: str) -> ServiceDefinition:
    """The ServiceDefinition of `services.<service>.server`."""
    module = importlib.import_module(f"services.{service}.server")
    definition: ServiceDefinition = module.DEFINITION
    return definition


@dataclass(frozen=True)
class Identity:
    """A caller: who, in which organization, with what token."""

    org_id: str
    user_id: str | None
    role: str
    token: str

    @property
    def org_name(self) -> str:
        """`organizations/{org_id}`."""
        return f"organizations/{self.org_id}"

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        """Call metadata with the bearer token."""
        return (("authorization", f"Bearer {self.token}"),)


class Suite:
    """Services of one test, sharing one database (one schema each)."""

    def __init__(self, database_url: str, work_dir: Path, env: Mapping[str, str] | None = None):
        self.database_url = database_url
        self.work_dir = work_dir
        self.env = dict(env or {})
        self.running: dict[str, RunningService] = {}
        self._ports: dict[str, int] = {}
        self._channels: dict[str, grpc.aio.Channel] = {}
        self.org_id = ""
        self.owner_api_key = ""
        self.service_api_key = ""
        self.operator_api_key = ""
        self._owner: Identity | None = None
        self._service: Identity | None = None
        self._operator: Identity | None = None

    # --- lifecycle -------------------------------------------------------------------

    async def start(self, *services: str, env: Mapping[str, str] | None = None) -> None:
        """Starts `services` (and org, first, if it is not running)."""
        wanted = [name for name in ALL_SERVICES if name in services or name == "org"]
        for name in wanted:
            if name not in self.running:
                if name == "org" and not self.org_id:
                    await self._bootstrap()
                await self._start_one(name, env)

    async def stop(self, service: str, grace: float = 0.5) -> None:
        """Stops one service; `restart` brings it back on the same port."""
        running = self.running.pop(service)
        await running.stop(grace)
        channel = self._channels.pop(service, None)
        if channel is not None:
            await channel.close()

    async def restart(self, service: str, env: Mapping[str, str] | None = None) -> None:
        """Starts a stopped service again on its previous port."""
        await self._start_one(service, env)

    async def close(self) -> None:
        """Stops everything, last started first."""
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()
        for name in reversed(list(self.running)):
            await self.running.pop(name).stop(0.2)

    def service_env(self, service: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment a service of this suite is configured from."""
        # Ports chosen up front, so every service (org's own relay too) knows the
        # addresses of this suite and never reaches a server outside the test.
        for name in ALL_SERVICES:
            self._ports.setdefault(name, free_port())
        env = {
            "SENSEI_DATABASE_URL": self.database_url,
            "SENSEI_SERVICE_API_KEY": self.service_api_key,
            "SENSEI_GRACE_SECONDS": "2",
            # Production mode (no SENSEI_ENV=dev): tests meet the policies users get, so
            # the secrets are fresh for the run and loopback destinations are refused
            # unless a test allows them.
            **RUN_SECRETS,
            "SENSEI_VERIFICATION_KEYS_DIR": str(self.work_dir / "verification-keys"),
        }
        for name, port in self._ports.items():
            env[f"SENSEI_{name.upper()}_ADDR"] = f"127.0.0.1:{port}"
            env[f"SENSEI_{name.upper()}_PORT"] = str(port)
            env[f"SENSEI_{name.upper()}_METRICS_PORT"] = "0"
        env.update(self.env)
        env.update(extra or {})
        return env

    async def _start_one(self, service: str, env: Mapping[str, str] | None) -> None:
        config = config_module.load(service, self.service_env(service, env))
        running = await start(definition_of(service), config)
        self.running[service] = running
        self._ports[service] = running.port

    async def _bootstrap(self) -> None:
        from services.org.bootstrap import bootstrap

        conn = await asyncpg.connect(self.database_url, server_settings={"search_path": "org"})
        try:
            result = await bootstrap(
                conn,
                org_slug="acme",
                org_name="Acme Corp",
                owner_email="owner@acme.test",
                owner_name="Olive Owner",
            )
        finally:
            await conn.close()
        self.org_id = result.org_id
        self.owner_api_key = result.owner_api_key
        self.service_api_key = result.service_api_key
        self.operator_api_key = result.operator_api_key
        self.owner_user_id = result.owner_user_id

    # --- channels and stubs ----------------------------------------------------------

    def address(self, service: str) -> str:
        """`127.0.0.1:port` of a running service."""
        return self.running[service].address

    def channel(self, service: str) -> grpc.aio.Channel:
        """A (cached) channel to a running service: TLS when the suite's env sets
        `SENSEI_TLS_*` (with the client certificate the services use)."""
        if service not in self._channels:
            tls = TlsSettings.from_env(self.env)
            address = self.address(service)
            self._channels[service] = (
                secure_channel(address, tls) if tls else grpc.aio.insecure_channel(address)
            )
        return self._channels[service]

    def stub(self, service: str, stub_class: type[Any]) -> Any:
        """A generated stub on a channel to `service`."""
        return stub_class(self.channel(service))

    # --- identities ------------------------------------------------------------------

    async def exchange(self, api_key: str) -> str:
        """An access token for an API key, from the org service."""
        auth = auth_pb2_grpc.AuthServiceStub(self.channel("org"))
        response = await auth.ExchangeApiKey(auth_pb2.ExchangeApiKeyRequest(api_key=api_key))
        return str(response.access_token)

    async def owner(self) -> Identity:
        """The bootstrap organization's owner."""
        if self._owner is None:
            token = await self.exchange(self.owner_api_key)
            self._owner = Identity(self.org_id, self.owner_user_id, "OWNER", token)
        return self._owner

    async def service(self) -> Identity:
        """The bootstrap service account (role SERVICE, no organization)."""
        if self._service is None:
            token = await self.exchange(self.service_api_key)
            self._service = Identity("", None, "SERVICE", token)
        return self._service

    async def operator(self) -> Identity:
        """The bootstrap platform operator (role OPERATOR, no organization)."""
        if self._operator is None:
            token = await self.exchange(self.operator_api_key)
            self._operator = Identity("", None, "OPERATOR", token)
        return self._operator

    async def user(self, role: str, org_id: str | None = None) -> Identity:
        """A new user with `role` in an organization (the bootstrap one by default)."""
        org_id = org_id or self.org_id
        service = await self.service()
        users = user_pb2_grpc.UserServiceStub(self.channel("org"))
        tag = uuid.uuid4().hex[:10]
        created = await users.CreateUser(
            user_pb2.CreateUserRequest(
                parent=f"organizations/{org_id}",
                user=user_pb2.User(
                    email=f"{role.lower()}-{tag}@example.test",
                    display_name=f"{role.title()} {tag}",
                    role=user_pb2.Role.Value(f"ROLE_{role}"),
                ),
            ),
            metadata=service.metadata,
        )
        key = await users.CreateApiKey(
            user_pb2.CreateApiKeyRequest(
                parent=f"organizations/{org_id}",
                api_key=user_pb2.ApiKey(user=created.user.name, display_name=f"test {tag}"),
            ),
            metadata=service.metadata,
        )
        token = await self.exchange(key.secret)
        return Identity(org_id, created.user.id, role, token)

    async def new_org(
        self, plan: str = "FREE", slug: str | None = None
    ) -> tuple[organization_pb2.Organization, Identity]:
        """A new organization and its owner."""
        service = await self.service()
        orgs = organization_pb2_grpc.OrganizationServiceStub(self.channel("org"))
        slug = slug or f"org-{uuid.uuid4().hex[:12]}"
        created = await orgs.CreateOrganization(
            organization_pb2.CreateOrganizationRequest(
                organization=organization_pb2.Organization(
                    display_name=f"Org {slug}",
                    slug=slug,
                    plan=organization_pb2.Plan.Value(f"PLAN_{plan}"),
                )
            ),
            metadata=service.metadata,
        )
        owner = await self.user("OWNER", created.organization.id)
        return created.organization, owner
