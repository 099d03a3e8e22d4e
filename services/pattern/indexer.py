"""Keeps the vector index in step with PostgreSQL, and rebuilds it on request.

Writes mark patterns pending and queue deletions, then NOTIFY at commit. The indexer wakes
(or polls every `poll_seconds`), and under a PostgreSQL advisory lock (one indexer at a
time across replicas, so a push and a deletion of the same vector cannot interleave)
writes pending patterns to the index in batches, then performs queued deletions. A
pattern is marked indexed only if the revision written is still its current one; one
changed meanwhile stays pending for the next pass. While the index is down, passes fail
and are retried with exponential backoff: nothing is lost, writes go on, and the indexer
catches up when the index is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import asyncpg

from services.pattern import store
from services.pattern.domain import as_float32
from services.pattern.embedder import Embedder, NothingToEmbed
from services.pattern.index import (
    IndexDimensionMismatch,
    IndexEmbedderMismatch,
    IndexEntry,
    IndexWriteFailed,
    VectorIndex,
)
from services.pattern.store import IndexWork
from shared.db import DATABASE_ERRORS, Connection
from shared.errors import DomainError
from shared.listen import Listener, wait_woken

log = logging.getLogger(__name__)

LOCK_APPLICATION_NAME = "sensei-pattern-indexer-lock"

# What a failed pass may raise besides bugs: the index or the database being unreachable,
# a refused write, or an index of another dimension or embedder (until ReindexPatterns
# resets it).
RETRYABLE_ERRORS: tuple[type[BaseException], ...] = (
    *DATABASE_ERRORS,
    DomainError,
    IndexWriteFailed,
    IndexDimensionMismatch,
    IndexEmbedderMismatch,
)


@dataclass(frozen=True)
class ReindexProgress:
    """Where a rebuild stands."""

    phase: str  # CLEARING, INDEXING or DONE
    total: int
    indexed: int


class Indexer:
    """The background loop that pushes pending patterns and deletions to the index."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        dsn: str,
        index: VectorIndex,
        embedder: Embedder,
        *,
        batch_size: int = 200,
        poll_seconds: float = 5.0,
        min_backoff_seconds: float = 0.1,
        max_backoff_seconds: float = 10.0,
    ) -> None:
        self._pool = pool
        self._dsn = dsn
        self._index = index
        self._embedder = embedder
        self._batch_size = batch_size
        self._poll_seconds = poll_seconds
        self._min_backoff = min_backoff_seconds
        self._max_backoff = max_backoff_seconds
        self._wake = asyncio.Event()

    async def run(self) -> None:
        """Indexes until cancelled."""
        listener = Listener(
            self._dsn,
            {store.INDEX_CHANNEL: lambda _: self._wake.set()},
            on_reconnect=self._wake.set,
            application_name="sensei-pattern-indexer",
            min_backoff_seconds=self._min_backoff,
            max_backoff_seconds=self._max_backoff,
        )
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(listener.run(), name="pattern-indexer-listener")
            await self._index_forever()

    async def _index_forever(self) -> None:
        backoff = self._min_backoff
        while True:
            try:
                await self.catch_up()
            except RETRYABLE_ERRORS as exc:
                log.warning("pattern indexer: pass failed, retrying in %.2fs: %s", backoff, exc)
                await self._sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff)
                continue
            backoff = self._min_backoff
            await self._sleep(self._poll_seconds)

    async def catch_up(self) -> int:
        """One pass: every pending pattern, then every queued deletion. Returns how many
        patterns were indexed (0 as well when another replica holds the lock)."""
        async with self._holding_lock(wait=False) as locked:
            if not locked:
                return 0
            await self._index.ensure_ready()
            indexed = 0
            async with self._pool.acquire() as conn:
                async for written in self._push_pending(conn):
                    indexed += written
                await self._perform_deletions(conn)
            return indexed

    async def rebuild(self) -> AsyncIterator[ReindexProgress]:
        """Empties the index and writes every pattern again, yielding progress.

        Patterns are marked pending first, so a rebuild that stops early (index down, call
        cancelled) leaves the rest to the background loop rather than out of the index.
        """
        async with self._holding_lock(wait=True), self._pool.acquire() as conn:
            async with conn.transaction():
                total = await store.mark_all_pending(conn)
            yield ReindexProgress("CLEARING", total, 0)
            await self._index.reset()
            indexed = 0
            yield ReindexProgress("INDEXING", total, indexed)
            async for written in self._push_pending(conn):
                indexed += written
                yield ReindexProgress("INDEXING", total, indexed)
            await self._perform_deletions(conn)
            yield ReindexProgress("DONE", total, indexed)

    @contextlib.asynccontextmanager
    async def _holding_lock(self, *, wait: bool) -> AsyncIterator[bool]:
        """The indexer's session advisory lock, on a connection of its own: pooled
        connections carry no session state (the pool releases them without a reset), and
        ending this connection's session releases the lock whatever happened meanwhile."""
        lock_conn = await asyncpg.connect(
            self._dsn, server_settings={"application_name": LOCK_APPLICATION_NAME}
        )
        try:
            if wait:
                await store.lock_indexer(lock_conn)
                yield True
            else:
                yield await store.try_lock_indexer(lock_conn)
        finally:
            await _close(lock_conn)

    async def _push_pending(self, conn: Connection) -> AsyncIterator[int]:
        """Writes pending patterns batch by batch; yields how many each batch marked indexed."""
        after = None
        while True:
            work, after = await store.pending_work(conn, after=after, limit=self._batch_size)
            if not work:
                return
            ready, stale = await self._fit_embedder(conn, work)
            await self._index.upsert(
                [
                    IndexEntry(
                        item.embedding_id, item.embedding, item.pattern_type, item.fingerprint
                    )
                    for item in ready
                ]
            )
            async with conn.transaction():
                written = await store.mark_indexed(conn, ready)
                await store.mark_stale(conn, stale)
            yield written

    async def _fit_embedder(
        self, conn: Connection, work: Sequence[IndexWork]
    ) -> tuple[list[IndexWork], list[IndexWork]]:
        """Splits work into what the index takes and what it cannot: vectors of another
        embedder or dimension (the setting changed) are embedded again from their text when
        they have one, and are stale otherwise."""
        ready: list[IndexWork] = []
        stale: list[IndexWork] = []
        for item in work:
            if (
                item.embedder == self._embedder.name
                and len(item.embedding) == self._index.dimension
            ):
                ready.append(item)
                continue
            embedding = self._embed_again(item)
            if embedding is None:
                stale.append(item)
                continue
            await store.replace_embedding(conn, item, embedding, self._embedder.name)
            ready.append(
                IndexWork(
                    item.pattern_id,
                    item.embedding_id,
                    item.fingerprint,
                    item.pattern_type,
                    embedding,
                    item.source_text,
                    item.index_revision,
                    self._embedder.name,
                )
            )
        if stale:
            log.warning(
                "pattern indexer: %d patterns have vectors of another embedder than %s and no"
                " text to embed again; they stay out of the index until upserted with a vector",
                len(stale),
                self._embedder.name,
            )
        return ready, stale

    def _embed_again(self, item: IndexWork) -> tuple[float, ...] | None:
        if item.source_text is None:
            return None
        try:
            return as_float32(self._embedder.embed(item.source_text))
        except NothingToEmbed:
            return None

    async def _perform_deletions(self, conn: Connection) -> None:
        while True:
            queued = await store.queued_deletions(conn, self._batch_size)
            if not queued:
                return
            await self._index.delete([deletion.embedding_id for deletion in queued])
            await store.forget_deletions(conn, queued)

    async def _sleep(self, seconds: float) -> None:
        await wait_woken(self._wake, seconds)
        self._wake.clear()


async def _close(conn: asyncpg.Connection) -> None:
    # After a cancelled or failed query the connection may refuse a clean close, and the
    # original error (or the cancellation) must win; terminating ends the session too.
    try:
        await conn.close(timeout=5)
    except DATABASE_ERRORS:
        conn.terminate()
    except asyncio.CancelledError:
        conn.terminate()
        raise
