"""Fixtures of the pattern tests: the Weaviate test server, and the running pattern service
on each vector index backend.

`deployment` is one running org + pattern service per backend, shared by the tests of the
package that only touch their own patterns (each test uses its own fingerprints and
types, and filters by type). Tests about the whole index (outages, rebuilds, counts) start
their own with `deploy(suite, backend)`.

Backends: `pgvector` (the embedded default), `weaviate` (the protocol-level test server),
and `real-weaviate` (marked `weaviate`; runs only when SENSEI_TEST_WEAVIATE_URL, plus
SENSEI_TEST_WEAVIATE_GRPC_PORT (default 50051), names a real Weaviate).
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import grpc
import pytest
import weaviate

from sensei.migration.v1 import migration_pb2, migration_pb2_grpc
from sensei.pattern.v1 import pattern_pb2, pattern_pb2_grpc
from services.pattern.index_weaviate import DEFAULT_COLLECTION
from tests.conftest import RUN_ID, Cluster
from tests.harness import Identity, Suite
from tests.weaviate_server.server import WeaviateTestServer

DIMENSION = 256
# Bounds every wait on the index in tests, so outage tests never sit out long retries.
WEAVIATE_TIMEOUT_SECONDS = "1"
SERVICE_ENV = {
    "SENSEI_PATTERN_INDEXER_POLL_SECONDS": "1",
    "SENSEI_PATTERN_INDEXER_MAX_BACKOFF_SECONDS": "0.3",
    "SENSEI_PATTERN_WEAVIATE_TIMEOUT_SECONDS": WEAVIATE_TIMEOUT_SECONDS,
}
BACKENDS = [
    pytest.param("pgvector"),
    pytest.param("weaviate"),
    pytest.param("real-weaviate", marks=pytest.mark.weaviate),
]


@pytest.fixture
async def weaviate_server() -> AsyncIterator[WeaviateTestServer]:
    """An in-memory Weaviate on ephemeral ports, for this test only."""
    async with WeaviateTestServer() as server:
        yield server


@pytest.fixture
async def weaviate_url(weaviate_server: WeaviateTestServer) -> tuple[str, int]:
    """(REST base URL, gRPC port) of the test server."""
    return weaviate_server.url, weaviate_server.grpc_port


def real_weaviate() -> tuple[str, int] | None:
    """(REST URL, gRPC port) of the real Weaviate to test against, if one is configured."""
    url = os.environ.get("SENSEI_TEST_WEAVIATE_URL")
    if not url:
        return None
    return url, int(os.environ.get("SENSEI_TEST_WEAVIATE_GRPC_PORT", "50051"))


# --- vectors --------------------------------------------------------------------------


def vector(*head: float) -> list[float]:
    """A vector of the service's dimension: `head`, then zeros."""
    return [*head, *([0.0] * (DIMENSION - len(head)))]


def pattern_vector(values: Sequence[float]) -> pattern_pb2.Vector:
    """The Vector message of `values`."""
    return pattern_pb2.Vector(values=list(values))


# --- deployments ----------------------------------------------------------------------


