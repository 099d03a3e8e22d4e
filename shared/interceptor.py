"""The one server interceptor of every service: access rules, request ids, error mapping.

For every RPC of ours it (1) authenticates the caller and enforces the method's declared
access rule, (2) runs the handler, and (3) maps what the handler raised onto a rich
`google.rpc.Status`: domain errors keep their code and details; a lost database or a
downed dependency is UNAVAILABLE; anything else is a bug and becomes INTERNAL with a trace
id that is logged with the stack. It works the same for unary and server-streaming calls.
Every call's outcome (status code and duration) goes to the service's RPC metrics and, at
DEBUG level, to the log, with the request id of the call.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from grpc_status import rpc_status

from shared import tracing
from shared.auth import AccessControl
from shared.context import REQUEST_ID_HEADER, begin_call, current_request_id
from shared.db import CONFLICT_DB_ERRORS, TRANSIENT_DB_ERRORS
from shared.errors import (
    Aborted,
    DomainError,
    PermissionDenied,
    Unavailable,
    internal_status,
    to_status,
)
from shared.metrics import SERVER_STREAM, UNARY, RpcMetrics
from shared.requests import check_request, tolerant_deserializer

log = logging.getLogger(__name__)


_RETRYABLE_RPC_CODES = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}

# What a failed call is aborted with: code, details, trailing metadata.
_Abort = tuple[grpc.StatusCode, str, tuple[tuple[str, str | bytes], ...]]


class ServiceInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Access control and error mapping around every handler of our services."""

    def __init__(
        self, domain: str, access: AccessControl, metrics: RpcMetrics | None = None
    ) -> None:
        self._domain = domain
        self._access = access
        self._metrics = metrics

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method: str = handler_call_details.method
        if handler is None:
            return handler
        if not self._access.governs(method):
            if method.startswith("/sensei."):
                return self._refusing(method, handler)
            return handler  # health, reflection: public by design
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(method, handler.unary_unary),
                request_deserializer=tolerant_deserializer(handler.request_deserializer),
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._streaming(method, handler.unary_stream),
                request_deserializer=tolerant_deserializer(handler.request_deserializer),
                response_serializer=handler.response_serializer,
            )
        # Our protos have no client-streaming RPCs; refuse rather than run unchecked.
        return self._refusing(method, handler)

    def _unary(
        self, method: str, inner: Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]
    ) -> Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]:
        async def handle(request: Any, context: grpc.aio.ServicerContext) -> Any:
            started = time.perf_counter()
            try:
                await self._enter(method, request, context)
                response = await inner(request, context)
            except BaseException as exc:
                await self._fail(method, UNARY, exc, context, started)
                raise
            self._finish(method, UNARY, context.code() or grpc.StatusCode.OK, started)
            return response

        return handle

    def _streaming(
        self, method: str, inner: Callable[[Any, grpc.aio.ServicerContext], Any]
    ) -> Callable[[Any, grpc.aio.ServicerContext], AsyncIterator[Any]]:
        async def handle(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            started = time.perf_counter()
            try:
                await self._enter(method, request, context)
                result = inner(request, context)
                if inspect.isasyncgen(result):
                    async for item in result:
                        yield item
                else:
                    await result
            except BaseException as exc:
                await self._fail(method, SERVER_STREAM, exc, context, started)
                raise
            self._finish(method, SERVER_STREAM, context.code() or grpc.StatusCode.OK, started)

        return handle

    async def _enter(self, method: str, request: Any, context: grpc.aio.ServicerContext) -> None:
        metadata = {
            key: value
            for key, value in (context.invocation_metadata() or ())
            if isinstance(value, str)
        }
        begin_call(
            method, metadata.get(REQUEST_ID_HEADER) or uuid.uuid4().hex, context.time_remaining()
        )
        # Before access control: its org check reads the request, which must be sound.
        check_request(request)
        await self._access.authorize(method, request, metadata, _peer_ip(context.peer()))

    async def _fail(
        self,
        method: str,
        kind: str,
        exc: BaseException,
        context: grpc.aio.ServicerContext,
        started: float,
    ) -> None:
        """Records a failed call's outcome, then aborts it with the mapped status.

        The outcome is recorded first: once the status is out, a caller may read the
        metrics and must find its call counted.
        """
        failure = self._failure(method, exc)
        self._finish(method, kind, failure[0] if failure else _outcome_of(exc, context), started)
        if failure is not None:
            await context.abort(*failure)

    def _failure(self, method: str, exc: BaseException) -> _Abort | None:
        """The status to abort with for what a handler raised; None when gRPC handles it."""
        if isinstance(exc, (asyncio.CancelledError, grpc.aio.AbortError, GeneratorExit)):
            return None
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            return None
        error = _as_domain_error(exc)
        if error is not None:
            status = to_status(error, self._domain)
        elif isinstance(exc, NotImplementedError):
            return (grpc.StatusCode.UNIMPLEMENTED, f"{method} is not implemented yet", ())
        else:
            ids = tracing.current_ids()
            trace_id = ids[0] if ids else uuid.uuid4().hex
            log.error(
                "unexpected error in %s (trace id %s, request id %s)",
                method,
                trace_id,
                current_request_id(),
                exc_info=exc,
            )
            status = internal_status(trace_id, self._domain)
        grpc_status = rpc_status.to_status(status)
        return (grpc_status.code, grpc_status.details, tuple(grpc_status.trailing_metadata))

    def _finish(self, method: str, kind: str, code: grpc.StatusCode, started: float) -> None:
        seconds = time.perf_counter() - started
        if self._metrics is not None:
            self._metrics.observe(method, kind, code, seconds)
        log.debug("%s %s in %.1f ms", method, code.name, seconds * 1000)

    def _refusing(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        error = PermissionDenied("this method has no access rule", reason="NO_ACCESS_RULE")
        grpc_status = rpc_status.to_status(to_status(error, self._domain))
        kind = UNARY if handler.unary_unary is not None else SERVER_STREAM

        async def refuse(request: Any, context: grpc.aio.ServicerContext) -> Any:
            self._finish(method, kind, grpc_status.code, time.perf_counter())
            await context.abort(
                grpc_status.code, grpc_status.details, grpc_status.trailing_metadata
            )

        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                refuse, handler.request_deserializer, handler.response_serializer
            )
        return grpc.unary_stream_rpc_method_handler(
            refuse, handler.request_deserializer, handler.response_serializer
        )


def _as_domain_error(exc: BaseException) -> DomainError | None:
    if isinstance(exc, DomainError):
        return exc
    if isinstance(exc, CONFLICT_DB_ERRORS):
        return Aborted("a concurrent change conflicted; retry", reason="CONCURRENT_CHANGE")
    if isinstance(exc, TRANSIENT_DB_ERRORS):
        return Unavailable("the database is unavailable; retry", reason="DATABASE_UNAVAILABLE")
    if isinstance(exc, grpc.aio.AioRpcError) and exc.code() in _RETRYABLE_RPC_CODES:
        return Unavailable(
            f"a dependency is unavailable: {exc.code().name}", reason="DEPENDENCY_UNAVAILABLE"
        )
    return None


def _outcome_of(exc: BaseException, context: grpc.aio.ServicerContext) -> grpc.StatusCode:
    # The handler aborted by itself (its code is on the context), or the call was cancelled.
    code: grpc.StatusCode | None = context.code()
    if code is not None:
        return code
    if isinstance(exc, (asyncio.CancelledError, GeneratorExit)):
        return grpc.StatusCode.CANCELLED
    return grpc.StatusCode.UNKNOWN


def _peer_ip(peer: str) -> str:
    # grpc peers look like `ipv4:127.0.0.1:5000`, `ipv6:[::1]:5000` or `unix:/path`.
    kind, _, rest = peer.partition(":")
    if kind == "ipv4":
        return rest.rsplit(":", 1)[0]
    if kind == "ipv6":
        return rest.rsplit(":", 1)[0].strip("[]")
    return ""
