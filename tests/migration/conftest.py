"""Fixtures of the migration service tests: running services and typed stubs on them.

`api` shares one org + migration service pair per test module (fast); each test makes its
own organization with `api.tenant()`, so tests never see each other's data or quotas.
`own_api` runs services for one test only, for tests that stop or restart a service.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import grpc
import pytest
from google.protobuf import struct_pb2

from sensei.migration.v1 import (
    agent_execution_pb2_grpc,
    migration_pb2,
    migration_pb2_grpc,
    schema_pb2_grpc,
)
from tests.conftest import sample_env
from tests.harness import Identity, Suite

# Verb → (RPC of MigrationService, its request message).
VERB_RPCS: dict[str, tuple[str, type[Any]]] = {
    "START": ("StartMigration", migration_pb2.StartMigrationRequest),
    "ADVANCE": ("AdvanceMigration", migration_pb2.AdvanceMigrationRequest),
    "PAUSE": ("PauseMigration", migration_pb2.PauseMigrationRequest),
    "RESUME": ("ResumeMigration", migration_pb2.ResumeMigrationRequest),
    "COMPLETE": ("CompleteMigration", migration_pb2.CompleteMigrationRequest),
    "FAIL": ("FailMigration", migration_pb2.FailMigrationRequest),
    "CANCEL": ("CancelMigration", migration_pb2.CancelMigrationRequest),
}


def struct(value: dict[str, Any]) -> struct_pb2.Struct:
    """A Struct of a dict."""
    out = struct_pb2.Struct()
    out.update(value)
    return out


def status_name(value: int) -> str:
    """`MIGRATION_STATUS_PAUSED` → `PAUSED`."""
    return migration_pb2.MigrationStatus.Name(value).removeprefix("MIGRATION_STATUS_")  # type: ignore[arg-type]


@dataclass
class Api:
    """Running migration (and org) services and stubs for the three migration services."""

    suite: Suite

    @property
    def migrations(self) -> migration_pb2_grpc.MigrationServiceStub:
        """MigrationService."""
        return self.suite.stub("migration", migration_pb2_grpc.MigrationServiceStub)

    @property
    def schemas(self) -> schema_pb2_grpc.SchemaServiceStub:
        """SchemaService."""
        return self.suite.stub("migration", schema_pb2_grpc.SchemaServiceStub)

    @property
    def agents(self) -> agent_execution_pb2_grpc.AgentExecutionServiceStub:
        """AgentExecutionService."""
        return self.suite.stub("migration", agent_execution_pb2_grpc.AgentExecutionServiceStub)

    async def tenant(self, plan: str = "ENTERPRISE") -> Identity:
        """The owner of a new organization on `plan`."""
        _, owner = await self.suite.new_org(plan=plan)
        return owner

    async def db(self) -> asyncpg.Connection:
        """A connection to the test database with the migration schema first on the path."""
        return await asyncpg.connect(
            self.suite.database_url, server_settings={"search_path": "migration"}
        )

    async def fetchval(self, sql: str, *args: Any) -> Any:
        """The single value a query returns."""
        conn = await self.db()
        try:
            return await conn.fetchval(sql, *args)
        finally:
            await conn.close()

    async def create(
        self, who: Identity, request_id: str = "", **fields: Any
    ) -> migration_pb2.Migration:
        """A new migration of `who`'s organization (display name made up unless given)."""
        fields.setdefault("display_name", f"move {uuid.uuid4().hex[:8]}")
        for side in ("source_config", "target_config"):
            if isinstance(fields.get(side), dict):
                fields[side] = struct(fields[side])
        response = await self.migrations.CreateMigration(
            migration_pb2.CreateMigrationRequest(
                parent=who.org_name,
                migration=migration_pb2.Migration(**fields),
                request_id=request_id,
            ),
            metadata=who.metadata,
        )
        return response.migration

    async def move(
        self, who: Identity, name: str, verb: str, **fields: Any
    ) -> migration_pb2.Migration:
        """Runs one lifecycle verb (FAIL gets a reason unless one is given)."""
        method, request_type = VERB_RPCS[verb]
        if verb == "FAIL":
            fields.setdefault("reason", "the target ran out of disk")
        response = await getattr(self.migrations, method)(
            request_type(name=name, **fields), metadata=who.metadata
        )
        migration: migration_pb2.Migration = response.migration
        return migration

    async def drive(
        self, who: Identity, name: str, verbs: Sequence[str]
    ) -> migration_pb2.Migration | None:
        """Runs lifecycle verbs in order; the migration after the last (None if none)."""
        migration = None
        for verb in verbs:
            migration = await self.move(who, name, verb)
        return migration

    async def progress(self, who: Identity, name: str, value: float) -> migration_pb2.Migration:
        """Reports progress."""
        response = await self.migrations.ReportProgress(
            migration_pb2.ReportProgressRequest(name=name, progress=value), metadata=who.metadata
        )
        migration: migration_pb2.Migration = response.migration
        return migration


@pytest.fixture(scope="module")
async def shared_suite(
    postgres: Any,
    template_database: str,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> AsyncIterator[Suite]:
    """Org and migration services shared by the tests of one module, on their own database."""
    name = f"sensei_mig_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(postgres.dsn("postgres"))
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
        suite = Suite(postgres.dsn(name), tmp_path_factory.mktemp("migration"), sample_env(request))
        try:
            await suite.start("migration")
            yield suite
        finally:
            await suite.close()
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
def api(shared_suite: Suite) -> Api:
    """The module's shared services."""
    return Api(shared_suite)


@pytest.fixture
async def own_api(suite: Suite) -> Api:
    """Services for this test only (safe to stop and restart)."""
    await suite.start("migration")
    return Api(suite)


async def rpc_error(call: Awaitable[Any]) -> grpc.aio.AioRpcError:
    """The error an RPC fails with (fails the test if it succeeds)."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


async def stream_error(stream: Any) -> grpc.aio.AioRpcError:
    """The error a server stream ends with (fails the test if it ends cleanly)."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in stream:
            pass
    return caught.value


async def read_to_end(call: Any) -> list[Any]:
    """Every message left on a server stream read with `read()`, until it ends."""
    messages = []
    while (message := await call.read()) is not grpc.aio.EOF:
        messages.append(message)
    return messages
