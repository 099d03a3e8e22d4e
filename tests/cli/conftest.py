"""Fixtures of the CLI tests: the services, a CLI home, and ways to run `sensei`.

The services run once per module (starting and stopping them costs more than the tests);
every test gets its own organization, owner API key and CLI home, so tests stay apart.
`Cli.run` runs a command in-process with captured stdout/stderr: the coroutine that
`cli.__main__.main(argv)` runs, awaited on the test's own event loop (grpc.aio does not like
a second loop in another thread of the same process). `Cli.spawn` runs `python -m cli` as a
real subprocess, through `main`. Both see only the environment the test gives them.
"""

from __future__ import annotations

import asyncio
import io
import os
import sys
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import pytest

from cli.app import run
from sensei.migration.v1 import migration_pb2, migration_pb2_grpc
from sensei.org.v1 import organization_pb2, organization_pb2_grpc, user_pb2, user_pb2_grpc
from tests.conftest import ClonePrefetcher, Cluster, sample_env
from tests.harness import Identity, Suite

REPO = Path(__file__).resolve().parents[2]
# Longest any single CLI invocation may take in these tests.
RUN_SECONDS = 30.0


@dataclass(frozen=True)
class Result:
    """What one `sensei` invocation did."""

    code: int
    out: str
    err: str


class LiveBuffer(io.StringIO):
    """A StringIO a test can wait on while a command writes to it."""

    def __init__(self) -> None:
        super().__init__()
        self.written = asyncio.Event()

    def write(self, text: str) -> int:
        self.written.set()
        return super().write(text)

    async def wait_for(self, needle: str, seconds: float = 10.0) -> str:
        """Waits until `needle` has been written; returns everything written then."""
        async with asyncio.timeout(seconds):
            while needle not in self.getvalue():
                self.written.clear()
                await self.written.wait()
        return self.getvalue()


@dataclass
class Cli:
    """The CLI pointed at a test's services, with its own home directory."""

    suite: Suite
    home: Path
    owner: Identity
    api_key: str
    env: dict[str, str] = field(default_factory=dict)

    async def run(self, *argv: str, env: Mapping[str, str] | None = None) -> Result:
        """Runs the command in-process (what `main(argv)` runs) and waits for its exit code."""
        out, err = LiveBuffer(), LiveBuffer()
        code = await asyncio.wait_for(
            run(list(argv), out, err, {**self.env, **(env or {})}), RUN_SECONDS
        )
        return Result(code, out.getvalue(), err.getvalue())

    def start(self, *argv: str) -> tuple[asyncio.Task[int], LiveBuffer, LiveBuffer]:
        """Starts the command in-process; returns its task (the exit code) and live output."""
        out, err = LiveBuffer(), LiveBuffer()
        task = asyncio.create_task(run(list(argv), out, err, dict(self.env)))
        return task, out, err

    async def spawn(
        self, *argv: str, stdout: int = asyncio.subprocess.PIPE, stdin: int | None = None
    ) -> asyncio.subprocess.Process:
        """Starts `python -m cli argv` as a subprocess (output piped unless given a fd;
        `stdin=asyncio.subprocess.PIPE` to write to it)."""
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "cli",
            *argv,
            cwd=REPO,
            env={"PATH": os.environ.get("PATH", ""), **self.env},
            stdin=stdin,
            stdout=stdout,
            stderr=asyncio.subprocess.PIPE,
        )

    async def login(self) -> Result:
        """`sensei login` with the owner's API key (addresses from the environment)."""
        result = await self.run("login", "--api-key", self.api_key)
        assert result.code == 0, result.err
        return result


@pytest.fixture(scope="module")
async def services(
    postgres: Cluster,
    template_clones: ClonePrefetcher,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> AsyncIterator[Suite]:
    """Org, migration and verification services, shared by a module's tests."""
    database = await template_clones.take()
    suite = Suite(
        postgres.dsn(database), tmp_path_factory.mktemp("cli-services"), sample_env(request)
    )
    try:
        await suite.start("migration", "verification")
        yield suite
    finally:
        await suite.close()
        admin = await asyncpg.connect(postgres.dsn("postgres"))
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        finally:
            await admin.close()


async def new_tenant(suite: Suite) -> tuple[Identity, str]:
    """A new ENTERPRISE organization's owner and that owner's API key."""
    service = await suite.service()
    tag = uuid.uuid4().hex[:12]
    orgs = organization_pb2_grpc.OrganizationServiceStub(suite.channel("org"))
    org = (
        await orgs.CreateOrganization(
            organization_pb2.CreateOrganizationRequest(
                organization=organization_pb2.Organization(
                    display_name=f"CLI {tag}",
                    slug=f"cli-{tag}",
                    plan=organization_pb2.PLAN_ENTERPRISE,
                )
            ),
            metadata=service.metadata,
        )
    ).organization
    users = user_pb2_grpc.UserServiceStub(suite.channel("org"))
    user = (
        await users.CreateUser(
            user_pb2.CreateUserRequest(
                parent=org.name,
                user=user_pb2.User(
                    email=f"owner-{tag}@cli.test", display_name="Owner", role=user_pb2.ROLE_OWNER
                ),
            ),
            metadata=service.metadata,
        )
    ).user
    key = await users.CreateApiKey(
        user_pb2.CreateApiKeyRequest(
            parent=org.name, api_key=user_pb2.ApiKey(user=user.name, display_name="cli test")
        ),
        metadata=service.metadata,
    )
    token = await suite.exchange(key.secret)
    return Identity(org.id, user.id, "OWNER", token), str(key.secret)


@pytest.fixture
async def cli(services: Suite, tmp_path: Path) -> Cli:
    """A fresh organization and a CLI home, with the service addresses in the environment."""
    owner, api_key = await new_tenant(services)
    env = {"SENSEI_CLI_HOME": str(tmp_path / "cli-home")}
    for service in services.running:
        env[f"SENSEI_{service.upper()}_ADDR"] = services.address(service)
    return Cli(services, tmp_path / "cli-home", owner, api_key, env)


async def create_migration(
    suite: Suite,
    owner: Identity,
    display_name: str,
    source: Mapping[str, object] | None = None,
    target: Mapping[str, object] | None = None,
) -> migration_pb2.Migration:
    """A PENDING migration of the owner's organization."""
    migration = migration_pb2.Migration(display_name=display_name)
    if source is not None:
        migration.source_config.update(dict(source))
    if target is not None:
        migration.target_config.update(dict(target))
    stub = suite.stub("migration", migration_pb2_grpc.MigrationServiceStub)
    response = await stub.CreateMigration(
        migration_pb2.CreateMigrationRequest(parent=owner.org_name, migration=migration),
        metadata=owner.metadata,
    )
    created: migration_pb2.Migration = response.migration
    return created
