"""The rules of SearchPatterns: what a valid query is, and how index matches are ranked
against the patterns that exist in PostgreSQL. Pure, like the rest of `domain`."""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from services.pattern.domain import ranking
from services.pattern.domain.patterns import (
    Pattern,
    as_float32,
    check_type,
    check_vector,
    embed_text,
    raise_if,
)
from services.pattern.embedder import Embedder
from shared.errors import FieldViolation

DEFAULT_TOP_K = 10
MAX_TOP_K = 100


@dataclass(frozen=True)
class SearchQuery:
    """A checked SearchPatterns request."""

    vector: tuple[float, ...]
    pattern_type: str | None
    top_k: int
    min_similarity: float | None
    # The embedder whose space `vector` is in; patterns of another one are never ranked.
    embedder: str

    @property
    def candidates(self) -> int:
        """How many nearest entries to ask the index for: more than top_k, because some may
        belong to patterns deleted since, and proven patterns may outrank closer ones."""
        return min(max(self.top_k * 3, self.top_k + 20), 300)


def check_search(
    text: str | None,
    vector: Sequence[float] | None,
    *,
    pattern_type: str,
    top_k: int,
    min_similarity: float | None,
    embedder: Embedder,
) -> SearchQuery:
    """Checks a SearchPatterns request (every violation at once) and embeds its text."""
    violations: list[FieldViolation | None] = [
        check_type(pattern_type, "type"),
        check_min_similarity(min_similarity),
    ]
    query_vector: tuple[float, ...] | None = None
    if vector is not None:
        problem = check_vector(vector, embedder.dimension, "vector.values")
        violations.append(problem)
        if problem is None:
            query_vector = as_float32(vector)
    elif text is not None:
        query_vector, problem = embed_text(text, embedder, "text")
        violations.append(problem)
    else:
        violations.append(FieldViolation("text", "set `text` or `vector`", "REQUIRED"))
    size, problem = check_top_k(top_k)
    violations.append(problem)
    raise_if(violations)
    assert query_vector is not None
    return SearchQuery(query_vector, pattern_type or None, size, min_similarity, embedder.name)


def check_top_k(top_k: int) -> tuple[int, FieldViolation | None]:
    """0 → 10; above 100 → 100; negative → violation."""
    if top_k < 0:
        return 0, FieldViolation("top_k", "must not be negative")
    return (DEFAULT_TOP_K if top_k == 0 else min(top_k, MAX_TOP_K)), None


def check_min_similarity(value: float | None) -> FieldViolation | None:
    """A similarity bound lies in [-1, 1]."""
    if value is None or (math.isfinite(value) and -1.0 <= value <= 1.0):
        return None
    return FieldViolation("min_similarity", "must be between -1 and 1")


@dataclass(frozen=True)
class SearchResult:
    """One ranked match."""

    pattern: Pattern
    score: ranking.PatternScore


def rank_matches(
    query: SearchQuery,
    matches: Sequence[tuple[uuid.UUID, float]],
    patterns: Mapping[uuid.UUID, Pattern],
) -> list[SearchResult]:
    """Ranks index matches against the patterns that still exist, best first, top_k of them.

    The similarity is the index's own (computed in the index query, never again here).
    Patterns of another type (the index may lag behind a type change), whose vector is of
    another embedder than the query's (waiting to be embedded again), or below
    `min_similarity` are dropped.
    """
    scored: list[tuple[Pattern, ranking.PatternScore]] = []
    for embedding_id, similarity in matches:
        pattern = patterns.get(embedding_id)
        if pattern is None:
            continue  # deleted in PostgreSQL; the indexer will remove its vector
        if query.pattern_type is not None and pattern.type != query.pattern_type:
            continue
        if pattern.embedder != query.embedder:
            continue  # never rank vectors of two embedders together
        if query.min_similarity is not None and similarity < query.min_similarity:
            continue
        scored.append(
            (pattern, ranking.score(similarity, pattern.success_count, pattern.failure_count))
        )
    ranked = ranking.best_first(scored)[: query.top_k]
    return [SearchResult(pattern, score) for pattern, score in ranked]