@dataclass
class Deployment:
    """A running pattern service (and org), its index backend, and callers of every kind."""

    suite: Suite
    backend: str
    stub: pattern_pb2_grpc.PatternServiceStub
    service: Identity
    admin: Identity
    viewer: Identity
    operator: Identity
    weaviate: WeaviateTestServer | None = None
    weaviate_endpoint: tuple[str, int] | None = None
    collection: str = DEFAULT_COLLECTION
    _closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    # --- calls ------------------------------------------------------------------------

    async def upsert(
        self,
        fingerprint: str,
        pattern_type: str = "column_rename",
        *,
        text: str | None = None,
        values: Sequence[float] | None = None,
        metadata: dict[str, Any] | None = None,
        who: Identity | None = None,
    ) -> pattern_pb2.UpsertPatternResponse:
        """UpsertPattern with a text or a vector (by the service principal by default)."""
        request = pattern_pb2.UpsertPatternRequest(fingerprint=fingerprint, type=pattern_type)
        if text is not None:
            request.text = text
        if values is not None:
            request.embedding.values.extend(values)
        if metadata is not None:
            request.metadata.update(metadata)
        response: pattern_pb2.UpsertPatternResponse = await self.stub.UpsertPattern(
            request, metadata=(who or self.service).metadata
        )
        return response

    async def migration(self, who: Identity | None = None) -> str:
        """The name of a new migration of `who`'s organization (the admin's by default):
        RecordPatternOutcome counts once per (pattern, migration)."""
        caller = who or self.admin
        stub = self.suite.stub("migration", migration_pb2_grpc.MigrationServiceStub)
        response = await stub.CreateMigration(
            migration_pb2.CreateMigrationRequest(
                parent=caller.org_name,
                migration=migration_pb2.Migration(display_name=unique("outcome")),
            ),
            metadata=caller.metadata,
        )
        return str(response.migration.name)

    async def get(self, name: str) -> pattern_pb2.Pattern:
        """GetPattern by name."""
        response = await self.stub.GetPattern(
            pattern_pb2.GetPatternRequest(name=name), metadata=self.viewer.metadata
        )
        pattern: pattern_pb2.Pattern = response.pattern
        return pattern

    async def search(
        self,
        *,
        text: str | None = None,
        values: Sequence[float] | None = None,
        pattern_type: str = "",
        top_k: int = 0,
        min_similarity: float | None = None,
    ) -> list[pattern_pb2.SearchPatternsResult]:
        """SearchPatterns by text or vector, as a viewer."""
        request = pattern_pb2.SearchPatternsRequest(type=pattern_type, top_k=top_k)
        if text is not None:
            request.text = text
        if values is not None:
            request.vector.values.extend(values)
        if min_similarity is not None:
            request.min_similarity = min_similarity
        response = await self.stub.SearchPatterns(request, metadata=self.viewer.metadata)
        return list(response.results)

    async def index_info(self) -> pattern_pb2.PatternIndex:
        """GetPatternIndex."""
        response = await self.stub.GetPatternIndex(
            pattern_pb2.GetPatternIndexRequest(), metadata=self.viewer.metadata
        )
        index: pattern_pb2.PatternIndex = response.index
        return index

    async def indexed(self, *names: str) -> None:
        """Waits until every named pattern is INDEXED."""

        async def all_indexed() -> bool:
            states = [(await self.get(name)).index_state for name in names]
            return all(state == pattern_pb2.INDEX_STATE_INDEXED for state in states)

        await eventually(all_indexed)

    # --- the index behind the service -------------------------------------------------

    async def db(self) -> asyncpg.Connection:
        """A connection to the test database with the pattern schema first on the path."""
        return await asyncpg.connect(
            self.suite.database_url, server_settings={"search_path": "pattern"}
        )

    async def fetchval(self, sql: str, *args: Any) -> Any:
        """The single value a query returns."""
        conn = await self.db()
        try:
            return await conn.fetchval(sql, *args)
        finally:
            await conn.close()

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        """The rows a query returns."""
        conn = await self.db()
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    async def index_ids(self) -> set[str]:
        """The embedding ids the vector index holds."""
        if self.backend == "pgvector":
            conn = await self.db()
            try:
                rows = await conn.fetch("SELECT embedding_id::text FROM pattern_vectors")
            finally:
                await conn.close()
            return {row["embedding_id"] for row in rows}
        if self.weaviate is not None:
            return {obj.uuid for obj in self.weaviate.objects(self.collection)}
        async with self._real_client() as client:
            collection = client.collections.use(self.collection)
            return {str(obj.uuid) async for obj in collection.iterator()}

    async def wipe_index(self) -> None:
        """Deletes every vector behind the service's back (the collection or table stays)."""
        if self.backend == "pgvector":
            conn = await self.db()
            try:
                await conn.execute("DELETE FROM pattern_vectors")
            finally:
                await conn.close()
        elif self.weaviate is not None:
            self.weaviate.store.delete_objects(
                self.collection, [obj.uuid for obj in self.weaviate.objects(self.collection)]
            )
        else:
            ids = await self.index_ids()
            async with self._real_client() as client:
                collection = client.collections.use(self.collection)
                for object_id in ids:
                    await collection.data.delete_by_id(object_id)

    def _real_client(self) -> weaviate.WeaviateAsyncClient:
        assert self.weaviate_endpoint is not None
        url, grpc_port = self.weaviate_endpoint
        parts = urlsplit(url)
        return weaviate.use_async_with_custom(
            http_host=parts.hostname or "",
            http_port=parts.port or 80,
            http_secure=False,
            grpc_host=parts.hostname or "",
            grpc_port=grpc_port,
            grpc_secure=False,
            skip_init_checks=True,
        )

    async def close(self) -> None:
        """Stops the pattern service, then whatever the deployment started for it."""
        if "pattern" in self.suite.running:
            await self.suite.stop("pattern")
        for closer in reversed(self._closers):
            await closer()


