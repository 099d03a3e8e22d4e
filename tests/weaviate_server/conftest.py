"""Fixtures of the Weaviate test server's own tests: a server and a real async client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import weaviate
from weaviate.config import AdditionalConfig, GrpcConfig

from .server import WeaviateTestServer


@pytest.fixture
async def weaviate_server() -> AsyncIterator[WeaviateTestServer]:
    """An in-memory Weaviate on ephemeral ports, for this test only."""
    async with WeaviateTestServer() as server:
        yield server


@pytest.fixture
async def weaviate_client(
    weaviate_server: WeaviateTestServer, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[weaviate.WeaviateAsyncClient]:
    """weaviate-client 4.24 connected with its full init checks (meta, gRPC health)."""
    # connect() also asks PyPI for the latest client version; keep the test off the network.
    monkeypatch.setattr(
        "weaviate.connect.v4.PYPI_PACKAGE_URL", f"{weaviate_server.url}/pypi/weaviate-client/json"
    )
    # Reconnect quickly after a simulated outage (gRPC's default backoff starts at 1 s).
    quick_reconnect = GrpcConfig(
        channel_options=[
            ("grpc.initial_reconnect_backoff_ms", 50),
            ("grpc.min_reconnect_backoff_ms", 50),
            ("grpc.max_reconnect_backoff_ms", 100),
        ]
    )
    connected = weaviate.use_async_with_custom(
        **weaviate_server.connection_params(),
        additional_config=AdditionalConfig(grpc_config=quick_reconnect),
    )
    await connected.connect()
    try:
        yield connected
    finally:
        await connected.close()
