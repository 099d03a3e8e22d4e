"""Connections to callers' MySQL and MariaDB databases, under the destination policy.

`DestinationPolicy` (shared/destinations.py) resolves and checks the address exactly as for
PostgreSQL; this module logs in there with asyncmy, with the same TLS attempts, and never
reads an option file (``my.cnf``) or the environment: a config without a password logs in
with an empty one. Failures are `DestinationUnreachable` with nothing of the server's answer
(docs/destinations.md).
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Sequence
from typing import Any

import asyncmy
from asyncmy.errors import MySQLError

from shared.connection_configs import Destination
from shared.destinations import DestinationPolicy

log = logging.getLogger(__name__)

# What a failing connection attempt or query on a MySQL server can raise.
MYSQL_ERRORS: tuple[type[BaseException], ...] = (OSError, TimeoutError, MySQLError)
# Server errors that mean "this login will not work": trying without TLS will not help.
_ACCESS_DENIED = frozenset({1044, 1045, 1049, 1698})


def quote_mysql_identifier(identifier: str) -> str:
    """A MySQL identifier in backquotes (doubling embedded backquotes)."""
    return "`" + identifier.replace("`", "``") + "`"


async def connect_mysql(
    policy: DestinationPolicy,
    destination: Destination,
    *,
    timeout: float,  # noqa: ASYNC109  # the driver's own connect timeout, per attempt
    session: Sequence[str] = (),
) -> Any:
    """An asyncmy connection to `destination` (autocommit, utf8mb4, UTC), checked by `policy`.

    `session` statements run right after the login (read-only session, statement timeout).
    DestinationNotAllowed or DestinationUnreachable as `DestinationPolicy.connect`.
    """

    async def login(address: str, context: ssl.SSLContext | bool, seconds: float) -> Any:
        return await _login(address, destination, context, seconds, session)

    return await policy.connect_with(
        destination,
        login,
        timeout=timeout,
        errors=(MySQLError, OSError, ValueError, ssl.SSLError),
        # A login refused, or nothing answering: plain text will not do better.
        final=lambda exc: (
            isinstance(exc, (ConnectionRefusedError, TimeoutError))
            or (isinstance(exc, MySQLError) and bool(exc.args) and exc.args[0] in _ACCESS_DENIED)
        ),
    )


async def _login(
    address: str,
    destination: Destination,
    context: ssl.SSLContext | bool,
    timeout: float,  # noqa: ASYNC109
    session: Sequence[str],
) -> Any:
    connection = await asyncmy.connect(
        host=address,
        port=destination.port,
        user=destination.user,
        password=destination.password or "",
        database=destination.database,
        charset="utf8mb4",
        autocommit=True,
        connect_timeout=max(1, int(timeout)),
        ssl=context if isinstance(context, ssl.SSLContext) else None,
        read_default_file=None,
        local_infile=False,
    )
    try:
        async with connection.cursor() as cursor:
            await cursor.execute("SET time_zone = '+00:00'")
            for statement in session:
                await cursor.execute(statement)
    except BaseException:
        connection.close()
        raise
    return connection


async def fetch_all(connection: Any, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Every row of `sql` (``%s`` placeholders) as tuples."""
    async with connection.cursor() as cursor:
        await cursor.execute(sql, tuple(params) if params else None)
        return list(await cursor.fetchall())


async def execute(connection: Any, sql: str, params: Sequence[Any] = ()) -> None:
    """Runs one statement."""
    async with connection.cursor() as cursor:
        await cursor.execute(sql, tuple(params) if params else None)


def is_mysql_connection(connection: Any) -> bool:
    """Whether `connection` is a MySQL one (else it is asyncpg's)."""
    return isinstance(connection, asyncmy.connection.Connection)
