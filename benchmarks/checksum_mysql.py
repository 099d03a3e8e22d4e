"""CHECKSUM MariaDB → PostgreSQL against reladiff (`checksum-mysql` scenario).

The source is `orders` on a MariaDB/MySQL server (`SENSEI_BENCH_MYSQL_URL`, default
``mysql://root@127.0.0.1:3306``), generated in the server with the same values as the
PostgreSQL `checksum` scenario's source, in MySQL's types (bigint, int, decimal(12,2), text,
timestamp(6)); the target is PostgreSQL `orders` with the same planted differences
(`seeding.create_checksum_databases`, same seed). Both tools compare the MySQL source with
the PostgreSQL target (reladiff reads ``mysql://``) and must find exactly the planted keys.
No server reachable: the scenario is skipped with a note.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from dataclasses import replace
from typing import Any

import asyncmy
import asyncpg
from asyncmy.errors import MySQLError

from benchmarks import seeding
from benchmarks.bench import Bench
from benchmarks.checksum_runs import Sides, versus_reladiff
from devstack.mysql_sample import SampleServer

DEFAULT_URL = "mysql://root@127.0.0.1:3306"
URL_SETTING = "SENSEI_BENCH_MYSQL_URL"
_CHUNK = 100_000  # rows per INSERT … SELECT (five digit tables: 10^5 combinations)

_ORDERS = (
    "CREATE TABLE orders (id bigint NOT NULL PRIMARY KEY, customer_id int NOT NULL,"
    " amount decimal(12,2) NOT NULL, status text NOT NULL,"
    " created_at timestamp(6) NOT NULL DEFAULT '2000-01-01 00:00:00', note text)"
)
# seeding.create_checksum_databases' generate_series, in MySQL: the same value of each column.
_ROWS = (
    "INSERT INTO orders SELECT g, g % 9973, ROUND((g % 100000) / 7, 2),"
    " ELT(1 + g % 4, 'new', 'paid', 'shipped', 'returned'),"
    " TIMESTAMP('2024-01-01 00:00:00') + INTERVAL g SECOND,"
    " IF(g % 5 = 0, NULL, MD5(g))"
    " FROM (SELECT {start} + 1 + a.d + 10 * b.d + 100 * c.d + 1000 * e.d + 10000 * f.d AS g"
    " FROM digits a, digits b, digits c, digits e, digits f) AS numbered WHERE g <= {rows}"
)


def server() -> SampleServer:
    """The MariaDB/MySQL server of the run (its database part unused)."""
    return SampleServer.from_url(os.environ.get(URL_SETTING) or DEFAULT_URL)


def destinations() -> list[str]:
    """What the stack's destination policy must allow for this scenario."""
    return [server().destination]


async def _connect(where: SampleServer, database: str | None = None) -> Any:
    connection = await asyncmy.connect(
        host=where.host,
        port=where.port,
        user=where.user,
        password=where.password,
        database=database,
        charset="utf8mb4",
        autocommit=True,
        connect_timeout=5,
    )
    async with connection.cursor() as cursor:
        await cursor.execute("SET time_zone = '+00:00'")
        await cursor.execute("SET SESSION div_precision_increment = 30")
    return connection


async def create_mysql_source(where: SampleServer, database: str, rows: int) -> None:
    """`database`.orders with `rows` rows, the values of the PostgreSQL source."""
    connection = await _connect(where)
    try:
        async with connection.cursor() as cursor:
            await cursor.execute(f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4")
            await cursor.execute(f"USE `{database}`")
            await cursor.execute(_ORDERS)
            await cursor.execute("CREATE TABLE digits (d int PRIMARY KEY)")
            await cursor.execute(
                "INSERT INTO digits VALUES " + ",".join(f"({d})" for d in range(10))
            )
            for start in range(0, rows, _CHUNK):
                await cursor.execute(_ROWS.format(start=start, rows=rows))
            await cursor.execute("DROP TABLE digits")
            await cursor.execute("ANALYZE TABLE orders")
            await cursor.fetchall()
    finally:
        connection.close()


async def _drop_mysql(where: SampleServer, database: str) -> None:
    connection = await _connect(where)
    try:
        async with connection.cursor() as cursor:
            await cursor.execute(f"DROP DATABASE IF EXISTS `{database}`")
    finally:
        connection.close()


async def checksum_mysql(bench: Bench) -> None:
    """CHECKSUM of MariaDB `orders` against PostgreSQL vs reladiff on the same two tables."""
    where = server()
    try:
        (await _connect(where)).close()
    except (OSError, TimeoutError, MySQLError) as exc:
        bench.notes.append(
            f"checksum-mysql SKIPPED: no MariaDB/MySQL at {where.destination} ({exc});"
            f" set {URL_SETTING}=mysql://user:password@host:port"
        )
        return
    options = bench.options
    rows = options.checksum_rows
    database = f"sensei_bench_{uuid.uuid4().hex[:8]}"
    print(f"  creating MariaDB {database}.orders and a PostgreSQL target, {rows:,} rows…")
    admin = await asyncpg.connect(bench.stack.dsn("postgres"))
    try:
        _, target, differing = await seeding.create_checksum_databases(
            admin, bench.stack.dsn, rows, options.checksum_changes, prefix="bench_my"
        )
        # Only the target is compared; the PostgreSQL source was its template.
        await admin.execute("DROP DATABASE bench_my_src WITH (FORCE)")
    finally:
        await admin.close()
    try:
        await create_mysql_source(where, database, rows)
        source_url = replace(where, database=database).url
        version = await _version(where)
        sides = Sides(
            label=f"{version} → PostgreSQL, {rows:,} rows",
            source_url=source_url,
            target_url=target,
            source_config={"dsn": source_url},
            target_config={"dsn": target, "sslmode": "disable"},
            rows=rows,
            differing=frozenset(differing),
        )
        await versus_reladiff(bench, "table checksum across engines", sides)
    finally:
        with contextlib.suppress(OSError, MySQLError):
            await _drop_mysql(where, database)
        admin = await asyncpg.connect(bench.stack.dsn("postgres"))
        try:
            await admin.execute("DROP DATABASE IF EXISTS bench_my_tgt WITH (FORCE)")
        finally:
            await admin.close()


async def _version(where: SampleServer) -> str:
    connection = await _connect(where)
    try:
        async with connection.cursor() as cursor:
            await cursor.execute("SELECT VERSION()")
            (text,) = await cursor.fetchone()
    finally:
        connection.close()
    name = "MariaDB" if "mariadb" in str(text).lower() else "MySQL"
    return f"{name} {str(text).split('-')[0]}"
