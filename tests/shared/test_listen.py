"""The shared LISTEN follower: notifications arrive, and a lost connection comes back."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import pytest

from shared.listen import Listener, wait_woken

WAIT = 10.0  # seconds a test waits for an event before failing; never a timing assertion


class Follower:
    """A listener on channels `a` and `b` that queues what it is told."""

    def __init__(self, dsn: str, **options: float) -> None:
        self.application_name = f"sensei-test-listener-{uuid.uuid4().hex[:8]}"
        self.received: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self.reconnected = asyncio.Event()
        self.listener = Listener(
            dsn,
            {
                "a": lambda payload: self.received.put_nowait(("a", payload)),
                "b": lambda payload: self.received.put_nowait(("b", payload)),
            },
            on_reconnect=self.reconnected.set,
            application_name=self.application_name,
            **options,
        )

    async def next(self) -> tuple[str, str]:
        return await asyncio.wait_for(self.received.get(), WAIT)


@contextlib.asynccontextmanager
async def _running(listener: Listener) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(listener.run())
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _notify(dsn: str, channel: str, payload: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SELECT pg_notify($1, $2)", channel, payload)
    finally:
        await conn.close()


async def _terminate(dsn: str, application_name: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        killed: int = await conn.fetchval(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = $1) AS t",
            application_name,
        )
        return killed
    finally:
        await conn.close()


@pytest.fixture
async def dsn(make_database: Callable[[], Awaitable[str]]) -> str:
    return await make_database()


async def test_notifications_on_each_channel_reach_its_handler(dsn: str) -> None:
    follower = Follower(dsn)
    await follower.listener.connect()
    async with _running(follower.listener):
        await _notify(dsn, "a", "first")
        await _notify(dsn, "b", "second")
        assert await follower.next() == ("a", "first")
        assert await follower.next() == ("b", "second")
    assert not follower.reconnected.is_set()  # the first connection was not a reconnect
    assert not follower.listener.connected


async def test_a_terminated_connection_reconnects_and_tells_the_caller_to_catch_up(
    dsn: str,
) -> None:
    follower = Follower(dsn)
    await follower.listener.connect()
    async with _running(follower.listener):
        assert await _terminate(dsn, follower.application_name) == 1
        await asyncio.wait_for(follower.reconnected.wait(), WAIT)
        assert follower.listener.connected
        await _notify(dsn, "a", "after")
        assert await follower.next() == ("a", "after")


async def test_run_connects_by_itself_and_counts_that_as_a_catch_up(dsn: str) -> None:
    follower = Follower(dsn)
    async with _running(follower.listener):
        await asyncio.wait_for(follower.reconnected.wait(), WAIT)
        await _notify(dsn, "b", "hello")
        assert await follower.next() == ("b", "hello")


class _Retries(logging.Handler):
    """Sets `seen` once the listener logged `wanted` failed attempts."""

    def __init__(self, wanted: int) -> None:
        super().__init__(logging.WARNING)
        self.wanted = wanted
        self.count = 0
        self.seen = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if "retrying" in record.getMessage():
            self.count += 1
            if self.count >= self.wanted:
                self.seen.set()


async def test_an_unreachable_database_is_retried_with_backoff() -> None:
    # A port nothing listens on: connect() fails, run() keeps trying instead of failing.
    follower = Follower(
        "postgresql://sensei@127.0.0.1:1/none", min_backoff_seconds=0.01, max_backoff_seconds=0.02
    )
    with pytest.raises(OSError):
        await follower.listener.connect()
    retries = _Retries(wanted=3)
    logger = logging.getLogger("shared.listen")
    logger.addHandler(retries)
    try:
        async with _running(follower.listener) as task:
            await asyncio.wait_for(retries.seen.wait(), WAIT)
            assert not task.done()
    finally:
        logger.removeHandler(retries)
    assert not follower.reconnected.is_set()


async def test_a_wake_up_at_the_moment_of_cancellation_does_not_swallow_it() -> None:
    # asyncio.wait_for (Python 3.11) would return here, and a stopping loop would go on.
    event = asyncio.Event()
    task = asyncio.create_task(wait_woken(event, WAIT))
    await asyncio.sleep(0)  # let it start waiting
    event.set()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_waiting_tells_a_wake_up_from_a_timeout() -> None:
    event = asyncio.Event()
    assert not await wait_woken(event, 0.001)
    event.set()
    assert await wait_woken(event, WAIT)
