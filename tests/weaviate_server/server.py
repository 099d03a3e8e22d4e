"""`WeaviateTestServer`: REST + gRPC on ephemeral 127.0.0.1 ports, stoppable and restartable."""

from __future__ import annotations

from types import TracebackType
from typing import Any

import grpc

from .grpc_api import add_health, mark_serving, weaviate_handler
from .http import HttpServer
from .rest import RestApi
from .store import Store, StoredObject

DEFAULT_VERSION = "1.33.0"


class WeaviateTestServer:
    """An in-memory Weaviate speaking the protocol weaviate-client 4.24 uses.

    Data lives in the object, not in the listeners: `stop()` then `start()` simulates
    an outage and recovery on the same ports with every collection and object kept.
    """

    def __init__(
        self,
        *,
        version: str = DEFAULT_VERSION,
        auto_schema: bool = True,
        default_limit: int = 10,
    ) -> None:
        self.store = Store(auto_schema=auto_schema)
        self._version = version
        self._default_limit = default_limit
        self._http = HttpServer(RestApi(self.store, version))
        self._grpc: grpc.aio.Server | None = None
        self._http_port: int | None = None
        self._grpc_port: int | None = None

    async def __aenter__(self) -> WeaviateTestServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def running(self) -> bool:
        return self._grpc is not None

    @property
    def http_port(self) -> int:
        if self._http_port is None:
            raise RuntimeError("the Weaviate test server has not been started")
        return self._http_port

    @property
    def grpc_port(self) -> int:
        if self._grpc_port is None:
            raise RuntimeError("the Weaviate test server has not been started")
        return self._grpc_port

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def url(self) -> str:
        """The REST base URL, e.g. `http://127.0.0.1:41234`."""
        return f"http://{self.host}:{self.http_port}"

    @property
    def grpc_address(self) -> str:
        return f"{self.host}:{self.grpc_port}"

    def connection_params(self) -> dict[str, Any]:
        """Keyword arguments for `weaviate.use_async_with_custom` / `connect_to_custom`."""
        return {
            "http_host": self.host,
            "http_port": self.http_port,
            "http_secure": False,
            "grpc_host": self.host,
            "grpc_port": self.grpc_port,
            "grpc_secure": False,
        }

    async def start(self) -> None:
        """Listen (first time on fresh ephemeral ports, afterwards on the same ones)."""
        if self.running:
            return
        self._http_port = await self._http.start(self._http_port or 0)
        server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
        server.add_generic_rpc_handlers(
            (weaviate_handler(self.store, default_limit=self._default_limit),)
        )
        health = add_health(server)
        try:
            self._grpc_port = server.add_insecure_port(f"{self.host}:{self._grpc_port or 0}")
            await server.start()
        except Exception:
            await self._http.close()
            raise
        await mark_serving(health)
        self._grpc = server

    async def stop(self) -> None:
        """Stop listening and drop open connections; data is kept for the next `start()`."""
        server, self._grpc = self._grpc, None
        await self._http.close()
        if server is not None:
            await server.stop(grace=None)

    def objects(self, collection: str) -> list[StoredObject]:
        """The stored objects of a collection, in insertion order (NotFound if it is absent)."""
        return self.store.objects(collection)

    def collections(self) -> list[str]:
        """The names of the existing collections."""
        return self.store.collection_names()

    def reset(self) -> None:
        """Drop every collection."""
        self.store.clear()
