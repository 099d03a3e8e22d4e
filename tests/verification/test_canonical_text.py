"""The canonical text CHECKSUM will hash across engines: MariaDB and PostgreSQL render equal
values equally (services/verification/canonical_text.py), on real servers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import asyncpg
import pytest

from services.verification import canonical_text
from tests.mysql_server import MySQLServer

FLOATS = ["1.1", "0.30000000000000004", "1e20", "1.5e-7", "123456789012345678", "1e15", "-0.0"]
JSON = [
    '{"b": [1, 2.50, "x", 100], "a": {"c": null, "aa": true, "B": "é😀"}}',
    "[1e20, -0, 0.1, 12345678901234567890, 1.5e-7, -3.25]",
    '{"q": "a\\"b\\\\c\\nd"}',
    "[]",
]


async def _both(
    mysql_server: MySQLServer, dsn: str, mysql_sql: str, postgres_sql: str, value: str
) -> tuple[str, str]:
    my = await mysql_server.connect()
    pg = await asyncpg.connect(dsn)
    try:
        async with my.cursor() as cursor:
            await cursor.execute(f"SELECT {mysql_sql}", (value,))
            mine = (await cursor.fetchone())[0]
        await pg.execute("SET extra_float_digits = 1")
        theirs = await pg.fetchval(f"SELECT {postgres_sql}", value)
    finally:
        my.close()
        await pg.close()
    return mine, theirs


@pytest.mark.parametrize("value", FLOATS)
async def test_doubles_print_alike(
    mysql_server: MySQLServer, make_sample_database: Callable[[], Awaitable[str]], value: str
) -> None:
    mine, theirs = await _both(
        mysql_server,
        await make_sample_database(),
        canonical_text.mysql_value("x", "double") + " FROM (SELECT CAST(%s AS DOUBLE) AS x) t",
        canonical_text.postgres_value("x", "double", "double precision")
        + " FROM (SELECT $1::text::float8 AS x) t",
        value,
    )
    assert mine == theirs


@pytest.mark.parametrize("value", JSON)
async def test_json_prints_alike(
    mysql_server: MySQLServer, make_sample_database: Callable[[], Awaitable[str]], value: str
) -> None:
    mine, theirs = await _both(
        mysql_server,
        await make_sample_database(),
        canonical_text.mysql_value("x", "json") + " FROM (SELECT %s AS x) t",
        canonical_text.postgres_value("x", "json", "jsonb") + " FROM (SELECT $1::text AS x) t",
        value,
    )
    assert mine == theirs
