"""The dev stack's sample MariaDB/MySQL database, when a server is reachable.

`make run` looks for a server at `SENSEI_SAMPLE_MYSQL_URL` (``mysql://user:password@host:port``,
optionally ``/database``) or, without it, ``mysql://root@127.0.0.1:3306`` (the MariaDB these
machines run). When one answers, it creates `sample_source_mysql` (or the URL's database) with
the same small shop as the PostgreSQL `sample_source`: the same tables in MySQL's types (the
type map of docs/schema-definition.md translates them faithfully) and the same rows. So a
migration MySQL → PostgreSQL from it into `sample_source` passes SCHEMA_PARITY, ROW_COUNT and
CHECKSUM (README's "grpcurl walk-through", MySQL variant). No server: nothing happens.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import quote, unquote, urlsplit

import asyncmy
from asyncmy.errors import MySQLError

from shared.mysql import quote_mysql_identifier

DEFAULT_SERVER_URL = "mysql://root@127.0.0.1:3306"
SAMPLE_DATABASE = "sample_source_mysql"
URL_SETTING = "SENSEI_SAMPLE_MYSQL_URL"
ALLOWED_SETTING = "SENSEI_ALLOWED_DESTINATIONS"

# devstack/__main__.py's SAMPLE_SHOP in MySQL's types (varchar(255) for text: a unique key
# needs a bounded length; the type map accepts text for it). The foreign key is named so the
# index InnoDB makes for it carries its name (the diff needs no twin for such an index).
SHOP_TABLES = (
    "CREATE TABLE IF NOT EXISTS customers ("
    " id bigint NOT NULL PRIMARY KEY, email varchar(255) NOT NULL UNIQUE)",
    "CREATE TABLE IF NOT EXISTS orders ("
    " id bigint NOT NULL PRIMARY KEY, customer_id bigint NOT NULL, total decimal(10,2) NOT NULL,"
    " CONSTRAINT orders_customer_id_fkey FOREIGN KEY (customer_id) REFERENCES customers (id))",
)


@dataclass(frozen=True)
class SampleServer:
    """Where the sample MySQL database lives."""

    host: str
    port: int
    user: str
    password: str
    database: str

    @classmethod
    def from_url(cls, url: str) -> SampleServer:
        """``mysql://user:password@host:port[/database]`` (database: `SAMPLE_DATABASE`)."""
        parts = urlsplit(url)
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 3306,
            user=unquote(parts.username or "root"),
            password=unquote(parts.password or ""),
            database=unquote(parts.path.lstrip("/")) or SAMPLE_DATABASE,
        )

    @property
    def url(self) -> str:
        """The ``mysql://`` URL of the sample database (what migrations name as a source)."""
        auth = quote(self.user, safe="")
        if self.password:
            auth += ":" + quote(self.password, safe="")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"mysql://{auth}@{host}:{self.port}/{quote(self.database, safe='')}"

    @property
    def destination(self) -> str:
        """``host:port`` as SENSEI_ALLOWED_DESTINATIONS spells an entry."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def shop_rows() -> tuple[list[tuple[int, str]], list[tuple[int, int, Decimal]]]:
    """The rows of devstack/__main__.py's SAMPLE_ROWS: 200 customers, 5,000 orders."""
    customers = [(i, f"c{i}@shop.test") for i in range(1, 201)]
    orders = [(i, 1 + i % 200, (i % 97) * Decimal("1.25")) for i in range(1, 5001)]
    return customers, orders


async def prepare_sample_mysql(server: SampleServer, timeout: float = 3.0) -> bool:  # noqa: ASYNC109
    """Creates the sample database, its tables and rows (idempotent); False if unreachable."""
    try:
        connection = await asyncmy.connect(
            host=server.host,
            port=server.port,
            user=server.user,
            password=server.password,
            charset="utf8mb4",
            autocommit=True,
            connect_timeout=max(1, int(timeout)),
        )
    except (OSError, TimeoutError, MySQLError):
        return False
    customers, orders = shop_rows()
    try:
        async with connection.cursor() as cursor:
            name = quote_mysql_identifier(server.database)
            await cursor.execute(f"CREATE DATABASE IF NOT EXISTS {name} CHARACTER SET utf8mb4")
            await cursor.execute(f"USE {name}")
            for statement in SHOP_TABLES:
                await cursor.execute(statement)
            await cursor.executemany("INSERT IGNORE INTO customers VALUES (%s, %s)", customers)
            await cursor.executemany("INSERT IGNORE INTO orders VALUES (%s, %s, %s)", orders)
    finally:
        with contextlib.suppress(Exception):
            connection.close()
    return True


async def sample_mysql_env(env: Mapping[str, str]) -> dict[str, str]:
    """`{SENSEI_SAMPLE_MYSQL_URL: …}` once the sample database is ready; {} without a server."""
    server = SampleServer.from_url(env.get(URL_SETTING) or DEFAULT_SERVER_URL)
    if not await prepare_sample_mysql(server):
        return {}
    return {URL_SETTING: server.url}


def allowing(env: Mapping[str, str], mysql_url: str | None) -> dict[str, str]:
    """`env` whose destination policy also allows the sample MySQL server.

    The dev stack allows loopback (`SENSEI_ENV=dev`), which covers the default server; a
    `SENSEI_SAMPLE_MYSQL_URL` elsewhere is added to SENSEI_ALLOWED_DESTINATIONS.
    """
    allowed = dict(env)
    if mysql_url:
        entry = SampleServer.from_url(mysql_url).destination
        entries = [e for e in allowed.get(ALLOWED_SETTING, "").split(",") if e.strip()]
        if entry not in entries:
            allowed[ALLOWED_SETTING] = ",".join([*entries, entry])
    return allowed
