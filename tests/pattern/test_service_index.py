"""The vector index behind the service: catching up after outages, rebuilding, describing.

Each test runs its own pattern service (these behaviours concern the whole index).
"""

from __future__ import annotations

import grpc

from sensei.pattern.v1 import pattern_pb2
from tests.harness import Suite, error_info
from tests.weaviate_server.server import WeaviateTestServer

from .conftest import Deployment, deploy, eventually, rpc_error, unique, vector


async def _reindex(deployment: Deployment) -> list[pattern_pb2.ReindexPatternsResponse]:
    return [
        progress
        async for progress in deployment.stub.ReindexPatterns(
            pattern_pb2.ReindexPatternsRequest(), metadata=deployment.operator.metadata
        )
    ]


async def _caught_up(deployment: Deployment) -> None:
    async def nothing_pending() -> bool:
        return (await deployment.index_info()).pending_count == 0

    await eventually(nothing_pending)


async def test_reindex_after_wiping_the_index_restores_search(fresh: Deployment) -> None:
    created = [
        (await fresh.upsert(unique("fp"), values=vector(1.0, i / 10))).pattern for i in range(5)
    ]
    await fresh.indexed(*(pattern.name for pattern in created))
    info = await fresh.index_info()
    assert (info.pattern_count, info.pending_count, info.stale_count) == (5, 0, 0)
    await fresh.wipe_index()
    assert await fresh.search(values=vector(1.0)) == []

    progress = await _reindex(fresh)

    phases = [message.phase for message in progress]
    assert phases[0] == pattern_pb2.REINDEX_PHASE_CLEARING
    assert phases[-1] == pattern_pb2.REINDEX_PHASE_DONE
    assert pattern_pb2.REINDEX_PHASE_INDEXING in phases
    assert (progress[-1].total_count, progress[-1].indexed_count) == (5, 5)
    results = await fresh.search(values=vector(1.0))
    assert [result.pattern.id for result in results] == [pattern.id for pattern in created]
    assert await fresh.index_ids() == {pattern.embedding_id for pattern in created}
    assert (await fresh.index_info()).pending_count == 0


async def test_writes_succeed_while_weaviate_is_down_and_the_indexer_catches_up(
    suite: Suite, weaviate_server: WeaviateTestServer
) -> None:
    deployment = await deploy(suite, "weaviate", weaviate_server)
    try:
        before = (await deployment.upsert(unique("before"), values=vector(1.0))).pattern
        doomed = (await deployment.upsert(unique("doomed"), values=vector(1.0, 0.2))).pattern
        await deployment.indexed(before.name, doomed.name)

        await weaviate_server.stop()
        during = [
            (await deployment.upsert(unique("during"), values=vector(1.0, 0.1 * i))).pattern
            for i in range(1, 4)
        ]
        await deployment.stub.DeletePattern(
            pattern_pb2.DeletePatternRequest(name=doomed.name),
            metadata=deployment.operator.metadata,
        )
        await deployment.stub.RecordPatternOutcome(
            pattern_pb2.RecordPatternOutcomeRequest(
                name=before.name,
                outcome=pattern_pb2.PATTERN_OUTCOME_SUCCESS,
                migration=await deployment.migration(),
            ),
            metadata=deployment.service.metadata,
        )
        assert (await deployment.index_info()).pending_count == 3
        error = await rpc_error(deployment.search(values=vector(1.0)))
        assert error.code() == grpc.StatusCode.UNAVAILABLE
        assert error_info(error).reason == "VECTOR_INDEX_UNAVAILABLE"

        await weaviate_server.start()
        await _caught_up(deployment)

        async def deletion_done() -> bool:
            return doomed.embedding_id not in await deployment.index_ids()

        await eventually(deletion_done)
        results = await deployment.search(values=vector(1.0))
        assert {result.pattern.id for result in results} == {
            before.id,
            *(pattern.id for pattern in during),
        }
    finally:
        await deployment.close()


async def test_service_starts_while_weaviate_is_down(
    suite: Suite, weaviate_server: WeaviateTestServer
) -> None:
    await weaviate_server.stop()
    deployment = await deploy(suite, "weaviate", weaviate_server)
    try:
        created = (await deployment.upsert(unique("early"), text="DROP INDEX old_idx")).pattern
        assert created.index_state == pattern_pb2.INDEX_STATE_PENDING
        await weaviate_server.start()
        await deployment.indexed(created.name)
        [hit] = await deployment.search(text="DROP INDEX old_idx")
        assert hit.pattern.id == created.id and hit.similarity > 0.999
    finally:
        await deployment.close()


async def test_reindex_while_weaviate_is_down_is_unavailable_and_loses_nothing(
    suite: Suite, weaviate_server: WeaviateTestServer
) -> None:
    deployment = await deploy(suite, "weaviate", weaviate_server)
    try:
        created = (await deployment.upsert(unique("kept"), values=vector(1.0))).pattern
        await deployment.indexed(created.name)
        await weaviate_server.stop()
        error = await rpc_error(_reindex(deployment))
        assert error.code() == grpc.StatusCode.UNAVAILABLE
        await weaviate_server.start()
        await deployment.indexed(created.name)
        [hit] = await deployment.search(values=vector(1.0))
        assert hit.pattern.id == created.id
    finally:
        await deployment.close()


async def test_changing_the_dimension_needs_a_reindex_that_embeds_texts_again(
    suite: Suite,
) -> None:
    small = {"SENSEI_PATTERN_EMBEDDING_DIM": "8", "SENSEI_PATTERN_EMBEDDER": "feature-hashing"}
    deployment = await deploy(suite, "pgvector", env=small)
    try:
        from_text = (
            await deployment.upsert(unique("text"), text="ALTER TABLE a RENAME TO b")
        ).pattern
        from_vector = (await deployment.upsert(unique("vec"), values=[1.0] * 8)).pattern
        await deployment.indexed(from_text.name, from_vector.name)
    finally:
        await deployment.close()

    wider = {"SENSEI_PATTERN_EMBEDDING_DIM": "16", "SENSEI_PATTERN_EMBEDDER": "feature-hashing"}
    deployment = await deploy(suite, "pgvector", env=wider)
    try:
        error = await rpc_error(deployment.search(text="rename table"))
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert error_info(error).reason == "INDEX_DIMENSION_MISMATCH"

        progress = await _reindex(deployment)

        assert (progress[-1].total_count, progress[-1].indexed_count) == (2, 1)
        assert (await deployment.get(from_text.name)).index_state == (
            pattern_pb2.INDEX_STATE_INDEXED
        )
        assert (await deployment.get(from_vector.name)).index_state == (
            pattern_pb2.INDEX_STATE_STALE
        )
        info = await deployment.index_info()
        assert (info.dimension, info.stale_count, info.pending_count) == (16, 1, 0)
        [hit] = await deployment.search(text="ALTER TABLE a RENAME TO b")
        assert hit.pattern.id == from_text.id and hit.similarity > 0.999
        # A new vector of the new dimension brings the stale pattern back.
        await deployment.upsert(from_vector.fingerprint, "", values=[1.0] * 16)
        await deployment.indexed(from_vector.name)
    finally:
        await deployment.close()
