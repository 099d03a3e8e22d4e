"""The MySQL/MariaDB server MySQL tests run against, and fresh databases on it.

`SENSEI_TEST_MYSQL_URL` (``mysql://user:password@host:port``) names it; otherwise
``mysql://root@127.0.0.1:3306`` (the MariaDB these machines and CI run). When it cannot be
reached the MySQL tests skip with one line saying how to enable them, unless
`SENSEI_TEST_MYSQL_REQUIRED=1` (set by `.ci/run`): then they fail.
"""

from __future__ import annotations

import contextlib
import os
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import asyncmy
import pytest

DEFAULT_URL = "mysql://root@127.0.0.1:3306"
SKIP_REASON = (
    "MySQL/MariaDB tests skipped: no server reachable; start MariaDB on 127.0.0.1:3306"
    " (user root, no password) or set SENSEI_TEST_MYSQL_URL=mysql://user:password@host:port"
)


@dataclass(frozen=True)
class MySQLServer:
    """A MySQL/MariaDB server the tests may create databases on."""

    host: str
    port: int
    user: str
    password: str

    @property
    def destination(self) -> str:
        """``host:port`` as SENSEI_ALLOWED_DESTINATIONS spells an entry."""
        return f"{self.host}:{self.port}"

    def url(self, database: str) -> str:
        """A ``mysql://`` URL of `database` on this server."""
        auth = quote(self.user, safe="")
        if self.password:
            auth += ":" + quote(self.password, safe="")
        return f"mysql://{auth}@{self.host}:{self.port}/{database}"

    def config(self, database: str) -> dict[str, object]:
        """A migration connection config (separate keys) for `database`."""
        config: dict[str, object] = {
            "engine": "mysql",
            "host": self.host,
            "port": self.port,
            "database": database,
            "user": self.user,
        }
        if self.password:
            config["password"] = self.password
        return config

    async def connect(self, database: str | None = None) -> Any:
        """An autocommit asyncmy connection (utf8mb4, UTC)."""
        connection = await asyncmy.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            database=database,
            charset="utf8mb4",
            autocommit=True,
            connect_timeout=5,
        )
        async with connection.cursor() as cursor:
            await cursor.execute("SET time_zone = '+00:00'")
        return connection

    @contextlib.asynccontextmanager
    async def database_factory(self, run_id: str) -> AsyncIterator[Callable[[], Awaitable[str]]]:
        """Creates fresh databases (returns their names); drops them after."""
        created: list[str] = []
        admin = await self.connect()

        async def create() -> str:
            name = f"sensei_t_{run_id}_{uuid.uuid4().hex[:12]}"
            async with admin.cursor() as cursor:
                await cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
            created.append(name)
            return name

        try:
            yield create
        finally:
            async with admin.cursor() as cursor:
                for name in created:
                    await cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
            admin.close()


async def run_mysql(server: MySQLServer, database: str, sql: str) -> None:
    """Runs `;`-separated statements on `database` (no `;` inside literals)."""
    connection = await server.connect(database)
    try:
        async with connection.cursor() as cursor:
            for statement in (s.strip() for s in sql.split(";\n")):
                if statement:
                    await cursor.execute(statement)
    finally:
        connection.close()


def mysql_server_or_skip() -> MySQLServer:
    """The configured server once its port answered; skips (or fails when required) otherwise.

    Synchronous, so fixtures of any kind (sample_env inside async ones) can ask for it.
    """
    parts = urlsplit(os.environ.get("SENSEI_TEST_MYSQL_URL") or DEFAULT_URL)
    server = MySQLServer(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 3306,
        user=unquote(parts.username or "root"),
        password=unquote(parts.password or ""),
    )
    try:
        with socket.create_connection((server.host, server.port), timeout=3) as probe:
            if not probe.recv(1):  # a MySQL server greets first
                raise OSError("closed without a greeting")
    except OSError as exc:
        if os.environ.get("SENSEI_TEST_MYSQL_REQUIRED") == "1":
            pytest.fail(f"SENSEI_TEST_MYSQL_REQUIRED=1 but {server.destination}: {exc}")
        pytest.skip(SKIP_REASON)
    return server
