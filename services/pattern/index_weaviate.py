"""The vector index in an external Weaviate, through weaviate-client v4's async API.

One collection (`SenseiPattern` by default) with self-provided vectors in one named vector,
HNSW over cosine distance, and two text properties, `pattern_type` (for filtered search) and
`fingerprint` (so an operator can tell objects apart). The object uuid is the pattern's
embedding id. The vectors are the service's own embedder's (Weaviate runs no vectorizer),
and the collection's description names that embedder. Calls stay within those listed in
docs/architecture.md#weaviate-calls: connect (REST meta, then our own readiness check, REST
ready; the client's init checks are off because they would also ask pypi.org for its latest
version), collections over REST `/v1/schema`, single deletes over REST `/v1/objects`,
batches over gRPC `BatchObjects` and `BatchDelete`, queries over gRPC `Search` (the first of
which also proves gRPC reachable). Any failure to reach Weaviate surfaces as
`shared.errors.Unavailable` (retryable), after at most `timeout_seconds`.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
import warnings
from collections.abc import AsyncIterator, Sequence
from typing import Any
from urllib.parse import urlsplit

from authlib.deprecate import AuthlibDeprecationWarning

with warnings.catch_warnings():
    # weaviate-client imports Authlib's httpx integration, which warns that httpx (what
    # weaviate-client uses) is deprecated for httpx2: nothing we can act on (`make run`).
    warnings.filterwarnings("ignore", "The httpx module is deprecated", AuthlibDeprecationWarning)
    import weaviate
from weaviate.classes.config import (
    Configure,
    DataType,
    Property,
    Tokenization,
    VectorDistances,
)
from weaviate.classes.data import DataObject
from weaviate.classes.init import AdditionalConfig, Auth, GrpcConfig, Timeout
from weaviate.classes.query import Filter, MetadataQuery
from weaviate.collections import CollectionAsync
from weaviate.exceptions import WeaviateBaseError, WeaviateInvalidInputError

from services.pattern.embedder import DEFAULT_DIMENSION
from services.pattern.index import (
    Backend,
    IndexDimensionMismatch,
    IndexEmbedderMismatch,
    IndexEntry,
    IndexMatch,
    IndexWriteFailed,
    check_vector,
)
from shared.errors import Unavailable

DEFAULT_COLLECTION = "SenseiPattern"
DEFAULT_GRPC_PORT = 50051
# The one named vector of the collection; named explicitly so writes and queries agree.
VECTOR_NAME = "default"
# The collection's description; its tail names the embedder of the vectors.
_DESCRIPTION = "Sensei migration patterns (vectors only; PostgreSQL is the truth); embedder: "
# Objects per BatchObjects / BatchDelete call and per page when counting.
BATCH_SIZE = 500
# gRPC backs off reconnecting for up to 2 minutes by default; a Weaviate back from an
# outage should serve the indexer and searches within seconds.
_RECONNECT_QUICKLY = [
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2000),
]


class WeaviateIndex:
    """VectorIndex over one Weaviate collection; connects lazily and reconnects after failures."""

    def __init__(
        self,
        url: str,
        *,
        grpc_port: int = DEFAULT_GRPC_PORT,
        grpc_host: str | None = None,
        collection: str = DEFAULT_COLLECTION,
        dimension: int = DEFAULT_DIMENSION,
        api_key: str | None = None,
        timeout_seconds: float = 10.0,
        embedder: str = "unspecified",
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"Weaviate URL must look like http://host:8080, got {url!r}")
        if not collection[:1].isupper() or not collection.isalnum():
            raise ValueError(
                f"Weaviate collection name must be capitalized alphanumerics: {collection!r}"
            )
        if dimension < 2:
            raise ValueError(f"vector dimension must be at least 2, got {dimension}")
        self._secure = parts.scheme == "https"
        self._http_host = parts.hostname
        self._http_port = parts.port or (443 if self._secure else 80)
        self._grpc_host = grpc_host or parts.hostname
        if (self._grpc_host, grpc_port) == (self._http_host, self._http_port):
            raise ValueError(f"Weaviate gRPC and REST cannot share {self._http_host}:{grpc_port}")
        self._grpc_port = grpc_port
        self._collection_name = collection
        self._dimension = dimension
        self._embedder = embedder
        self._api_key = api_key
        self._timeout_seconds = timeout_seconds
        self._client: weaviate.WeaviateAsyncClient | None = None
        self._ready = False
        self._lock = asyncio.Lock()

    @property
    def backend(self) -> Backend:
        """Always "weaviate"."""
        return "weaviate"

    @property
    def dimension(self) -> int:
        """Length of every vector in the index."""
        return self._dimension

    @property
    def embedder(self) -> str:
        """Name of the embedder whose vectors the collection holds (its description)."""
        return self._embedder

    @property
    def collection_name(self) -> str:
        """Name of the Weaviate collection holding the vectors."""
        return self._collection_name

    async def ensure_ready(self) -> None:
        """Connects, creates the collection if absent and checks the stored vectors' dimension."""
        async with self._lock:
            if self._ready:
                return
            try:
                async with self._weaviate_call():
                    client = await self._connected_client()
                    if not await client.collections.exists(self._collection_name):
                        await self._create_collection(client)
                    found = await self._stored_dimension(client)
                    recorded = await self._recorded_embedder(client)
                    if found is None and recorded != self._embedder:
                        # Empty: nothing to mix; adopt the configured embedder.
                        await client.collections.delete(self._collection_name)
                        await self._create_collection(client)
                        recorded = self._embedder
            except Unavailable:
                await self._drop_client()
                raise
            if found is not None and found != self._dimension:
                raise IndexDimensionMismatch(expected=self._dimension, found=found)
            if recorded != self._embedder:
                raise IndexEmbedderMismatch(expected=self._embedder, found=recorded)
            self._ready = True

    async def upsert(self, entries: Sequence[IndexEntry]) -> None:
        """Writes the entries with gRPC BatchObjects, replacing objects with the same uuid."""
        latest = {entry.embedding_id: entry for entry in entries}
        for entry in latest.values():
            check_vector(entry.vector, self._dimension)
        batch = list(latest.values())
        collection = await self._collection()
        for start in range(0, len(batch), BATCH_SIZE):
            chunk = batch[start : start + BATCH_SIZE]
            objects: list[DataObject[dict[str, Any], None]] = [
                DataObject(
                    properties={"pattern_type": e.pattern_type, "fingerprint": e.fingerprint},
                    uuid=e.embedding_id,
                    vector={VECTOR_NAME: list(e.vector)},
                )
                for e in chunk
            ]
            async with self._weaviate_call():
                result = await collection.data.insert_many(objects)
            if result.errors:
                index, first = next(iter(result.errors.items()))
                raise IndexWriteFailed(
                    f"Weaviate refused {len(result.errors)} of {len(chunk)} objects;"
                    f" first ({chunk[index].embedding_id}): {first.message}"
                )

    async def delete(self, embedding_ids: Sequence[uuid.UUID]) -> None:
        """Deletes one object over REST, several with gRPC BatchDelete; absent ids are ignored."""
        ids = list(dict.fromkeys(embedding_ids))
        if not ids:
            return
        collection = await self._collection()
        if len(ids) == 1:
            async with self._weaviate_call():
                await collection.data.delete_by_id(ids[0])
            return
        for start in range(0, len(ids), BATCH_SIZE):
            chunk = ids[start : start + BATCH_SIZE]
            async with self._weaviate_call():
                result = await collection.data.delete_many(where=Filter.by_id().contains_any(chunk))
            if result.failed:
                raise IndexWriteFailed(
                    f"Weaviate failed to delete {result.failed} of {len(chunk)} objects"
                )

    async def search(
        self, vector: Sequence[float], top_k: int, pattern_type: str | None = None
    ) -> list[IndexMatch]:
        """near_vector over gRPC Search; similarity = 1 − cosine distance, best first."""
        check_vector(vector, self._dimension)
        if top_k <= 0:
            return []
        collection = await self._collection()
        async with self._weaviate_call():
            response = await collection.query.near_vector(
                near_vector=list(vector),
                limit=top_k,
                filters=(
                    Filter.by_property("pattern_type").equal(pattern_type)
                    if pattern_type is not None
                    else None
                ),
                target_vector=VECTOR_NAME,
                return_metadata=MetadataQuery(distance=True),
                return_properties=False,
            )
        matches = [
            IndexMatch(obj.uuid, 1.0 - float(obj.metadata.distance or 0.0))
            for obj in response.objects
        ]
        return sorted(matches, key=lambda match: match.similarity, reverse=True)

    async def count(self) -> int:
        """Counts objects by paging their uuids with fetch_objects (gRPC Search) — O(n)."""
        collection = await self._collection()
        total = 0
        # Cursor order (by uuid) from the first page on: start after the smallest uuid.
        after = uuid.UUID(int=0)
        while True:
            async with self._weaviate_call():
                page = await collection.query.fetch_objects(
                    limit=BATCH_SIZE, after=after, return_properties=False
                )
            total += len(page.objects)
            if len(page.objects) < BATCH_SIZE:
                return total
            after = page.objects[-1].uuid

    async def reset(self) -> None:
        """Deletes the collection (REST) and creates it again, empty."""
        async with self._lock:
            self._ready = False
            try:
                async with self._weaviate_call():
                    client = await self._connected_client()
                    await client.collections.delete(self._collection_name)
                    await self._create_collection(client)
            except Unavailable:
                await self._drop_client()
                raise
            self._ready = True

    async def close(self) -> None:
        """Closes the client's HTTP and gRPC connections."""
        async with self._lock:
            self._ready = False
            await self._drop_client()

    @contextlib.asynccontextmanager
    async def _weaviate_call(self) -> AsyncIterator[None]:
        """Bounds a call by the timeout (the client itself retries for a minute) and turns
        failures to reach Weaviate into Unavailable."""
        try:
            async with asyncio.timeout(self._timeout_seconds):
                yield
        except TimeoutError as error:
            raise Unavailable(
                f"vector index (Weaviate) did not answer within {self._timeout_seconds}s",
                reason="VECTOR_INDEX_UNAVAILABLE",
            ) from error
        except WeaviateBaseError as error:
            raise _unavailable(error) from error

    async def _collection(self) -> CollectionAsync[dict[str, Any], None]:
        await self.ensure_ready()
        if self._client is None:
            raise Unavailable("vector index (Weaviate) closed", reason="VECTOR_INDEX_UNAVAILABLE")
        # A fresh handle each time: handles from before a reset() no longer work.
        return self._client.collections.use(self._collection_name)

    async def _connected_client(self) -> weaviate.WeaviateAsyncClient:
        if self._client is None:
            timeout = self._timeout_seconds
            self._client = weaviate.use_async_with_custom(
                http_host=self._http_host,
                http_port=self._http_port,
                http_secure=self._secure,
                grpc_host=self._grpc_host,
                grpc_port=self._grpc_port,
                grpc_secure=self._secure,
                auth_credentials=Auth.api_key(self._api_key) if self._api_key else None,
                additional_config=AdditionalConfig(
                    timeout=Timeout(init=timeout, query=timeout, insert=timeout),
                    grpc_config=GrpcConfig(channel_options=_RECONNECT_QUICKLY),
                ),
                # The client's own checks would also ask pypi.org for its latest version;
                # we talk to nothing outside our stack, and check readiness ourselves.
                skip_init_checks=True,
            )
        if not self._client.is_connected():
            await self._client.connect()  # GET /v1/meta
            if not await self._client.is_ready():  # GET /v1/.well-known/ready
                raise Unavailable(
                    "vector index (Weaviate) is not ready", reason="VECTOR_INDEX_UNAVAILABLE"
                )
        return self._client

    async def _drop_client(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            # It is discarded because it failed; a failing close changes nothing.
            with contextlib.suppress(WeaviateBaseError):
                await client.close()

    async def _create_collection(self, client: weaviate.WeaviateAsyncClient) -> None:
        try:
            await client.collections.create(
                self._collection_name,
                description=_DESCRIPTION + self._embedder,
                properties=[
                    Property(
                        name="pattern_type",
                        data_type=DataType.TEXT,
                        tokenization=Tokenization.FIELD,
                    ),
                    Property(
                        name="fingerprint", data_type=DataType.TEXT, tokenization=Tokenization.FIELD
                    ),
                ],
                vector_config=Configure.Vectors.self_provided(
                    name=VECTOR_NAME,
                    vector_index_config=Configure.VectorIndex.hnsw(
                        distance_metric=VectorDistances.COSINE
                    ),
                ),
            )
        except WeaviateBaseError:
            # Another replica may have created it between our check and our create.
            if not await client.collections.exists(self._collection_name):
                raise

    async def _recorded_embedder(self, client: weaviate.WeaviateAsyncClient) -> str | None:
        config = await client.collections.use(self._collection_name).config.get()
        description = config.description or ""
        return (
            description.removeprefix(_DESCRIPTION) if description.startswith(_DESCRIPTION) else None
        )

    async def _stored_dimension(self, client: weaviate.WeaviateAsyncClient) -> int | None:
        collection = client.collections.use(self._collection_name)
        page = await collection.query.fetch_objects(
            limit=1, include_vector=[VECTOR_NAME], return_properties=False
        )
        if not page.objects:
            return None
        stored = page.objects[0].vector.get(VECTOR_NAME)
        return len(stored) if isinstance(stored, list) else None


def _unavailable(error: WeaviateBaseError) -> Exception:
    if isinstance(error, WeaviateInvalidInputError):
        # The client rejected our own arguments before sending anything: a bug, not an outage.
        return RuntimeError(f"invalid Weaviate call: {error}")
    return Unavailable(
        f"vector index (Weaviate) unavailable: {error}", reason="VECTOR_INDEX_UNAVAILABLE"
    )
