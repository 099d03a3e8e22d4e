"""PostgreSQL LISTEN/NOTIFY for this process: verification changes and job wake-ups.

One dedicated connection listens (a pooled one would lose its LISTEN when released). Watchers
subscribe to one verification and receive every change as it commits, in commit order, from
whichever replica made it; idle workers are woken when a job is queued. If the connection is
lost, it is re-established and every subscriber gets a `RESYNC` marker: changes may have been
missed meanwhile, so it must re-read the current state.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any, Final

from services.verification.store import CHANGES_CHANNEL, JOBS_CHANNEL
from shared.listen import Listener

log = logging.getLogger(__name__)


class _Resync:
    """Marker: notifications may have been lost; re-read the current state."""


RESYNC: Final = _Resync()

Change = dict[str, Any] | _Resync


class Subscription:
    """The changes of one verification, in commit order."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[Change] = asyncio.Queue()

    def put(self, change: Change) -> None:
        """Delivers a change (from the listener)."""
        self._queue.put_nowait(change)

    async def next(self) -> Change:
        """The next change (the row as JSON, without its result) or RESYNC."""
        return await self._queue.get()


class ChangeFeed:
    """The process's listening connection and its subscribers."""

    def __init__(self, dsn: str, *, max_backoff_seconds: float = 5.0) -> None:
        self._subscribers: dict[str, set[Subscription]] = {}
        self._job_waiters: set[asyncio.Event] = set()
        self._listener = Listener(
            dsn,
            {CHANGES_CHANNEL: self._on_change, JOBS_CHANNEL: self._on_job},
            on_reconnect=self._resync,
            application_name="sensei-verification-feed",
            max_backoff_seconds=max_backoff_seconds,
        )
        self._supervisor: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Connects and starts listening; reconnects in the background when the link drops."""
        await self._listener.connect()
        self._supervisor = asyncio.create_task(self._listener.run(), name="verification-feed")

    async def close(self) -> None:
        """Stops listening."""
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        await self._listener.close()

    @contextlib.asynccontextmanager
    async def subscribe(self, verification_id: str) -> AsyncIterator[Subscription]:
        """Changes of one verification from now on, until the block exits."""
        subscription = Subscription()
        self._subscribers.setdefault(verification_id, set()).add(subscription)
        try:
            yield subscription
        finally:
            subscribers = self._subscribers.get(verification_id)
            if subscribers is not None:
                subscribers.discard(subscription)
                if not subscribers:
                    del self._subscribers[verification_id]

    def job_signal(self) -> asyncio.Event:
        """An event set whenever a job is queued (the holder clears it before looking)."""
        event = asyncio.Event()
        self._job_waiters.add(event)
        return event

    def _resync(self) -> None:
        # Reconnected: changes and job wake-ups may have been missed meanwhile.
        for subscribers in self._subscribers.values():
            for subscription in subscribers:
                subscription.put(RESYNC)
        self._wake_workers()

    def _on_change(self, payload: str) -> None:
        try:
            change = json.loads(payload)
            verification_id = str(change["id"])
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring a malformed verification change notification")
            return
        for subscription in self._subscribers.get(verification_id, ()):
            subscription.put(change)

    def _on_job(self, _payload: str) -> None:
        self._wake_workers()

    def _wake_workers(self) -> None:
        for event in self._job_waiters:
            event.set()
