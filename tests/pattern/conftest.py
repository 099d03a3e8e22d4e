"""Fixtures of the pattern tests: the protocol-level Weaviate test server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.weaviate_server.server import WeaviateTestServer


@pytest.fixture
async def weaviate_server() -> AsyncIterator[WeaviateTestServer]:
    """An in-memory Weaviate on ephemeral ports, for this test only."""
    async with WeaviateTestServer() as server:
        yield server


@pytest.fixture
async def weaviate_url(weaviate_server: WeaviateTestServer) -> tuple[str, int]:
    """(REST base URL, gRPC port) of the test server."""
    return weaviate_server.url, weaviate_server.grpc_port
