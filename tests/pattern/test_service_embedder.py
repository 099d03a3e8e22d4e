"""Changing the embedder: searches refuse to mix vectors, ReindexPatterns embeds texts again.

Each test runs its own pattern service twice over one database (and, for Weaviate, one test
server): first with feature hashing, then with the default learned embedder.
"""

from __future__ import annotations

import grpc
import pytest

from sensei.pattern.v1 import pattern_pb2
from services.pattern.embedder_wordllama import WordLlamaEmbedder
from tests.harness import Suite, error_info
from tests.weaviate_server.server import WeaviateTestServer

from .conftest import Deployment, deploy, rpc_error, unique, vector

FEATURE_HASHING = {"SENSEI_PATTERN_EMBEDDER": "feature-hashing"}
TEXT = "Copy a large table in chunks ordered by primary key, committing each chunk"


async def _reindex(deployment: Deployment) -> list[pattern_pb2.ReindexPatternsResponse]:
    return [
        progress
        async for progress in deployment.stub.ReindexPatterns(
            pattern_pb2.ReindexPatternsRequest(), metadata=deployment.operator.metadata
        )
    ]


@pytest.mark.parametrize("backend", ["pgvector", "weaviate"])
async def test_changing_the_embedder_needs_a_reindex_that_embeds_texts_again(
    suite: Suite, weaviate_server: WeaviateTestServer, backend: str
) -> None:
    deployment = await deploy(suite, backend, weaviate_server, env=FEATURE_HASHING)
    try:
        assert (await deployment.index_info()).embedder == "feature-hashing-v1/256"
        from_text = (await deployment.upsert(unique("text"), text=TEXT)).pattern
        from_vector = (await deployment.upsert(unique("vec"), values=vector(1.0))).pattern
        await deployment.indexed(from_text.name, from_vector.name)
    finally:
        await deployment.close()

    deployment = await deploy(suite, backend, weaviate_server)
    try:
        info = await deployment.index_info()
        assert (info.embedder, info.dimension) == ("wordllama-l2_supercat/256", 256)
        error = await rpc_error(deployment.search(text="move millions of rows piece by piece"))
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert error_info(error).reason == "INDEX_EMBEDDER_MISMATCH"

        progress = await _reindex(deployment)

        phases = [p.phase for p in progress]
        assert phases[0] == pattern_pb2.REINDEX_PHASE_CLEARING
        assert phases[-1] == pattern_pb2.REINDEX_PHASE_DONE
        assert (progress[-1].total_count, progress[-1].indexed_count) == (2, 1)
        # The caller's vector was in feature hashing's space: it cannot be embedded again.
        assert (await deployment.get(from_vector.name)).index_state == (
            pattern_pb2.INDEX_STATE_STALE
        )
        [hit] = await deployment.search(text=TEXT)
        assert hit.pattern.id == from_text.id and hit.similarity > 0.999
        if deployment.weaviate is not None and backend == "weaviate":
            # Bring-your-own vectors: Weaviate holds exactly the service's embedding.
            [stored] = deployment.weaviate.objects(deployment.collection)
            assert stored.vector == pytest.approx(WordLlamaEmbedder().embed(TEXT), abs=1e-6)
        # A new vector in the new embedder's space brings the stale pattern back.
        await deployment.upsert(from_vector.fingerprint, "", values=vector(1.0))
        await deployment.indexed(from_vector.name)
    finally:
        await deployment.close()


async def test_an_empty_index_adopts_a_new_embedder_without_a_reindex(suite: Suite) -> None:
    deployment = await deploy(suite, "pgvector", env=FEATURE_HASHING)
    await deployment.close()
    deployment = await deploy(suite, "pgvector")
    try:
        created = (await deployment.upsert(unique("text"), text=TEXT)).pattern
        await deployment.indexed(created.name)
        [hit] = await deployment.search(text=TEXT)
        assert hit.pattern.id == created.id
    finally:
        await deployment.close()
