"""The gRPC front end: `weaviate.v1.Weaviate` (data plane) and `grpc.health.v1.Health`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from weaviate.proto.v1 import (
    aggregate_pb2,
    batch_delete_pb2,
    batch_pb2,
    search_get_pb2,
)

from . import search
from .errors import AlreadyExists, InvalidInput, NotFound, StoreError, Unsupported
from .store import Store

SERVICE_NAME = "weaviate.v1.Weaviate"

_CODES: list[tuple[type[StoreError], grpc.StatusCode]] = [
    (NotFound, grpc.StatusCode.NOT_FOUND),
    (AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
    (Unsupported, grpc.StatusCode.UNIMPLEMENTED),
    (InvalidInput, grpc.StatusCode.INVALID_ARGUMENT),
]


def _status_of(error: StoreError) -> grpc.StatusCode:
    for kind, code in _CODES:
        if isinstance(error, kind):
            return code
    return grpc.StatusCode.INVALID_ARGUMENT


Handler = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]


def _unary(run: Callable[[Any], Any]) -> Handler:
    async def handle(request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            return run(request)
        except StoreError as e:
            await context.abort(_status_of(e), str(e))

    return handle


def weaviate_handler(store: Store, *, default_limit: int) -> grpc.GenericRpcHandler:
    """The implemented methods of `weaviate.v1.Weaviate`; others answer UNIMPLEMENTED."""
    methods: dict[str, tuple[Handler, Any, Any]] = {
        "Search": (
            _unary(lambda r: search.search(store, r, default_limit)),
            search_get_pb2.SearchRequest.FromString,
            search_get_pb2.SearchReply.SerializeToString,
        ),
        "BatchObjects": (
            _unary(lambda r: search.batch_objects(store, r)),
            batch_pb2.BatchObjectsRequest.FromString,
            batch_pb2.BatchObjectsReply.SerializeToString,
        ),
        "BatchDelete": (
            _unary(lambda r: search.batch_delete(store, r)),
            batch_delete_pb2.BatchDeleteRequest.FromString,
            batch_delete_pb2.BatchDeleteReply.SerializeToString,
        ),
        "Aggregate": (
            _unary(lambda r: search.aggregate(store, r)),
            aggregate_pb2.AggregateRequest.FromString,
            aggregate_pb2.AggregateReply.SerializeToString,
        ),
    }
    return grpc.method_handlers_generic_handler(
        SERVICE_NAME,
        {
            name: grpc.unary_unary_rpc_method_handler(
                handler, request_deserializer=decode, response_serializer=encode
            )
            for name, (handler, decode, encode) in methods.items()
        },
    )


def add_health(server: grpc.aio.Server) -> health.aio.HealthServicer:
    """Serve `grpc.health.v1.Health`, SERVING for `""` and the Weaviate service."""
    servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    return servicer


async def mark_serving(servicer: health.aio.HealthServicer) -> None:
    for name in ("", SERVICE_NAME):
        await servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
