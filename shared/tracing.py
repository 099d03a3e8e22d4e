"""OpenTelemetry tracing: spans per RPC (server and client) and per SQL statement.

Off unless a process turns it on, and then nothing of it runs: no interceptors, no
instrumented driver, no spans. `configure(service)` turns it on when
`OTEL_EXPORTER_OTLP_ENDPOINT` is set (the OTLP/gRPC exporter reads it and the other
`OTEL_EXPORTER_OTLP_*` settings itself); a test or an embedding program calls
`install(provider)` with a provider of its own (e.g. with an InMemorySpanExporter).

When on, context crosses every hop as W3C `traceparent`:
- RPCs: opentelemetry-instrumentation-grpc's grpc.aio interceptors (shared/server.py,
  shared/client.py) read it from incoming metadata and send it on outgoing calls;
- SQL: opentelemetry-instrumentation-asyncpg makes a child span per statement;
- queued work: the audit outbox (shared/outbox.py) and verification jobs store the
  `current_traceparent()` of the request that wrote them; the relay and the job worker run
  under `linked_span(...)`, which links to those requests (a batch may hold many);
- logs: shared/logs.py adds `trace_id` and `span_id` of the current span.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import grpc
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
from opentelemetry.instrumentation.grpc import aio_client_interceptors, aio_server_interceptor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

ENDPOINT_SETTING = "OTEL_EXPORTER_OTLP_ENDPOINT"
TRACEPARENT = "traceparent"

_propagator = TraceContextTextMapPropagator()
# A proxy: it follows whatever provider `install` sets, and is a no-op before that.
_tracer = trace.get_tracer("sensei")


class _Switch:
    """Whether this process traces. OpenTelemetry's provider is process-wide and set once;
    this flag lets tests turn tracing off again (`uninstall`)."""

    on = False


def configure(service: str, environ: Mapping[str, str] = os.environ) -> bool:
    """Turns tracing on with an OTLP exporter when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.

    Returns whether tracing is on. Call once per process, before the server starts.
    """
    if not environ.get(ENDPOINT_SETTING):
        return enabled()
    # Imported here: the exporter's gRPC machinery is only needed when it exports.
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
        OTLPSpanExporter,
    )

    provider = TracerProvider(resource=Resource.create({"service.name": f"sensei-{service}"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    install(provider)
    return True


def install(provider: TracerProvider) -> None:
    """Turns tracing on: `provider` becomes the process's tracer provider, asyncpg is
    instrumented, servers and channels made from now on get the tracing interceptors.

    OpenTelemetry allows one provider per process: a later call keeps the first one.
    """
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        trace.set_tracer_provider(provider)
    instrumentor = AsyncPGInstrumentor()  # type: ignore[no-untyped-call]
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument(tracer_provider=trace.get_tracer_provider())
    _Switch.on = True


def uninstall() -> None:
    """Turns tracing off for servers and channels made from now on (tests)."""
    _Switch.on = False
    instrumentor = AsyncPGInstrumentor()  # type: ignore[no-untyped-call]
    if instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.uninstrument()


def enabled() -> bool:
    """Whether this process traces (`install` ran, `uninstall` did not)."""
    return _Switch.on


def server_interceptors() -> list[grpc.aio.ServerInterceptor]:
    """The tracing interceptor of a server (goes first: its span covers the others)."""
    return [aio_server_interceptor()] if enabled() else []  # type: ignore[no-untyped-call]


def client_interceptors() -> list[grpc.aio.ClientInterceptor]:
    """Tracing interceptors of a channel (one per call kind): client spans, `traceparent`."""
    return list(aio_client_interceptors()) if enabled() else []  # type: ignore[no-untyped-call]


def current_traceparent() -> str | None:
    """The W3C `traceparent` of the current span, to store with queued work; None if none."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier.get(TRACEPARENT)


def current_ids() -> tuple[str, str] | None:
    """(trace id, span id) of the current span in hex, for log lines; None outside one."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


@contextlib.contextmanager
def linked_span(
    name: str, traceparents: Iterable[str | None], attributes: Mapping[str, Any] | None = None
) -> Iterator[None]:
    """Runs a block of queued work as a new trace linked to the requests that queued it."""
    if not enabled():
        yield
        return
    links = []
    for traceparent in dict.fromkeys(tp for tp in traceparents if tp):
        context = trace.get_current_span(
            _propagator.extract({TRACEPARENT: traceparent})
        ).get_span_context()
        if context.is_valid:
            links.append(trace.Link(context))
    with _tracer.start_as_current_span(
        name,
        context=otel_context.Context(),  # a trace of its own, not the loop's
        kind=trace.SpanKind.CONSUMER,
        links=links,
        attributes=dict(attributes or {}),
    ):
        yield
