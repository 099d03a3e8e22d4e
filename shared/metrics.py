"""Prometheus metrics of one service process, served over HTTP at `/metrics`.

Each service has its own `CollectorRegistry` (`ServiceContext.metrics.registry`), so several
services in one process (the tests) never clash. Built in:

- `grpc_server_handled_total` and `grpc_server_handling_seconds` (histogram), labelled
  `grpc_type`, `grpc_service`, `grpc_method`, `grpc_code`: every call of our APIs, recorded
  by the shared interceptor with the status it ended with (health and reflection are not
  counted); a stream's time is its whole duration;
- `sensei_db_pool_connections`, `sensei_db_pool_idle_connections`,
  `sensei_db_pool_max_connections`: the service's asyncpg pool;
- `sensei_audit_outbox_backlog` (events waiting for the relay; counted when scraped) and
  `sensei_audit_events_relayed_total`;
- process and Python runtime metrics.

A service adds its own in its `setup`, either as a value read when Prometheus scrapes
(a plain or an async function; async ones run on the service's event loop):

    ctx.metrics.gauge("sensei_verification_jobs_queued", "Jobs waiting for a worker.",
                      lambda: store.count_queued_jobs(ctx.pool))

or as any `prometheus_client` metric registered on `ctx.metrics.registry`:

    outcomes = Counter("sensei_verification_outcomes", "Finished verifications.",
                       ["status"], registry=ctx.metrics.registry)

Metric names start with `sensei_<service>_`. The port is `SENSEI_<SVC>_METRICS_PORT`
(default: the gRPC port + 1000; 0 picks a free port).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import socket
import threading
from collections.abc import Awaitable, Callable, Iterable, Iterator
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

import asyncpg
import grpc
from google.protobuf import descriptor_pool
from prometheus_client import (
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    make_wsgi_app,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

METRICS_PORT_OFFSET = 1000
# The metrics endpoint's limits unless the service sets them (shared/config.py).
DEFAULT_BACKLOG = 128
DEFAULT_MAX_CONNECTIONS = 32
DEFAULT_TIMEOUT_SECONDS = 5.0
UNARY = "unary"
SERVER_STREAM = "server_stream"
CLIENT_STREAM = "client_stream"
BIDI_STREAM = "bidi_stream"

# Unary calls take milliseconds; the long tail is dependency timeouts and streams.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

Read = Callable[[], float | int | Awaitable[float | int]]


class RpcMetrics:
    """Count and latency of the calls a server handled, by method and status code."""

    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ["grpc_type", "grpc_service", "grpc_method", "grpc_code"]
        self.handled = Counter(
            "grpc_server_handled",
            "RPCs completed on the server, by method and status code.",
            labels,
            registry=registry,
        )
        self.seconds = Histogram(
            "grpc_server_handling_seconds",
            "Time from receiving an RPC to its status (a stream's whole duration).",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )

    def observe(self, method: str, kind: str, code: grpc.StatusCode, seconds: float) -> None:
        """Records one finished call of `method` (`/package.Service/Method`)."""
        service, _, name = method.lstrip("/").partition("/")
        labels = (kind, service, name, code.name)
        self.handled.labels(*labels).inc()
        self.seconds.labels(*labels).observe(seconds)

    def initialize(self, service_names: Iterable[str]) -> None:
        """Creates the OK series of every method at zero, so rates exist before traffic."""
        pool = descriptor_pool.Default()  # type: ignore[no-untyped-call]
        for service_name in service_names:
            service = pool.FindServiceByName(service_name)
            for method in service.methods:
                labels = (_kind(method), service.full_name, method.name, grpc.StatusCode.OK.name)
                self.handled.labels(*labels)
                self.seconds.labels(*labels)


def _kind(method: object) -> str:
    client = bool(getattr(method, "client_streaming", False))
    server = bool(getattr(method, "server_streaming", False))
    if client and server:
        return BIDI_STREAM
    if client:
        return CLIENT_STREAM
    return SERVER_STREAM if server else UNARY


class ServiceMetrics:
    """The metrics registry of one service and the HTTP endpoint that serves it."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.rpcs = RpcMetrics(self.registry)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._http: tuple[WSGIServer, threading.Thread] | None = None
        self.port = 0

    def gauge(self, name: str, documentation: str, read: Read, *, timeout: float = 3.0) -> None:
        """A gauge whose value `read()` returns when scraped (plain or async function).

        Async readers run on the service's event loop and get `timeout` seconds; a reader
        that fails or times out leaves the gauge out of that scrape.
        """
        self.registry.register(
            _ReadCollector(self, name, documentation, read, timeout=timeout, kind="gauge")
        )

    def counter(self, name: str, documentation: str, read: Callable[[], float | int]) -> None:
        """A counter whose (never decreasing) total `read()` returns when scraped."""
        self.registry.register(
            _ReadCollector(self, name, documentation, read, timeout=3.0, kind="counter")
        )

    def watch_pool(self, pool: asyncpg.Pool) -> None:
        """Exports the size of the service's database pool."""
        self.registry.register(_PoolCollector(pool))

    def serve(
        self,
        host: str,
        port: int,
        *,
        backlog: int = DEFAULT_BACKLOG,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> int:
        """Serves `/metrics` on `host:port` (0: a free port) from a thread; returns the port.

        `backlog` is the listen queue; at most `max_connections` scrapes are served at once
        (one thread each; a connection beyond them is closed at once), and a connection that
        sends or reads nothing for `timeout_seconds` is closed. Must be called on the
        service's event loop: async gauges run there.
        """
        self._loop = asyncio.get_running_loop()
        server_class = _IPv6MetricsServer if ":" in host else _MetricsServer
        server = server_class(
            (host, port),
            _QuietHandler,
            bind_and_activate=False,
        )
        server.limit(backlog, max_connections, timeout_seconds)
        try:
            server.server_bind()
            server.server_activate()
        except BaseException:
            server.server_close()
            raise
        server.set_app(make_wsgi_app(self.registry))
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": _POLL_SECONDS},
            name=f"metrics-http-{server.server_port}",
            daemon=True,
        )
        thread.start()
        self._http = (server, thread)
        self.port = int(server.server_port)
        return self.port

    async def close(self) -> None:
        """Stops the HTTP endpoint (waiting for its thread without blocking the loop)."""
        if self._http is None:
            return
        server, thread = self._http
        self._http = None
        await asyncio.to_thread(server.shutdown)
        server.server_close()
        await asyncio.to_thread(thread.join, 5)

    def _read_on_loop(self, value: Awaitable[float | int], timeout: float) -> float | None:
        """Waits for an async reader on the service's loop, from the scraping thread."""
        loop = self._loop
        if loop is None or loop.is_closed() or _running_loop() is loop:
            # Not served yet, gone, or scraped from the loop itself (waiting would deadlock).
            _discard(value)
            return None

        async def bounded() -> float | int:
            return await asyncio.wait_for(value, timeout)

        try:
            future = asyncio.run_coroutine_threadsafe(bounded(), loop)
        except RuntimeError:  # the loop closed meanwhile
            _discard(value)
            return None
        try:
            return float(future.result(timeout + 1))
        except Exception as exc:
            future.cancel()
            log.debug("metric reader failed: %r", exc)
            return None


