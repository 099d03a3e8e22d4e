"""The dev stack's sample MySQL database (devstack/mysql_sample.py) on the suite's MariaDB."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from devstack.mysql_sample import (
    ALLOWED_SETTING,
    SampleServer,
    allowing,
    prepare_sample_mysql,
    shop_rows,
)
from tests.mysql_server import MySQLServer


async def test_the_sample_database_is_made_once_with_the_shops_rows(
    mysql_server: MySQLServer, make_mysql_database: Callable[[], Awaitable[str]]
) -> None:
    database = await make_mysql_database()
    sample = SampleServer.from_url(mysql_server.url(database))
    assert await prepare_sample_mysql(sample)
    assert await prepare_sample_mysql(sample)  # a restart of `make run` finds it made

    connection = await mysql_server.connect(database)
    try:
        async with connection.cursor() as cursor:
            await cursor.execute("SELECT (SELECT COUNT(*) FROM customers), COUNT(*) FROM orders")
            counts = await cursor.fetchone()
    finally:
        connection.close()
    customers, orders = shop_rows()
    assert tuple(counts) == (len(customers), len(orders))


async def test_no_server_means_no_sample() -> None:
    # Port 1 on loopback: nothing listens there.
    assert not await prepare_sample_mysql(SampleServer.from_url("mysql://root@127.0.0.1:1"))


def test_a_sample_server_elsewhere_is_added_to_the_allowed_destinations() -> None:
    env = {ALLOWED_SETTING: "10.0.0.0/8"}
    url = "mysql://root@db.lab.test:3307/sample_source_mysql"

    assert allowing(env, url)[ALLOWED_SETTING] == "10.0.0.0/8,db.lab.test:3307"
    assert allowing(allowing(env, url), url)[ALLOWED_SETTING] == "10.0.0.0/8,db.lab.test:3307"
    assert allowing(env, None) == env
