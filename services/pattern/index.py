"""The vector index seen by the pattern service: one interface, two backends.

PostgreSQL is the source of truth; an index only holds, per pattern, its embedding id, its
vector and its type (for filtered search), and once for all its vectors the name of the
embedder they come from (so vectors of two embedders never meet in one search).
`index_pgvector.PgvectorIndex` is the embedded default; `index_weaviate.WeaviateIndex` is
used when a Weaviate URL is configured.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

# Fixed forever: changing it would orphan every vector already in an index.
EMBEDDING_ID_NAMESPACE = uuid.UUID("5f0b6a52-3c1e-5d7a-9a47-6e0c2b1d8f43")

Backend = Literal["pgvector", "weaviate"]


def embedding_id_for(fingerprint: str) -> uuid.UUID:
    """The embedding id of a pattern: UUIDv5 of its fingerprint, the same in every process."""
    return uuid.uuid5(EMBEDDING_ID_NAMESPACE, fingerprint)


@dataclass(frozen=True)
class IndexEntry:
    """One pattern's vector as the index stores it."""

    embedding_id: uuid.UUID
    vector: tuple[float, ...]
    pattern_type: str
    fingerprint: str


@dataclass(frozen=True)
class IndexMatch:
    """One search hit: the embedding id and its cosine similarity to the query, in [-1, 1]."""

    embedding_id: uuid.UUID
    similarity: float


class IndexDimensionMismatch(Exception):
    """The index holds vectors of another dimension than configured; it must be reset."""

    def __init__(self, expected: int, found: int) -> None:
        super().__init__(
            f"vector index has dimension {found}, configured {expected}: reset and reindex it"
        )
        self.expected = expected
        self.found = found


class IndexEmbedderMismatch(Exception):
    """The index holds vectors of another embedder than configured; it must be rebuilt."""

    def __init__(self, expected: str, found: str | None) -> None:
        super().__init__(
            f"vector index holds vectors of embedder {found or '(unrecorded)'}, configured"
            f" {expected}: run ReindexPatterns to embed the patterns again"
        )
        self.expected = expected
        self.found = found


class IndexWriteFailed(Exception):
    """The index refused some entries of a write (the indexer retries them later)."""


class VectorIndex(Protocol):
    """What the pattern service needs from a vector index. Every method is safe to retry."""

    @property
    def backend(self) -> Backend:
        """Which implementation this is."""
        ...

    @property
    def dimension(self) -> int:
        """Length of every vector in the index."""
        ...

    @property
    def embedder(self) -> str:
        """Name of the embedder whose vectors the index holds (recorded in the index)."""
        ...

    async def ensure_ready(self) -> None:
        """Connects and creates the index if absent (an empty one adopts the configured
        embedder); raises IndexDimensionMismatch or IndexEmbedderMismatch."""
        ...

    async def upsert(self, entries: Sequence[IndexEntry]) -> None:
        """Writes the entries, replacing any with the same embedding id."""
        ...

    async def delete(self, embedding_ids: Sequence[uuid.UUID]) -> None:
        """Removes the entries with these ids; absent ids are ignored."""
        ...

    async def search(
        self, vector: Sequence[float], top_k: int, pattern_type: str | None = None
    ) -> list[IndexMatch]:
        """The `top_k` entries most similar to `vector` (of `pattern_type` if set), best first."""
        ...

    async def count(self) -> int:
        """Number of entries in the index."""
        ...

    async def reset(self) -> None:
        """Drops every entry and recreates the index empty with the configured dimension
        and embedder."""
        ...

    async def close(self) -> None:
        """Releases connections the index opened itself."""
        ...


def vector_problem(vector: Sequence[float], dimension: int) -> str | None:
    """Why `vector` cannot be indexed or searched with, or None if it can."""
    if len(vector) != dimension:
        return f"must have {dimension} components, has {len(vector)}"
    if not all(math.isfinite(value) for value in vector):
        return "components must be finite numbers"
    if not any(vector):
        return "must not be all zeros (cosine similarity is undefined)"
    return None


def check_vector(vector: Sequence[float], dimension: int) -> None:
    """Raises ValueError when `vector` cannot be indexed; callers validate input before this."""
    problem = vector_problem(vector, dimension)
    if problem is not None:
        raise ValueError(f"vector {problem}")
