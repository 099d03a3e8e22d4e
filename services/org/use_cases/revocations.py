"""Token freshness at the source: the org service's own check, and its revocation feed.

The org service decides from its database whether a token still counts
(`DatabaseFreshness`, on every call of its own RPCs), and publishes the revocation log
that the other services follow (`RevocationFeed`, behind
`AuthService.WatchTokenRevocations`). See docs/architecture.md#token-freshness.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

from services.org import store
from shared import names
from shared.errors import InvalidArgument
from shared.listen import Listener, wait_woken
from shared.principals import Principal
from shared.revocations import Revocation, TokenRevoked

log = logging.getLogger(__name__)

DEFAULT_HEARTBEAT_SECONDS = 1.0
_BATCH = 500
# Tokens are accepted this long past their expiry (verifier leeway), plus a margin.
_EXPIRY_SLACK = timedelta(minutes=5)


class DatabaseFreshness:
    """The org service's `TokenFreshness`: the token's API key, read from the database.

    A key goes with its user, service account, operator and organization (ON DELETE
    CASCADE), so one primary-key read tells whether any of them was deleted, whether the
    key was revoked, and the user's current role.
    """

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def check(self, principal: Principal, *, write: bool) -> None:
        """TOKEN_REVOKED unless the token's key, principal and role are as when issued."""
        key_id = principal.api_key_id
        if key_id is None or not names.is_uuid(key_id):
            raise TokenRevoked("it names no API key")
        async with self._pool.acquire() as conn:
            standing = await store.token_standing(conn, key_id)
        if standing is None:
            raise TokenRevoked("its API key, principal or organization was deleted")
        if standing.revoked:
            raise TokenRevoked("its API key was revoked")
        if standing.user_role is not None and standing.user_role != principal.role:
            raise TokenRevoked(f"the role changed to {standing.user_role}")


@dataclass(frozen=True)
class RevocationBatch:
    """One message of the feed: entries after the previous one, and the position reached."""

    revocations: list[Revocation]
    sequence: int
    caught_up: bool
    sent_at: datetime


class RevocationFeed:
    """Serves the revocation log: replay after a sequence, then each entry as it commits.

    One LISTEN connection per process wakes every open stream when the log grows; each
    stream also looks at least every heartbeat, so a lost notification delays an entry
    by one heartbeat at most.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        database_url: str,
        token_ttl: timedelta,
        *,
        heartbeat_seconds: float = DEFAULT_HEARTBEAT_SECONDS,
    ) -> None:
        self._pool = pool
        self._database_url = database_url
        self._relevance = token_ttl + _EXPIRY_SLACK
        self.heartbeat_seconds = heartbeat_seconds
        self._listeners: set[asyncio.Event] = set()

    async def batches(self, after: int) -> AsyncIterator[RevocationBatch]:
        """The feed after sequence `after`, until the caller stops reading."""
        if after < 0:
            raise InvalidArgument.single("after_sequence", "must not be negative")
        wake = asyncio.Event()
        self._listeners.add(wake)
        try:
            async with self._pool.acquire() as conn:
                if after > await store.last_revocation(conn):
                    after = 0  # a follower from before this log was reset: replay it all
            sequence = after
            while True:
                wake.clear()
                since = datetime.now(UTC) - self._relevance
                async with self._pool.acquire() as conn:
                    entries = await store.revocations_after(
                        conn, sequence, still_matter_since=since, limit=_BATCH
                    )
                if entries:
                    sequence = entries[-1].sequence
                caught_up = len(entries) < _BATCH
                yield RevocationBatch(entries, sequence, caught_up, datetime.now(UTC))
                if caught_up:
                    await wait_woken(wake, self.heartbeat_seconds)
        finally:
            self._listeners.discard(wake)

    async def listen_forever(self) -> None:
        """Wakes the open streams on every NOTIFY of the log; reconnects when it drops."""
        listener = Listener(
            self._database_url,
            {store.REVOCATIONS_CHANNEL: self._wake_all},
            on_reconnect=self._wake_all,  # anything committed while we were not listening
            application_name="sensei-org-revocations",
        )
        await listener.run()

    def _wake_all(self, *_: object) -> None:
        for wake in self._listeners:
            wake.set()
