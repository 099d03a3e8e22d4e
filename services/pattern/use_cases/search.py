"""The search use case: SearchPatterns, read-only, through the vector index.

Named for the operation rather than a plural resource: a search is not stored, it reads
patterns. The index answers with the nearest vectors; only patterns that still exist in
PostgreSQL (the source of truth) are ranked and returned (rules in `domain/search.py`).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence

import asyncpg

from services.pattern import store
from services.pattern.domain import SearchQuery, SearchResult, check_search, rank_matches
from services.pattern.embedder import Embedder
from services.pattern.index import IndexDimensionMismatch, IndexEmbedderMismatch, VectorIndex
from services.pattern.use_cases.patterns import EMBED_IN_THREAD_CHARS
from shared.errors import FailedPrecondition


class PatternSearch:
    """Similarity search over the patterns' vectors."""

    def __init__(self, pool: asyncpg.Pool, index: VectorIndex, embedder: Embedder) -> None:
        if embedder.dimension != index.dimension:
            raise ValueError("the embedder and the index must have the same dimension")
        self._pool = pool
        self._index = index
        self._embedder = embedder

    async def search(
        self,
        text: str | None,
        vector: Sequence[float] | None,
        *,
        pattern_type: str,
        top_k: int,
        min_similarity: float | None,
    ) -> list[SearchResult]:
        """SearchPatterns: checks the request, embeds its text, asks the index for the
        nearest vectors and ranks them against PostgreSQL."""
        query = await self._query(
            text,
            vector,
            pattern_type=pattern_type,
            top_k=top_k,
            min_similarity=min_similarity,
        )
        try:
            await self._index.ensure_ready()
            matches = await self._index.search(query.vector, query.candidates, query.pattern_type)
        except IndexDimensionMismatch as exc:
            raise FailedPrecondition(str(exc), reason="INDEX_DIMENSION_MISMATCH") from None
        except IndexEmbedderMismatch as exc:
            raise FailedPrecondition(str(exc), reason="INDEX_EMBEDDER_MISMATCH") from None
        async with self._pool.acquire() as conn:
            patterns = await store.patterns_by_embedding_id(
                conn, [match.embedding_id for match in matches]
            )
        return rank_matches(
            query, [(match.embedding_id, match.similarity) for match in matches], patterns
        )

    async def _query(
        self,
        text: str | None,
        vector: Sequence[float] | None,
        *,
        pattern_type: str,
        top_k: int,
        min_similarity: float | None,
    ) -> SearchQuery:
        check = functools.partial(
            check_search,
            text,
            vector,
            pattern_type=pattern_type,
            top_k=top_k,
            min_similarity=min_similarity,
            embedder=self._embedder,
        )
        if text is not None and len(text) > EMBED_IN_THREAD_CHARS:
            return await asyncio.to_thread(check)
        return check()
