"""A protocol-level, in-memory Weaviate for tests that use the real weaviate-client 4.24.

    async with WeaviateTestServer() as server:
        client = weaviate.use_async_with_custom(**server.connection_params())
        await client.connect()
        ...
        await server.stop()   # outage: connections refused, data kept
        await server.start()  # recovery on the same ports
        server.objects("Pattern")  # what is stored, as StoredObject values

REST: /v1/meta, /v1/.well-known/{ready,live}, /v1/schema[/{Name}], /v1/objects[/{Name}/{id}].
gRPC: grpc.health.v1.Health, weaviate.v1.Weaviate/{Search,BatchObjects,BatchDelete,Aggregate}
(Aggregate: total_count only). Vectors are self-provided only (vectorizer "none").
Anything else answers 501 / UNIMPLEMENTED rather than pretending.
"""

from .errors import AlreadyExists, InvalidInput, NotFound, StoreError, Unsupported
from .server import DEFAULT_VERSION, WeaviateTestServer
from .store import StoredObject

__all__ = [
    "DEFAULT_VERSION",
    "AlreadyExists",
    "InvalidInput",
    "NotFound",
    "StoreError",
    "StoredObject",
    "Unsupported",
    "WeaviateTestServer",
]