# How soon the HTTP thread notices a shutdown (prometheus_client's own server takes 0.5 s).
_POLL_SECONDS = 0.05


class _MetricsServer(ThreadingMixIn, WSGIServer):
    """Serves each scrape in its own daemon thread (a slow reader never blocks the next).

    Bounded: at most `max_connections` threads, each connection with a socket timeout, so
    idle or trickling connections cannot pile up threads.
    """

    daemon_threads = True
    request_queue_size = DEFAULT_BACKLOG
    timeout_seconds = DEFAULT_TIMEOUT_SECONDS
    refused = 0
    _slots = threading.BoundedSemaphore(DEFAULT_MAX_CONNECTIONS)

    def limit(self, backlog: int, max_connections: int, timeout_seconds: float) -> None:
        """Sets the limits; call before `server_activate` (which listens with the backlog)."""
        self.request_queue_size = backlog
        self.timeout_seconds = timeout_seconds
        self._slots = threading.BoundedSemaphore(max_connections)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            # Every slot busy: close this one rather than start yet another thread.
            self.refused += 1
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


class _IPv6MetricsServer(_MetricsServer):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    """No access log lines on stderr: they are not JSON, and scrapes are routine.

    Its socket times out after the server's `timeout_seconds` of silence either way.
    """

    def setup(self) -> None:
        super().setup()
        server = self.server
        if isinstance(server, _MetricsServer):
            self.connection.settimeout(server.timeout_seconds)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _discard(value: Awaitable[float | int]) -> None:
    if inspect.iscoroutine(value):
        value.close()


class _ReadCollector(Collector):
    """One gauge or counter whose value is read from a function at scrape time."""

    def __init__(
        self,
        owner: ServiceMetrics,
        name: str,
        documentation: str,
        read: Read,
        *,
        timeout: float,
        kind: str,
    ) -> None:
        self._owner = owner
        self._name = name.removesuffix("_total") if kind == "counter" else name
        self._documentation = documentation
        self._read = read
        self._timeout = timeout
        self._kind = kind

    def _family(self) -> GaugeMetricFamily | CounterMetricFamily:
        if self._kind == "counter":
            return CounterMetricFamily(self._name, self._documentation)
        return GaugeMetricFamily(self._name, self._documentation)

    def describe(self) -> Iterable[Metric]:
        return [self._family()]

    def collect(self) -> Iterator[Metric]:
        try:
            value = self._read()
        except Exception as exc:
            log.debug("metric %s: reader failed: %r", self._name, exc)
            return
        if inspect.isawaitable(value):
            read = self._owner._read_on_loop(value, self._timeout)
            if read is None:
                return
            value = read
        family = self._family()
        family.add_metric([], float(value))
        yield family


class _PoolCollector(Collector):
    """Size, idle connections and capacity of an asyncpg pool."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    def _families(self) -> tuple[GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily(
                "sensei_db_pool_connections", "Open connections of the database pool."
            ),
            GaugeMetricFamily(
                "sensei_db_pool_idle_connections", "Open, unused connections of the pool."
            ),
            GaugeMetricFamily("sensei_db_pool_max_connections", "Capacity of the pool."),
        )

    def describe(self) -> Iterable[Metric]:
        return list(self._families())

    def collect(self) -> Iterator[Metric]:
        size, idle, capacity = self._families()
        # Plain attribute reads: safe from the scraping thread.
        size.add_metric([], self._pool.get_size())
        idle.add_metric([], self._pool.get_idle_size())
        capacity.add_metric([], self._pool.get_max_size())
        yield from (size, idle, capacity)


def default_port(grpc_port: int) -> int:
    """The metrics port when `SENSEI_<SVC>_METRICS_PORT` is unset: gRPC port + 1000."""
    return grpc_port + METRICS_PORT_OFFSET if grpc_port else 0
