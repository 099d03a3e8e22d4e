"""Behaviours every VectorIndex backend must show, run by test_index_pgvector/_weaviate.

A subclass provides the fixture `index_factory`: an async callable that takes a dimension
(and optionally an embedder name, EMBEDDER by default) and returns a new, not yet ready,
VectorIndex over one shared store (so two instances of different dimensions or embedders
see the same table or collection).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Awaitable, Callable

import pytest

from services.pattern.embedder import FeatureHashingEmbedder
from services.pattern.index import (
    IndexDimensionMismatch,
    IndexEmbedderMismatch,
    IndexEntry,
    VectorIndex,
    embedding_id_for,
)

IndexFactory = Callable[..., Awaitable[VectorIndex]]
DIMENSION = 4
EMBEDDER = "test-embedder/4"


def entry(
    fingerprint: str, vector: tuple[float, ...], pattern_type: str = "column_rename"
) -> IndexEntry:
    """An entry whose embedding id derives from `fingerprint`, as the service makes them."""
    return IndexEntry(embedding_id_for(fingerprint), vector, pattern_type, fingerprint)


class IndexContract:
    """Inherit in a `Test…` class that defines the `index_factory` fixture."""

    @pytest.fixture
    async def index(self, index_factory: IndexFactory) -> VectorIndex:
        index = await index_factory(DIMENSION)
        await index.ensure_ready()
        return index

    async def test_new_index_is_empty(self, index: VectorIndex) -> None:
        assert await index.count() == 0

    async def test_ensure_ready_twice_keeps_the_entries(self, index: VectorIndex) -> None:
        await index.upsert([entry("a", (1.0, 0.0, 0.0, 0.0))])
        await index.ensure_ready()
        assert await index.count() == 1

    async def test_count_counts_entries(self, index: VectorIndex) -> None:
        await index.upsert([entry(f"fp-{i}", (1.0, float(i), 0.0, 0.0)) for i in range(5)])
        assert await index.count() == 5

    async def test_search_returns_planted_nearest_first(self, index: VectorIndex) -> None:
        await index.upsert(
            [
                entry("far", (0.0, 0.0, 0.0, 1.0)),
                entry("nearest", (1.0, 0.1, 0.0, 0.0)),
                entry("near", (1.0, 1.0, 0.0, 0.0)),
            ]
        )
        matches = await index.search((1.0, 0.0, 0.0, 0.0), top_k=3)
        assert [m.embedding_id for m in matches] == [
            embedding_id_for("nearest"),
            embedding_id_for("near"),
            embedding_id_for("far"),
        ]

    async def test_similarity_is_the_cosine_of_the_vectors(self, index: VectorIndex) -> None:
        await index.upsert([entry("diagonal", (1.0, 1.0, 0.0, 0.0))])
        [match] = await index.search((2.0, 0.0, 0.0, 0.0), top_k=1)
        assert match.similarity == pytest.approx(1 / math.sqrt(2), abs=1e-5)

    async def test_search_returns_at_most_top_k(self, index: VectorIndex) -> None:
        await index.upsert([entry(f"fp-{i}", (1.0, float(i), 1.0, 0.0)) for i in range(6)])
        assert len(await index.search((1.0, 0.0, 0.0, 0.0), top_k=2)) == 2

    async def test_search_filters_by_pattern_type(self, index: VectorIndex) -> None:
        await index.upsert(
            [
                entry("rename", (1.0, 0.0, 0.0, 0.0), "column_rename"),
                entry("cast", (0.9, 0.1, 0.0, 0.0), "type_cast"),
                entry("cast-far", (0.0, 0.0, 1.0, 0.0), "type_cast"),
            ]
        )
        matches = await index.search((1.0, 0.0, 0.0, 0.0), top_k=5, pattern_type="type_cast")
        assert [m.embedding_id for m in matches] == [
            embedding_id_for("cast"),
            embedding_id_for("cast-far"),
        ]

    async def test_search_of_an_unknown_type_finds_nothing(self, index: VectorIndex) -> None:
        await index.upsert([entry("rename", (1.0, 0.0, 0.0, 0.0))])
        assert await index.search((1.0, 0.0, 0.0, 0.0), top_k=5, pattern_type="nope") == []

    async def test_upsert_replaces_the_entry_with_the_same_id(self, index: VectorIndex) -> None:
        await index.upsert([entry("moving", (1.0, 0.0, 0.0, 0.0))])
        await index.upsert([entry("moving", (0.0, 1.0, 0.0, 0.0))])
        [match] = await index.search((0.0, 1.0, 0.0, 0.0), top_k=5)
        assert match.similarity == pytest.approx(1.0, abs=1e-5)
        assert await index.count() == 1

    async def test_upsert_can_change_the_pattern_type(self, index: VectorIndex) -> None:
        await index.upsert([entry("retyped", (1.0, 0.0, 0.0, 0.0), "column_rename")])
        await index.upsert([entry("retyped", (1.0, 0.0, 0.0, 0.0), "type_cast")])
        matches = await index.search((1.0, 0.0, 0.0, 0.0), top_k=5, pattern_type="type_cast")
        assert [m.embedding_id for m in matches] == [embedding_id_for("retyped")]

    async def test_duplicate_ids_in_one_batch_keep_the_last(self, index: VectorIndex) -> None:
        await index.upsert(
            [entry("twice", (1.0, 0.0, 0.0, 0.0)), entry("twice", (0.0, 0.0, 1.0, 0.0))]
        )
        [match] = await index.search((0.0, 0.0, 1.0, 0.0), top_k=5)
        assert match.similarity == pytest.approx(1.0, abs=1e-5)

    async def test_delete_removes_one_entry(self, index: VectorIndex) -> None:
        await index.upsert(
            [entry("keep", (1.0, 0.0, 0.0, 0.0)), entry("drop", (1.0, 0.0, 0.0, 0.0))]
        )
        await index.delete([embedding_id_for("drop")])
        matches = await index.search((1.0, 0.0, 0.0, 0.0), top_k=5)
        assert [m.embedding_id for m in matches] == [embedding_id_for("keep")]

    async def test_delete_removes_many_entries(self, index: VectorIndex) -> None:
        await index.upsert([entry(f"fp-{i}", (1.0, float(i), 0.0, 0.0)) for i in range(4)])
        await index.delete([embedding_id_for("fp-0"), embedding_id_for("fp-2")])
        matches = await index.search((1.0, 0.0, 0.0, 0.0), top_k=5)
        assert {m.embedding_id for m in matches} == {
            embedding_id_for("fp-1"),
            embedding_id_for("fp-3"),
        }

    async def test_delete_ignores_absent_ids(self, index: VectorIndex) -> None:
        await index.upsert([entry("present", (1.0, 0.0, 0.0, 0.0))])
        await index.delete([uuid.uuid4(), uuid.uuid4()])
        await index.delete([uuid.uuid4()])
        assert await index.count() == 1

    async def test_reset_empties_the_index(self, index: VectorIndex) -> None:
        await index.upsert([entry("gone", (1.0, 0.0, 0.0, 0.0))])
        await index.reset()
        assert await index.count() == 0

    async def test_ensure_ready_refuses_vectors_of_another_dimension(
        self, index: VectorIndex, index_factory: IndexFactory
    ) -> None:
        await index.upsert([entry("four", (1.0, 0.0, 0.0, 0.0))])
        wider = await index_factory(DIMENSION * 2)
        with pytest.raises(IndexDimensionMismatch) as raised:
            await wider.ensure_ready()
        assert (raised.value.expected, raised.value.found) == (DIMENSION * 2, DIMENSION)

    async def test_reset_adopts_the_configured_dimension(
        self, index: VectorIndex, index_factory: IndexFactory
    ) -> None:
        await index.upsert([entry("four", (1.0, 0.0, 0.0, 0.0))])
        wider = await index_factory(DIMENSION * 2)
        await wider.reset()
        await wider.upsert([entry("eight", (0.0,) * 7 + (1.0,))])
        [match] = await wider.search((0.0,) * 7 + (1.0,), top_k=5)
        assert match.embedding_id == embedding_id_for("eight")

    async def test_ensure_ready_refuses_vectors_of_another_embedder(
        self, index: VectorIndex, index_factory: IndexFactory
    ) -> None:
        await index.upsert([entry("four", (1.0, 0.0, 0.0, 0.0))])
        other = await index_factory(DIMENSION, "other-embedder/4")
        with pytest.raises(IndexEmbedderMismatch) as raised:
            await other.ensure_ready()
        assert (raised.value.expected, raised.value.found) == ("other-embedder/4", EMBEDDER)

    async def test_an_empty_index_adopts_another_embedder(
        self, index: VectorIndex, index_factory: IndexFactory
    ) -> None:
        other = await index_factory(DIMENSION, "other-embedder/4")
        await other.ensure_ready()
        await other.upsert([entry("four", (1.0, 0.0, 0.0, 0.0))])
        with pytest.raises(IndexEmbedderMismatch):
            await (await index_factory(DIMENSION)).ensure_ready()

    async def test_reset_adopts_the_configured_embedder(
        self, index: VectorIndex, index_factory: IndexFactory
    ) -> None:
        await index.upsert([entry("four", (1.0, 0.0, 0.0, 0.0))])
        other = await index_factory(DIMENSION, "other-embedder/4")
        await other.reset()
        await other.upsert([entry("again", (1.0, 0.0, 0.0, 0.0))])
        await (await index_factory(DIMENSION, "other-embedder/4")).ensure_ready()
        assert await other.count() == 1

    async def test_vector_of_the_wrong_length_is_refused(self, index: VectorIndex) -> None:
        with pytest.raises(ValueError, match="components"):
            await index.upsert([entry("short", (1.0, 0.0))])

    async def test_embedded_ddl_finds_the_related_pattern(
        self, index_factory: IndexFactory
    ) -> None:
        embedder = FeatureHashingEmbedder()
        index = await index_factory(embedder.dimension)
        await index.reset()
        texts = {
            "rename-email": "ALTER TABLE users RENAME COLUMN email TO email_address",
            "brin-index": "CREATE INDEX events_time_idx ON events USING brin (created_at)",
            "int-to-bigint": "ALTER TABLE orders ALTER COLUMN id TYPE bigint",
        }
        await index.upsert([entry(fp, embedder.embed(text), "ddl") for fp, text in texts.items()])
        query = embedder.embed("ALTER TABLE customers RENAME COLUMN mail TO email_address")
        matches = await index.search(query, top_k=3)
        assert matches[0].embedding_id == embedding_id_for("rename-email")
