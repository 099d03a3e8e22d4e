"""Channels to other Sensei services: request id and deadline carried along, retries.

Every channel a service opens to another service should come from `channel(address)` (or
pass `outgoing_interceptors()` and `internal_options()` to `grpc.aio.insecure_channel`):

- given an address from `ServiceConfig.address_of`, the channel speaks TLS and presents the
  client certificate when the `SENSEI_TLS_*` settings say so (shared/tls.py);

- each outgoing call sends the id of the request being served (`x-request-id`, set by
  `shared.interceptor`), so one id follows a request through every service it touches and
  shows in each one's JSON logs. A caller that sets `x-request-id` itself keeps its own;
  outside of any request (background loops) nothing is added and the next service makes up
  an id, unless the work runs inside `shared.context.request_id_scope(...)`;
- each outgoing call's timeout is min(the timeout its code asks for, the remaining time of
  the call being served), so no downstream call outlives its caller's deadline
  (docs/api-conventions.md#deadlines-and-retries);
- the channel retries UNAVAILABLE only, at most 3 attempts with exponential backoff, as
  `service_config.json` says (the same file is published for clients);
- when tracing is on (shared/tracing.py), each call is a client span and sends `traceparent`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import grpc

from shared import tracing
from shared.context import REQUEST_ID_HEADER, current_request_id, remaining_time
from shared.tls import Target

# The retry policy of internal channels, and the one published for clients.
SERVICE_CONFIG_FILE = Path(__file__).with_name("service_config.json")
SERVICE_CONFIG = json.dumps(json.loads(SERVICE_CONFIG_FILE.read_text()), separators=(",", ":"))
# gRPC refuses a timeout of 0; an expired caller deadline still fails the call at once.
_SHORTEST_TIMEOUT = 0.001


def channel(address: str, *, options: Sequence[tuple[str, Any]] | None = None) -> grpc.aio.Channel:
    """A `grpc.aio` channel to `address`: request id, bounded deadline, retries.

    TLS (and a client certificate) when `address` is a `shared.tls.Target` with settings,
    as `ServiceConfig.address_of` returns; plaintext otherwise.
    """
    tls = address.tls if isinstance(address, Target) else None
    if tls is not None:
        return grpc.aio.secure_channel(
            address,
            tls.channel_credentials(),
            options=[*internal_options(), *tls.channel_options(), *(options or ())],
            interceptors=outgoing_interceptors(),
        )
    return grpc.aio.insecure_channel(
        address,
        options=[*internal_options(), *(options or ())],
        interceptors=outgoing_interceptors(),
    )


def internal_options() -> list[tuple[str, Any]]:
    """Channel arguments of every internal channel: the retry policy."""
    return [("grpc.enable_retries", 1), ("grpc.service_config", SERVICE_CONFIG)]


def outgoing_interceptors() -> list[grpc.aio.ClientInterceptor]:
    """Client interceptors adding `x-request-id` (and, when tracing, `traceparent`) to calls
    of all four kinds."""
    # grpc.aio files each interceptor under one kind only, so one object per kind.
    return [
        *tracing.client_interceptors(),
        _UnaryUnaryRequestId(),
        _UnaryStreamRequestId(),
        _StreamUnaryRequestId(),
        _StreamStreamRequestId(),
    ]


def with_request_id(details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
    """`details` with the current request id in its metadata (unless one is there) and its
    timeout bounded by the served call's remaining time."""
    details = _bounded(details)
    request_id = current_request_id()
    if not request_id:
        return details
    metadata = grpc.aio.Metadata(*(details.metadata or ()))
    if REQUEST_ID_HEADER in metadata:
        return details
    metadata.add(REQUEST_ID_HEADER, request_id)
    replaced: grpc.aio.ClientCallDetails = details._replace(metadata=metadata)
    return replaced


def bounded_timeout(timeout: float | None) -> float | None:
    """min(`timeout`, the served call's remaining time); None when neither is set."""
    remaining = remaining_time()
    if remaining is None:
        return timeout
    remaining = max(remaining, _SHORTEST_TIMEOUT)
    return remaining if timeout is None else min(timeout, remaining)


def _bounded(details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
    timeout = bounded_timeout(details.timeout)
    if timeout == details.timeout:
        return details
    replaced: grpc.aio.ClientCallDetails = details._replace(timeout=timeout)
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
