"""The Weaviate index against the protocol-level test server, and against a real Weaviate
when SENSEI_TEST_WEAVIATE_URL (plus SENSEI_TEST_WEAVIATE_GRPC_PORT, default 50051) is set."""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest
import weaviate
from weaviate.classes.query import Filter
from weaviate.collections.classes.config import _VectorIndexConfigHNSW

from services.pattern.index import VectorIndex, embedding_id_for
from services.pattern.index_weaviate import BATCH_SIZE, VECTOR_NAME, WeaviateIndex
from shared.errors import Unavailable
from tests.weaviate_server.server import WeaviateTestServer

from .index_contract import DIMENSION, EMBEDDER, IndexContract, IndexFactory, entry

Endpoint = tuple[str, int]


@pytest.fixture(
    params=[
        pytest.param("test-server"),
        pytest.param("real", marks=pytest.mark.weaviate),
    ]
)
def weaviate_endpoint(request: pytest.FixtureRequest) -> Endpoint:
    """(REST URL, gRPC port) of the test server, or of the real Weaviate when configured."""
    if request.param == "real":
        url = os.environ.get("SENSEI_TEST_WEAVIATE_URL")
        if not url:
            pytest.skip("SENSEI_TEST_WEAVIATE_URL is not set")
        return url, int(os.environ.get("SENSEI_TEST_WEAVIATE_GRPC_PORT", "50051"))
    endpoint: Endpoint = request.getfixturevalue("weaviate_url")
    return endpoint


@pytest.fixture
def collection_name() -> str:
    """A collection of this test only, so tests can share a real Weaviate."""
    return f"SenseiPatternTest{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def admin_client(weaviate_endpoint: Endpoint) -> AsyncIterator[weaviate.WeaviateAsyncClient]:
    """A plain client to inspect what the index wrote."""
    url, grpc_port = weaviate_endpoint
    parts = urlsplit(url)
    client = weaviate.use_async_with_custom(
        http_host=parts.hostname or "",
        http_port=parts.port or 80,
        http_secure=False,
        grpc_host=parts.hostname or "",
        grpc_port=grpc_port,
        grpc_secure=False,
        skip_init_checks=True,  # no call to pypi.org
    )
    await client.connect()
    try:
        yield client
    finally:
        await client.close()


class TestWeaviateIndex(IndexContract):
    """Every VectorIndex behaviour, on Weaviate."""

    @pytest.fixture
    async def index_factory(
        self,
        weaviate_endpoint: Endpoint,
        collection_name: str,
        admin_client: weaviate.WeaviateAsyncClient,
    ) -> AsyncIterator[IndexFactory]:
        url, grpc_port = weaviate_endpoint
        made: list[WeaviateIndex] = []

        async def make(dimension: int, embedder: str = EMBEDDER) -> VectorIndex:
            index = WeaviateIndex(
                url,
                grpc_port=grpc_port,
                collection=collection_name,
                dimension=dimension,
                embedder=embedder,
            )
            made.append(index)
            return index

        try:
            yield make
        finally:
            for index in made:
                await index.close()
            await admin_client.collections.delete(collection_name)

    async def test_backend_is_weaviate(self, index: VectorIndex) -> None:
        assert index.backend == "weaviate"

    async def test_ensure_ready_creates_a_cosine_collection_of_provided_vectors(
        self, index: VectorIndex, admin_client: weaviate.WeaviateAsyncClient, collection_name: str
    ) -> None:
        config = await admin_client.collections.export_config(collection_name)
        assert config.vector_config is not None
        vector = config.vector_config[VECTOR_NAME]
        assert isinstance(vector.vector_index_config, _VectorIndexConfigHNSW)
        assert (vector.vectorizer.vectorizer, vector.vector_index_config.distance_metric) == (
            "none",
            "cosine",
        )
        assert {p.name for p in config.properties} == {"pattern_type", "fingerprint"}

    async def test_object_uuid_is_the_embedding_id_with_type_and_fingerprint(
        self, index: VectorIndex, admin_client: weaviate.WeaviateAsyncClient, collection_name: str
    ) -> None:
        await index.upsert([entry("fp-stored", (1.0, 0.0, 0.0, 0.0), "type_cast")])
        page = await admin_client.collections.use(collection_name).query.fetch_objects(
            filters=Filter.by_id().equal(embedding_id_for("fp-stored"))
        )
        [stored] = page.objects
        assert stored.properties == {"pattern_type": "type_cast", "fingerprint": "fp-stored"}

    async def test_count_pages_past_one_batch(self, index: VectorIndex) -> None:
        await index.upsert(
            [entry(f"fp-{i}", (1.0, float(i), 0.0, 0.0)) for i in range(BATCH_SIZE + 7)]
        )
        assert await index.count() == BATCH_SIZE + 7

    async def test_a_second_replica_uses_the_existing_collection(
        self, index: VectorIndex, index_factory: IndexFactory
    ) -> None:
        await index.upsert([entry("shared", (1.0, 0.0, 0.0, 0.0))])
        replica = await index_factory(DIMENSION)
        await replica.ensure_ready()
        assert await replica.count() == 1


async def test_outage_is_unavailable_and_recovery_needs_no_restart(
    weaviate_server: WeaviateTestServer, collection_name: str
) -> None:
    index = WeaviateIndex(
        weaviate_server.url,
        grpc_port=weaviate_server.grpc_port,
        collection=collection_name,
        dimension=DIMENSION,
        # The bound on every call: an outage costs this much, not the client's minute of retries.
        timeout_seconds=1,
    )
    try:
        await index.ensure_ready()
        await index.upsert([entry("before", (1.0, 0.0, 0.0, 0.0))])
        await weaviate_server.stop()
        with pytest.raises(Unavailable):
            await index.search((1.0, 0.0, 0.0, 0.0), top_k=1)
        await weaviate_server.start()
        deadline = time.monotonic() + 15
        while True:
            try:
                [match] = await index.search((1.0, 0.0, 0.0, 0.0), top_k=1)
                break
            except Unavailable:
                # The gRPC channel reconnects on its own backoff; no restart of the index.
                assert time.monotonic() < deadline, "Weaviate is back but searches still fail"
        assert match.embedding_id == embedding_id_for("before")
    finally:
        await index.close()


async def test_unreachable_weaviate_is_unavailable() -> None:
    with socket.socket() as http_probe, socket.socket() as grpc_probe:
        http_probe.bind(("127.0.0.1", 0))
        grpc_probe.bind(("127.0.0.1", 0))
        http_port, grpc_port = http_probe.getsockname()[1], grpc_probe.getsockname()[1]
    index = WeaviateIndex(
        f"http://127.0.0.1:{http_port}", grpc_port=grpc_port, dimension=DIMENSION, timeout_seconds=2
    )
    try:
        with pytest.raises(Unavailable) as raised:
            await index.ensure_ready()
        assert raised.value.reason == "VECTOR_INDEX_UNAVAILABLE"
    finally:
        await index.close()


@pytest.mark.parametrize(
    ("url", "collection"),
    [
        ("ftp://host:8080", "SenseiPattern"),
        ("http://", "SenseiPattern"),
        ("http://h", "pattern"),
        ("http://h:50051", "SenseiPattern"),
    ],
)
def test_bad_settings_are_refused(url: str, collection: str) -> None:
    with pytest.raises(ValueError):
        WeaviateIndex(url, collection=collection, grpc_port=50051)
