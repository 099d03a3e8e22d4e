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
from shared.destinations import DestinationNotAllowed, DestinationPolicy, DestinationUnreachable

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
    try:
        addresses = await policy.addresses(destination)
    except DestinationNotAllowed as exc:
        log.warning("destination %s refused by policy: %s", destination.describe(), exc)
        raise
    except DestinationUnreachable as exc:
        log.warning("destination %s unreachable: %s", destination.describe(), exc)
        raise DestinationUnreachable("the database cannot be reached") from None
    if destination.connect_timeout is not None:
        timeout = min(timeout, destination.connect_timeout)
    failures: list[str] = []
    for address in addresses:
        for context in policy.ssl_attempts(destination):
            try:
                return await _login(str(address), destination, context, timeout, session)
            except MySQLError as exc:
                failures.append(f"{address}: {type(exc).__name__}: {exc}")
                if exc.args and exc.args[0] in _ACCESS_DENIED:
                    break
            except (ConnectionRefusedError, TimeoutError) as exc:
                failures.append(f"{address}: {type(exc).__name__}: {exc}")
                break
            except (OSError, ValueError, ssl.SSLError) as exc:
                failures.append(f"{address}: {type(exc).__name__}: {exc}")
    log.warning("cannot connect to destination %s: %s", destination.describe(), "; ".join(failures))
    raise DestinationUnreachable("the database cannot be reached")


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
