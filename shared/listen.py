"""A PostgreSQL connection of its own that LISTENs on channels and stays connected.

A pooled connection would lose its LISTEN when released, so a `Listener` holds a dedicated
one and calls a handler with the payload of every notification on its channels. When the
connection is lost (server restart, `pg_terminate_backend`, network) it reconnects at once
and then with exponential backoff and jitter, LISTENs again and calls `on_reconnect`:
notifications sent meanwhile are gone, so the caller catches up by reading the state again.
Notifications are wake-up calls; whoever relies on them must also poll or catch up.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Mapping

import asyncpg

from shared.db import DATABASE_ERRORS

log = logging.getLogger(__name__)

# Called with the payload of one notification ("" when it has none).
Handler = Callable[[str], None]


class Listener:
    """One dedicated connection LISTENing on `handlers`' channels."""

    def __init__(
        self,
        dsn: str,
        handlers: Mapping[str, Handler],
        *,
        on_reconnect: Callable[[], None] | None = None,
        application_name: str = "sensei-listener",
        min_backoff_seconds: float = 0.05,
        max_backoff_seconds: float = 5.0,
        connect_timeout_seconds: float = 10.0,
    ) -> None:
        self._dsn = dsn
        self._handlers = dict(handlers)
        self._on_reconnect = on_reconnect
        self._application_name = application_name
        self._min_backoff = min_backoff_seconds
        self._max_backoff = max_backoff_seconds
        self._connect_timeout = connect_timeout_seconds
        self._conn: asyncpg.Connection | None = None
        self._lost = asyncio.Event()

    @property
    def connected(self) -> bool:
        """Whether the connection is open and listening."""
        return self._conn is not None and not self._conn.is_closed()

    async def connect(self) -> None:
        """Opens the connection and listens now; raises when the database cannot be reached.

        For start-up, where a database that is not there should stop the service.
        """
        await self._connect()

    async def run(self) -> None:
        """Keeps listening until cancelled, then closes the connection.

        Connects if not connected; whenever the connection is lost, connects again, retrying
        failed attempts with backoff. Calls `on_reconnect` after every connection it opens.
        """
        try:
            while True:
                if not self.connected:
                    await self._connect_with_backoff()
                    if self._on_reconnect is not None:
                        self._on_reconnect()
                await self._lost.wait()
                self._lost.clear()
                log.warning("listener %s: connection lost, reconnecting", self._application_name)
        finally:
            await self.close()

    async def close(self) -> None:
        """Stops listening and closes the connection."""
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            try:
                await conn.close(timeout=2)
            except DATABASE_ERRORS:  # TimeoutError is one
                conn.terminate()

    async def _connect_with_backoff(self) -> None:
        backoff = self._min_backoff
        while True:
            try:
                await self._connect()
                return
            except DATABASE_ERRORS as exc:
                delay = random.uniform(backoff / 2, backoff)  # jitter: replicas spread out
                log.warning(
                    "listener %s: connecting failed (%s: %s), retrying in %.2fs",
                    self._application_name,
                    type(exc).__name__,
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)
                backoff = min(backoff * 2, self._max_backoff)

    async def _connect(self) -> None:
        await self.close()
        conn: asyncpg.Connection = await asyncpg.connect(
            self._dsn,
            timeout=self._connect_timeout,
            server_settings={"application_name": self._application_name},
        )
        try:
            for channel, handler in self._handlers.items():
                await conn.add_listener(channel, _dispatch(channel, handler))
        except BaseException:
            conn.terminate()
            raise
        conn.add_termination_listener(self._on_terminated)
        self._conn = conn
        self._lost.clear()
        if conn.is_closed():  # lost before the termination listener was in place
            self._lost.set()

    def _on_terminated(self, conn: object) -> None:
        if conn is self._conn:  # not one closed on purpose
            self._lost.set()


async def wait_woken(event: asyncio.Event, seconds: float) -> bool:
    """Waits until `event` is set (True) or `seconds` pass (False).

    Not `asyncio.wait_for`: on Python 3.11 it returns when the event is set just as the
    waiting task is cancelled, and the cancellation is lost (a loop being stopped goes on).
    """
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        return False
    return True


def _dispatch(channel: str, handler: Handler) -> Callable[[object, int, str, object], None]:
    def on_notification(_conn: object, _pid: int, _channel: str, payload: object) -> None:
        try:
            handler("" if payload is None else str(payload))
        except Exception:
            log.exception("handler of notifications on %s failed", channel)

    return on_notification
