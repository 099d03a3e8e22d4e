"""Channels to other Sensei services that carry the request id along.

Every channel a service opens to another service should come from `channel(address)` (or
pass `outgoing_interceptors()` to `grpc.aio.insecure_channel`): each outgoing call then
sends the id of the request being served (`x-request-id`, set by `shared.interceptor`), so one
id follows a request through every service it touches and shows in each one's JSON logs.
A caller that sets `x-request-id` itself keeps its own; outside of any request (background
loops) nothing is added and the next service makes up an id, unless the work runs inside
`shared.context.request_id_scope(...)`.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Awaitable, Callable, Sequence
from typing import Any

import grpc

from shared.context import REQUEST_ID_HEADER, current_request_id


def channel(address: str, *, options: Sequence[tuple[str, Any]] | None = None) -> grpc.aio.Channel:
    """An insecure `grpc.aio` channel to `address` that propagates the request id."""
    return grpc.aio.insecure_channel(
        address, options=list(options or ()), interceptors=outgoing_interceptors()
    )


def outgoing_interceptors() -> list[grpc.aio.ClientInterceptor]:
    """Client interceptors adding `x-request-id` to calls of all four kinds."""
    # grpc.aio files each interceptor under one kind only, so one object per kind.
    return [
        _UnaryUnaryRequestId(),
        _UnaryStreamRequestId(),
        _StreamUnaryRequestId(),
        _StreamStreamRequestId(),
    ]


def with_request_id(details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
    """`details` with the current request id in its metadata (unless one is there)."""
    request_id = current_request_id()
    if not request_id:
        return details
    metadata = grpc.aio.Metadata(*(details.metadata or ()))
    if REQUEST_ID_HEADER in metadata:
        return details
    metadata.add(REQUEST_ID_HEADER, request_id)
    replaced: grpc.aio.ClientCallDetails = details._replace(metadata=metadata)
    return replaced


Continuation = Callable[[grpc.aio.ClientCallDetails, Any], Awaitable[Any]]


class _UnaryUnaryRequestId(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    async def intercept_unary_unary(
        self,
        continuation: Continuation,
        client_call_details: grpc.aio.ClientCallDetails,
        request: Any,
    ) -> Any:
        return await continuation(with_request_id(client_call_details), request)


class _UnaryStreamRequestId(grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[misc]
    async def intercept_unary_stream(
        self,
        continuation: Continuation,
        client_call_details: grpc.aio.ClientCallDetails,
        request: Any,
    ) -> Any:
        return await continuation(with_request_id(client_call_details), request)


class _StreamUnaryRequestId(grpc.aio.StreamUnaryClientInterceptor):  # type: ignore[misc]
    async def intercept_stream_unary(
        self,
        continuation: Continuation,
        client_call_details: grpc.aio.ClientCallDetails,
        request_iterator: AsyncIterable[Any],
    ) -> Any:
        return await continuation(with_request_id(client_call_details), request_iterator)


class _StreamStreamRequestId(grpc.aio.StreamStreamClientInterceptor):  # type: ignore[misc]
    async def intercept_stream_stream(
        self,
        continuation: Continuation,
        client_call_details: grpc.aio.ClientCallDetails,
        request_iterator: AsyncIterable[Any],
    ) -> Any:
        return await continuation(with_request_id(client_call_details), request_iterator)