async def deploy(
    suite: Suite,
    backend: str,
    weaviate_server: WeaviateTestServer | None = None,
    env: dict[str, str] | None = None,
) -> Deployment:
    """Starts the pattern service of `suite` on `backend`; close() the result when done.

    For `weaviate`, pass the test server to use (so the test can stop and start it), or
    one is started for the deployment. `real-weaviate` uses a collection of its own.
    """
    settings = dict(SERVICE_ENV)
    closers: list[Callable[[], Awaitable[None]]] = []
    collection = DEFAULT_COLLECTION
    endpoint: tuple[str, int] | None = None
    if backend == "weaviate":
        if weaviate_server is None:
            weaviate_server = WeaviateTestServer()
            await weaviate_server.start()
            closers.append(weaviate_server.stop)
        endpoint = (weaviate_server.url, weaviate_server.grpc_port)
    elif backend == "real-weaviate":
        endpoint = real_weaviate()
        if endpoint is None:
            pytest.skip("SENSEI_TEST_WEAVIATE_URL is not set")
        collection = f"SenseiPatternTest{uuid.uuid4().hex[:12]}"
        settings["SENSEI_PATTERN_WEAVIATE_COLLECTION"] = collection
        settings["SENSEI_PATTERN_WEAVIATE_TIMEOUT_SECONDS"] = "10"
    if endpoint is not None:
        settings["SENSEI_PATTERN_WEAVIATE_URL"] = endpoint[0]
        settings["SENSEI_PATTERN_WEAVIATE_GRPC_PORT"] = str(endpoint[1])
    settings.update(env or {})
    # RecordPatternOutcome checks the migration it names with the migration service.
    await suite.start("migration", "pattern", env=settings)
    deployment = Deployment(
        suite=suite,
        backend=backend,
        stub=suite.stub("pattern", pattern_pb2_grpc.PatternServiceStub),
        service=await suite.service(),
        admin=await suite.user("ADMIN"),
        viewer=await suite.user("VIEWER"),
        operator=await suite.operator(),
        weaviate=weaviate_server,
        weaviate_endpoint=endpoint,
        collection=collection,
        _closers=closers,
    )
    if backend == "real-weaviate":

        async def drop_collection() -> None:
            async with deployment._real_client() as client:
                await client.collections.delete(collection)

        closers.append(drop_collection)
    return deployment


@pytest.fixture(scope="package", params=BACKENDS)
async def deployment(
    request: pytest.FixtureRequest,
    postgres: Cluster,
    template_database: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Deployment]:
    """The pattern service on one backend, shared by the package's tests (see the module)."""
    backend: str = request.param
    if backend == "real-weaviate" and real_weaviate() is None:
        pytest.skip("SENSEI_TEST_WEAVIATE_URL is not set")
    database = f"sensei_t_{RUN_ID}_pattern_{backend.replace('-', '_')}"
    admin = await asyncpg.connect(postgres.dsn("postgres"))
    try:
        await admin.execute(f'CREATE DATABASE "{database}" TEMPLATE "{template_database}"')
        suite = Suite(postgres.dsn(database), Path(tmp_path_factory.mktemp("pattern")))
        try:
            deployed = await deploy(suite, backend)
            try:
                yield deployed
            finally:
                await deployed.close()
        finally:
            await suite.close()
            await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture(params=BACKENDS)
async def fresh(request: pytest.FixtureRequest, suite: Suite) -> AsyncIterator[Deployment]:
    """A pattern service of this test only, on each backend."""
    deployed = await deploy(suite, request.param)
    try:
        yield deployed
    finally:
        await deployed.close()


# --- helpers --------------------------------------------------------------------------


def unique(prefix: str) -> str:
    """A fingerprint or type no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def eventually(
    condition: Callable[[], Awaitable[bool]], within: float = 20.0, interval: float = 0.05
) -> None:
    """Polls `condition` until it holds; fails the test after `within` seconds."""
    deadline = time.monotonic() + within
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within}s")
        await asyncio.sleep(interval)


async def rpc_error(call: Awaitable[Any]) -> grpc.aio.AioRpcError:
    """The error an RPC fails with (fails the test if it succeeds)."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value
