"""Use cases of patterns: one PostgreSQL transaction per write (search is in `search.py`).

PostgreSQL is the source of truth. A write commits there, marks the pattern pending when
the index must learn of it, and notifies the indexer at commit; it never waits for (or
fails because of) the vector index.

Audit: every write records an event in the same transaction (shared outbox). Patterns
belong to no organization: writes (upsert, delete, reindex) come only from platform
principals and go to the platform chain (`shared.outbox.PLATFORM_ORG_ID`); an outcome
reported by a tenant member goes to the member's own organization's log. The pattern also
keeps the subject of its last writer (`patterns.updated_by`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from services.pattern import domain, store
from services.pattern.domain import (
    IndexState,
    OutcomeReport,
    Pattern,
    PatternInput,
    PatternRef,
    UpsertFields,
)
from services.pattern.embedder import Embedder
from services.pattern.index import Backend, IndexWriteFailed, VectorIndex
from services.pattern.indexer import Indexer, ReindexProgress
from services.pattern.migration_client import MigrationDirectory
from shared import outbox
from shared.db import Connection
from shared.errors import (
    Aborted,
    AlreadyExists,
    EtagMismatch,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unavailable,
)
from shared.pagination import Page, PageTokens, page_of, page_size
from shared.principals import current_principal

log = logging.getLogger(__name__)

# Texts longer than this are embedded in a worker thread, off the event loop.
EMBED_IN_THREAD_CHARS = 4096


@dataclass(frozen=True)
class IndexDescription:
    """What GetPatternIndex reports."""

    backend: Backend
    dimension: int
    embedder: str
    counts: store.IndexCounts


class Patterns:
    """Patterns in PostgreSQL: writes, reads, outcomes and the index's rebuild and state."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        index: VectorIndex,
        embedder: Embedder,
        indexer: Indexer,
        page_tokens: PageTokens,
        *,
        migrations: MigrationDirectory,
    ) -> None:
        if embedder.dimension != index.dimension:
            raise ValueError("the embedder and the index must have the same dimension")
        self._pool = pool
        self._index = index
        self._embedder = embedder
        self._indexer = indexer
        self._tokens = page_tokens
        self._migrations = migrations

    # --- writes -----------------------------------------------------------------------

    async def upsert(
        self, request: UpsertFields, extra: Sequence[FieldViolation] = ()
    ) -> tuple[Pattern, bool]:
        """UpsertPattern: creates the pattern or updates it; True when it was created."""
        given = await self._checked(request, extra)
        actor = current_principal().subject
        async with self._pool.acquire() as conn, conn.transaction():
            current = await store.pattern_by_fingerprint(conn, given.fingerprint, lock=True)
            if current is None:
                created = await self._create(conn, given, actor)
                if created is not None:
                    return created, True
                # A concurrent call created it first; update what it created.
                current = await store.pattern_by_fingerprint(conn, given.fingerprint, lock=True)
                if current is None:  # ...and another deleted it again in between
                    raise Aborted(
                        "the pattern was created and deleted concurrently; retry",
                        reason="CONCURRENT_CHANGE",
                    )
            if not domain.check_etag(given.etag, current):
                raise EtagMismatch("Pattern", current.name)
            changes = domain.changes_of(current, given)
            if changes.empty:
                return current, False
            updated = await store.update_pattern(
                conn, current.id, changes.values, reindex=changes.reindex, actor=actor
            )
            await _audit(conn, "pattern.update", updated, {"fields": sorted(changes.values)})
            if changes.reindex:
                await store.notify_indexer(conn)
            return updated, False

    async def _create(self, conn: Connection, given: PatternInput, actor: str) -> Pattern | None:
        domain.raise_if(domain.missing_for_create(given))
        assert given.type is not None and given.embedding is not None
        created = await store.insert_pattern_if_absent(
            conn, given, given.type, given.embedding, actor
        )
        if created is not None:
            await _audit(
                conn,
                "pattern.create",
                created,
                {"fingerprint": created.fingerprint, "type": created.type},
            )
            await store.notify_indexer(conn)
        return created

    async def _checked(
        self, request: UpsertFields, extra: Sequence[FieldViolation]
    ) -> PatternInput:
        if request.text is not None and len(request.text) > EMBED_IN_THREAD_CHARS:
            return await asyncio.to_thread(domain.check_upsert, request, self._embedder, extra)
        return domain.check_upsert(request, self._embedder, extra)

    async def delete(self, name: str, etag: str) -> None:
        """DeletePattern: the row goes now, its vector when the indexer gets to it."""
        pattern_id, problem = domain.parse_pattern_name(name, "name")
        domain.raise_if([problem])
        assert pattern_id is not None
        async with self._pool.acquire() as conn, conn.transaction():
            current = await store.pattern_by_id(conn, pattern_id, lock=True)
            if current is None:
                raise NotFound("Pattern", name)
            if not domain.check_etag(etag, current):
                raise EtagMismatch("Pattern", name)
            await store.delete_pattern(conn, current)
            await _audit(
                conn,
                "pattern.delete",
                current,
                {"fingerprint": current.fingerprint, "type": current.type},
            )
            await store.notify_indexer(conn)

    async def record_outcome(self, report: OutcomeReport) -> Pattern:
        """RecordPatternOutcome: one atomic increment per (pattern, migration); a repeated
        request id or pair counts nothing."""
        principal = current_principal()
        caller = principal.subject
        # Asked before the transaction: no database connection waits on another service.
        owner = await self._migrations.migration_org(report.migration.name)
        if owner != report.migration.org_id or (
            not principal.is_service and owner != principal.org_id
        ):
            # The access rule already refuses other organizations' names; this holds even
            # if a name and its migration ever disagreed.
            raise PermissionDenied(
                "the migration belongs to another organization", reason="OTHER_ORGANIZATION"
            )
        async with self._pool.acquire() as conn, conn.transaction():
            target = await self._find(conn, report.ref)
            if report.request_id and not await store.claim_outcome_request(
                conn, caller, report.request_id, target.id, report.outcome
            ):
                first = await store.outcome_request(conn, caller, report.request_id)
                if first != store.OutcomeRequest(target.id, report.outcome):
                    raise InvalidArgument.single(
                        "request_id",
                        "was already used for another outcome or pattern",
                        reason="REQUEST_ID_REUSED",
                    )
                # Read again: the first call may have committed after our first read.
                return await self._find(conn, report.ref)
            recorded = await store.claim_outcome_migration(
                conn,
                pattern_id=target.id,
                migration_id=report.migration.migration_id,
                org_id=owner,
                outcome=report.outcome,
                caller=caller,
            )
            if recorded is report.outcome:
                # Counted once already for this migration: the repeat changes nothing.
                return await self._find(conn, report.ref)
            if recorded is not None:
                raise AlreadyExists("PatternOutcome", "migration", report.migration.name)
            counted = await store.count_outcome(conn, target.id, report.outcome, caller)
            if counted is None:  # deleted since we read it
                raise NotFound("Pattern", report.ref.describe())
            await _audit(
                conn,
                "pattern.record_outcome",
                counted,
                {"outcome": report.outcome.value, "migration": report.migration.name},
            )
            return counted

    async def reindex(self) -> AsyncIterator[ReindexProgress]:
        """ReindexPatterns: records who asked, then rebuilds the index with progress."""
        async with self._pool.acquire() as conn, conn.transaction():
            await _record(conn, "pattern.reindex", "pattern_index", "patterns", {})
        try:
            async for progress in self._indexer.rebuild():
                yield progress
        except IndexWriteFailed as exc:
            raise Unavailable(
                f"the vector index refused writes: {exc}", reason="VECTOR_INDEX_WRITE_FAILED"
            ) from None

    # --- reads ------------------------------------------------------------------------

    async def get(self, ref: PatternRef) -> Pattern:
        """GetPattern."""
        async with self._pool.acquire() as conn:
            return await self._find(conn, ref)

    async def list_page(
        self,
        requested_size: int,
        page_token: str,
        pattern_type: str,
        index_state: IndexState | None,
    ) -> Page[Pattern]:
        """ListPatterns: creation order, keyset pagination."""
        size = page_size(requested_size)
        domain.raise_if([domain.check_type(pattern_type, "type")])
        query = ["patterns", pattern_type, index_state.value if index_state else None]
        after = self._tokens.decode(page_token, query)
        async with self._pool.acquire() as conn:
            rows = await store.patterns_page(
                conn,
                pattern_type=pattern_type or None,
                index_state=index_state,
                after=after,
                limit=size + 1,
            )
        return page_of(self._tokens, rows, size, query, lambda p: [p.created_at, p.id])

    async def describe_index(self) -> IndexDescription:
        """GetPatternIndex."""
        async with self._pool.acquire() as conn:
            counts = await store.index_counts(conn)
        return IndexDescription(
            self._index.backend, self._index.dimension, self._embedder.name, counts
        )

    async def _find(self, conn: Connection, ref: PatternRef) -> Pattern:
        if ref.pattern_id is not None:
            found = await store.pattern_by_id(conn, ref.pattern_id)
        else:
            assert ref.fingerprint is not None
            found = await store.pattern_by_fingerprint(conn, ref.fingerprint)
        if found is None:
            raise NotFound("Pattern", ref.describe())
        return found


async def _audit(conn: Connection, action: str, pattern: Pattern, details: dict[str, Any]) -> None:
    await _record(conn, action, "pattern", pattern.id, details)


async def _record(
    conn: Connection, action: str, resource_type: str, resource_id: str, details: dict[str, Any]
) -> None:
    # A user's event goes to their organization's chain; a service's to the platform chain.
    await outbox.record(
        conn,
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        org_id=current_principal().org_id,
        details=details,
    )
