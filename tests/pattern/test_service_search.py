"""SearchPatterns over a real channel, on every index backend."""

from __future__ import annotations

import math

import pytest

from sensei.pattern.v1 import pattern_pb2

from .conftest import Deployment, unique, vector


async def test_search_by_vector_returns_the_planted_nearest_first(deployment: Deployment) -> None:
    pattern_type = unique("nearest")
    planted = {
        "far": vector(0.0, 0.0, 0.0, 1.0),
        "near": vector(1.0, 0.6, 0.0, 0.0),
        "nearest": vector(1.0, 0.1, 0.0, 0.0),
        "opposite": vector(-1.0, 0.0, 0.0, 0.0),
    }
    names = {}
    for label, values in planted.items():
        fingerprint = unique(label)
        created = await deployment.upsert(fingerprint, pattern_type, values=values)
        names[created.pattern.name] = label
    await deployment.indexed(*names)
    results = await deployment.search(values=vector(1.0), pattern_type=pattern_type, top_k=3)
    assert [names[result.pattern.name] for result in results] == ["nearest", "near", "far"]
    nearest = results[0]
    assert nearest.similarity == pytest.approx(1 / math.sqrt(1.01), abs=1e-5)
    assert (nearest.success_rate, nearest.success_lower_bound) == (0.0, 0.0)
    assert nearest.rank_score == pytest.approx(nearest.similarity * 0.5, abs=1e-6)
    assert results[2].similarity == pytest.approx(0.0, abs=1e-6)


async def test_search_by_text_finds_the_related_ddl(deployment: Deployment) -> None:
    pattern_type = unique("ddl")
    texts = {
        "rename": "ALTER TABLE customers RENAME COLUMN customer_name TO full_name",
        "index": "CREATE INDEX orders_created_at_idx ON orders (created_at)",
        "cast": "ALTER TABLE invoices ALTER COLUMN amount TYPE numeric(12,2) USING amount::numeric",
    }
    names = {}
    for label, text in texts.items():
        created = await deployment.upsert(unique(label), pattern_type, text=text)
        names[created.pattern.name] = label
    await deployment.indexed(*names)
    results = await deployment.search(
        text="rename column customer_name of table customers", pattern_type=pattern_type
    )
    assert names[results[0].pattern.name] == "rename"
    results = await deployment.search(
        text="CREATE INDEX ON orders (created_at)", pattern_type=pattern_type
    )
    assert names[results[0].pattern.name] == "index"


async def test_proven_pattern_outranks_an_equally_similar_unproven_one(
    deployment: Deployment,
) -> None:
    pattern_type = unique("proven")
    unproven = (await deployment.upsert(unique("u"), pattern_type, values=vector(1.0))).pattern
    proven = (await deployment.upsert(unique("p"), pattern_type, values=vector(1.0, 0.05))).pattern
    for _ in range(5):
        await deployment.stub.RecordPatternOutcome(
            pattern_pb2.RecordPatternOutcomeRequest(
                name=proven.name,
                outcome=pattern_pb2.PATTERN_OUTCOME_SUCCESS,
                migration=await deployment.migration(),
            ),
            metadata=deployment.service.metadata,
        )
    await deployment.indexed(unproven.name, proven.name)
    first, second = await deployment.search(values=vector(1.0), pattern_type=pattern_type)
    assert (first.pattern.id, second.pattern.id) == (proven.id, unproven.id)
    assert first.similarity < second.similarity
    assert first.success_rate == 1.0 and first.success_lower_bound > 0.5
    assert first.rank_score > second.rank_score
    assert first.pattern.success_count == 5


async def test_top_k_and_min_similarity_bound_the_results(deployment: Deployment) -> None:
    pattern_type = unique("bounded")
    created = [
        (
            await deployment.upsert(unique("fp"), pattern_type, values=vector(1.0, i / 2))
        ).pattern.name
        for i in range(5)
    ]
    await deployment.indexed(*created)
    assert len(await deployment.search(values=vector(1.0), pattern_type=pattern_type, top_k=2)) == 2
    close = await deployment.search(
        values=vector(1.0), pattern_type=pattern_type, min_similarity=0.8
    )
    # Similarities of (1, i/2) to (1, 0): 1, 0.89, 0.71, 0.55, 0.45.
    assert len(close) == 2 and all(result.similarity >= 0.8 for result in close)


async def test_search_filters_by_type(deployment: Deployment) -> None:
    wanted_type, other_type = unique("wanted"), unique("other")
    wanted = (await deployment.upsert(unique("w"), wanted_type, values=vector(0.0, 1.0))).pattern
    other = (await deployment.upsert(unique("o"), other_type, values=vector(1.0))).pattern
    await deployment.indexed(wanted.name, other.name)
    results = await deployment.search(values=vector(1.0), pattern_type=wanted_type)
    assert [result.pattern.id for result in results] == [wanted.id]


async def test_results_are_only_patterns_that_exist_in_postgres(deployment: Deployment) -> None:
    pattern_type = unique("vanished")
    kept = (await deployment.upsert(unique("kept"), pattern_type, values=vector(1.0))).pattern
    gone = (await deployment.upsert(unique("gone"), pattern_type, values=vector(1.0))).pattern
    await deployment.indexed(kept.name, gone.name)
    # Behind the service's back: the row goes, its vector stays in the index.
    conn = await deployment.db()
    try:
        await conn.execute("DELETE FROM patterns WHERE id = $1", gone.id)
    finally:
        await conn.close()
    assert gone.embedding_id in await deployment.index_ids()
    results = await deployment.search(values=vector(1.0), pattern_type=pattern_type)
    assert [result.pattern.id for result in results] == [kept.id]


async def test_pending_pattern_is_found_once_indexed(deployment: Deployment) -> None:
    pattern_type = unique("pending")
    created = (await deployment.upsert(unique("fp"), pattern_type, values=vector(1.0))).pattern
    await deployment.indexed(created.name)
    [hit] = await deployment.search(values=vector(1.0), pattern_type=pattern_type)
    assert hit.pattern.index_state == pattern_pb2.INDEX_STATE_INDEXED


async def test_index_description_names_backend_dimension_and_embedder(
    deployment: Deployment,
) -> None:
    info = await deployment.index_info()
    backend = (
        pattern_pb2.INDEX_BACKEND_PGVECTOR
        if deployment.backend == "pgvector"
        else pattern_pb2.INDEX_BACKEND_WEAVIATE
    )
    assert (info.backend, info.dimension, info.embedder) == (
        backend,
        256,
        "wordllama-l2_supercat/256",
    )
    assert info.pattern_count >= info.pending_count + info.stale_count
