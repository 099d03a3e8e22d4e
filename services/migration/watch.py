"""Fan-out of committed migration changes to WatchMigration streams, across replicas.

Every write of a migration logs the new version in `migration_changes` and sends a NOTIFY
(store/migrations.py) in its transaction, so PostgreSQL delivers it on commit, in commit order, to
every replica. `ChangeHub` keeps one LISTEN connection per process and wakes the watchers
of the migration named in the notification; each watcher then reads the logged versions
after the last one it sent. Notifications are only wake-up calls, so a coalesced, late or
lost one (the listener reconnecting) costs latency, never a change: after a reconnect every
watcher re-reads, and watchers also re-read every `SAFETY_POLL_SECONDS`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Iterator
from datetime import timedelta

import asyncpg

from services.migration import store
from shared.db import DATABASE_ERRORS
from shared.listen import Listener

log = logging.getLogger(__name__)

SAFETY_POLL_SECONDS = 15.0
LISTENER_APPLICATION_NAME = "sensei-migration-listener"
# How long logged changes are kept for watchers that are catching up.
CHANGE_RETENTION = timedelta(hours=1)
PRUNE_EVERY_SECONDS = 300.0


class ChangeHub:
    """One LISTEN connection shared by all watchers of this process."""

    def __init__(self, dsn: str, channel: str, *, max_backoff_seconds: float = 5.0) -> None:
        self._watchers: dict[str, set[asyncio.Event]] = {}
        self._listener = Listener(
            dsn,
            {channel: self._on_notify},
            on_reconnect=self._wake_all,
            application_name=LISTENER_APPLICATION_NAME,
            max_backoff_seconds=max_backoff_seconds,
        )

    async def start(self) -> None:
        """Opens the listener connection (at startup: failing stops the service)."""
        await self._listener.connect()

    async def run(self) -> None:
        """Reconnects the listener whenever it is lost, then wakes every watcher to catch up."""
        await self._listener.run()

    @contextlib.contextmanager
    def subscribe(self, migration_id: str) -> Iterator[asyncio.Event]:
        """An event set whenever `migration_id` may have changed, while the block runs.

        Subscribe before reading the migration's current state, so no commit falls between.
        """
        event = asyncio.Event()
        self._watchers.setdefault(migration_id, set()).add(event)
        try:
            yield event
        finally:
            watchers = self._watchers.get(migration_id)
            if watchers is not None:
                watchers.discard(event)
                if not watchers:
                    del self._watchers[migration_id]

    @property
    def watcher_count(self) -> int:
        """How many watchers are subscribed (all migrations)."""
        return sum(len(events) for events in self._watchers.values())

    async def close(self) -> None:
        """Closes the listener connection."""
        await self._listener.close()

    def _on_notify(self, payload: str) -> None:
        try:
            migration_id = json.loads(payload)["migration_id"]
        except (ValueError, KeyError, TypeError):
            log.warning("change listener: ignoring malformed notification %r", payload)
            return
        for event in self._watchers.get(migration_id, ()):
            event.set()

    def _wake_all(self) -> None:
        for events in self._watchers.values():
            for event in events:
                event.set()


async def prune_changes_forever(pool: asyncpg.Pool) -> None:
    """Drops logged changes older than CHANGE_RETENTION, every PRUNE_EVERY_SECONDS."""
    while True:
        try:
            async with pool.acquire() as conn:
                now = await store.transaction_time(conn)
                await store.prune_changes(conn, now - CHANGE_RETENTION)
        except DATABASE_ERRORS as exc:
            log.warning("pruning migration changes failed: %s", exc)
        await asyncio.sleep(PRUNE_EVERY_SECONDS)
