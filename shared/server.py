"""Server bootstrap shared by the four services.

`start(definition, config)` opens the service's database pool (after migrating its
schema), lets the service register its servicers and background workers, and starts a
`grpc.aio` server with the shared interceptor, the health service (per service and "")
and server reflection, and serves its Prometheus metrics over HTTP (`shared.metrics`).
`main(definition)` runs it until SIGTERM/SIGINT, then shuts down gracefully: health turns
NOT_SERVING first, in-flight calls get a grace period to finish. A configuration error
(including a public or missing secret outside `SENSEI_ENV=dev`, see shared/secrets.py) stops
it before it serves: one line on stderr, exit status 2.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from shared import config as config_module
from shared import reflection
from shared import secrets as secret_settings
from shared import settings as settings_check
from shared.auth import AccessControl, TokenFreshness, access_rules
from shared.config import ConfigError, ServiceConfig
from shared.credentials import ServiceCredentials
from shared.db import create_pool, migrate, service_migrations
from shared.interceptor import ServiceInterceptor
from shared.logs import JsonFormatter, configure_logging
from shared.metrics import ServiceMetrics, default_port
from shared.relay import Deliver, OutboxRelay, grpc_delivery
from shared.revocations import FollowedFreshness, RevocationFollower, RevocationList
from shared.token_verification import JwksKeySource, KeySource, TokenVerifier

log = logging.getLogger(__name__)


@dataclass
class ServiceContext:
    """What a service's `setup` gets: config, database, and hooks to register its parts.

    `metrics` is the service's Prometheus registry: add gauges read at scrape time with
    `ctx.metrics.gauge(name, help, read)` or register any prometheus_client metric on
    `ctx.metrics.registry` (see shared/metrics.py).
    """

    config: ServiceConfig
    pool: asyncpg.Pool
    servicers: list[tuple[Callable[[Any, grpc.aio.Server], None], Any]] = field(
        default_factory=list
    )
    key_source: KeySource | None = None
    # Whether a verified token still counts; default: follow the org service's revocation
    # log (`revocations`), where services also hear of deleted organizations.
    freshness: TokenFreshness | None = None
    revocations: RevocationFollower | None = None
    credentials: ServiceCredentials | None = None
    # How this service's audit events reach the audit log; default: AppendAuditEvents over gRPC.
    audit_delivery: Deliver | None = None
    relay: OutboxRelay | None = None
    cleanups: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    metrics: ServiceMetrics = field(default_factory=ServiceMetrics)

    def add_servicer(
        self, add_to_server: Callable[[Any, grpc.aio.Server], None], servicer: Any
    ) -> None:
        """Registers a servicer (e.g. `org_pb2_grpc.add_XServicer_to_server`, instance)."""
        self.servicers.append((add_to_server, servicer))

    def on_close(self, cleanup: Callable[[], Awaitable[None]]) -> None:
        """Runs `cleanup` at shutdown, after the server stopped, in reverse order."""
        self.cleanups.append(cleanup)

    def run_in_background(self, work: Coroutine[Any, Any, None], name: str) -> None:
        """Runs a worker loop until shutdown (it is cancelled then)."""
        self.tasks.append(asyncio.create_task(work, name=name))


@dataclass(frozen=True)
class ServiceDefinition:
    """One deployable service: its proto services, migrations and wiring."""

    name: str
    service_names: tuple[str, ...]
    package_dir: Path
    setup: Callable[[ServiceContext], Awaitable[None]]


@dataclass
class RunningService:
    """A started service; `stop()` shuts it down gracefully."""

    definition: ServiceDefinition
    config: ServiceConfig
    server: grpc.aio.Server
    health: health.aio.HealthServicer
    context: ServiceContext
    port: int
    metrics_port: int = 0

    @property
    def address(self) -> str:
        """`host:port` the server listens on."""
        return f"{self.config.host}:{self.port}"

    async def stop(self, grace: float | None = None) -> None:
        """Health → NOT_SERVING, let in-flight calls finish within `grace`, then close."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(self.config.grace_seconds if grace is None else grace)
        for task in self.context.tasks:
            task.cancel()
        for task in self.context.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for cleanup in reversed(self.context.cleanups):
            try:
                await cleanup()
            except Exception:
                log.exception("cleanup of %s failed", self.definition.name)
        await self.context.metrics.close()
        await self.context.pool.close()


# How long a starting service waits for its first complete view of revoked tokens.
_FIRST_REVOCATIONS_WAIT_SECONDS = 5.0

# gRPC core's "no limit" for millisecond arguments.
_NO_LIMIT_MS = 2**31 - 1


def _ms(seconds: float) -> int:
    """Seconds as a gRPC millisecond argument; 0 means no limit."""
    return min(_NO_LIMIT_MS, round(seconds * 1000)) if seconds > 0 else _NO_LIMIT_MS


def server_options(config: ServiceConfig) -> list[tuple[str, Any]]:
    """Message size limits, keepalive, connection limits and port reuse for a server.

    The connection limits (`config.limits`, README "Connections") keep a peer from holding
    connections it does not use: one that has not finished the HTTP/2 handshake (preface
    and SETTINGS) within the handshake timeout is closed, an idle one gets GOAWAY, every
    one is drained at its maximum age, and the process accepts at most `max_connections`.
    """
    limits = config.limits
    return [
        ("grpc.max_receive_message_length", config.max_message_bytes),
        ("grpc.max_send_message_length", config.max_message_bytes),
        ("grpc.keepalive_time_ms", 60_000),
        ("grpc.keepalive_timeout_ms", 20_000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_recv_ping_interval_without_data_ms", 10_000),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.so_reuseport", 1 if config.reuse_port else 0),
        ("grpc.server_handshake_timeout_ms", _ms(limits.handshake_timeout_seconds)),
        ("grpc.max_connection_idle_ms", _ms(limits.idle_seconds)),
        ("grpc.max_connection_age_ms", _ms(limits.max_age_seconds)),
        ("grpc.max_connection_age_grace_ms", _ms(limits.age_grace_seconds)),
        ("grpc.max_allowed_incoming_connections", limits.max_connections),
        ("grpc.max_concurrent_streams", limits.max_streams_per_connection),
    ]


async def start(definition: ServiceDefinition, config: ServiceConfig) -> RunningService:
    """Migrates the schema, wires the service and starts serving; returns when SERVING.

    Raises ConfigError before touching anything when a secret is public or missing
    (outside `SENSEI_ENV=dev`).
    """
    settings_check.check(config.service, config.env)
    secret_settings.check(config.service, config.env)
    metrics_port, metrics_port_is_default = _metrics_port(config)
    async with _connection(config.database_url) as conn:
        await migrate(conn, config.db_schema, service_migrations(definition.package_dir))
    pool = await create_pool(config.database_url, config.db_schema)
    credentials = ServiceCredentials(config.address_of("org"), config.service_api_key)
    follower = RevocationFollower(
        config.address_of("org"),
        credentials.metadata,
        RevocationList(config.revocation_max_staleness_seconds),
    )
    context = ServiceContext(
        config=config, pool=pool, revocations=follower, credentials=credentials
    )
    context.on_close(credentials.close)
    context.metrics.watch_pool(pool)
    try:
        await definition.setup(context)
        if context.key_source is None:
            jwks = JwksKeySource(config.address_of("org"))
            context.key_source = jwks
            context.on_close(jwks.close)
        if context.freshness is None:
            context.freshness = FollowedFreshness(follower.revocations)
            context.run_in_background(follower.run(), name=f"{definition.name}-revocations")
            context.on_close(follower.close)
            # Usually immediate; a service started before the org service serves anyway
            # (reads pass, writes fail closed until the feed is reached).
            if not await follower.wait_caught_up(_FIRST_REVOCATIONS_WAIT_SECONDS):
                log.warning("the org service's revocation feed is not reachable yet")
        _start_relay(definition, config, context)
        access = AccessControl(
            access_rules(definition.service_names),
            TokenVerifier(context.key_source),
            context.freshness,
        )
        context.metrics.rpcs.initialize(definition.service_names)
        server = grpc.aio.server(
            interceptors=[ServiceInterceptor(config.domain, access, context.metrics.rpcs)],
            options=server_options(config),
        )
        for add_to_server, servicer in context.servicers:
            add_to_server(servicer, server)
        health_servicer = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        reflection.enable((*definition.service_names, health.SERVICE_NAME), server)
        port = server.add_insecure_port(f"{config.host}:{config.port}")
        if port == 0:
            raise OSError(f"cannot listen on {config.host}:{config.port}")
        await server.start()
        metrics_port = _serve_metrics(
            context.metrics, config, metrics_port, metrics_port_is_default
        )
        for name in ("", *definition.service_names):
            await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    except BaseException:
        for task in context.tasks:
            task.cancel()
        for cleanup in reversed(context.cleanups):
            with contextlib.suppress(Exception):
                await cleanup()
        await context.metrics.close()
        await pool.close()
        raise
    # DEBUG: `serve` announces it on stdout (one JSON line that process runners wait for).
    log.debug(
        "%s serving on %s:%d (metrics on port %d)", definition.name, config.host, port, metrics_port
    )
    return RunningService(
        definition, config, server, health_servicer, context, port, metrics_port=metrics_port
    )


def _metrics_port(config: ServiceConfig) -> tuple[int, bool]:
    """`SENSEI_<SVC>_METRICS_PORT`, and whether it is the default (gRPC port + 1000)."""
    raw = config.setting("METRICS_PORT")
    if raw is None or raw == "":
        return default_port(config.port), True
    try:
        return int(raw), False
    except ValueError:
        raise ConfigError(
            f"SENSEI_{config.service.upper()}_METRICS_PORT must be an integer, got {raw!r}"
        ) from None


def _serve_metrics(
    metrics: ServiceMetrics, config: ServiceConfig, port: int, is_default: bool
) -> int:
    # A taken default port must not keep a service down; a configured one must be free.
    limits = config.limits

    def serve_on(at: int) -> int:
        return metrics.serve(
            config.host,
            at,
            backlog=limits.metrics_backlog,
            max_connections=limits.metrics_max_connections,
            timeout_seconds=limits.metrics_timeout_seconds,
        )

    try:
        return serve_on(port)
    except OSError:
        if not is_default:
            raise
    actual = serve_on(0)
    log.warning("metrics port %d is taken; serving metrics on port %d instead", port, actual)
    return actual


def _start_relay(definition: ServiceDefinition, config: ServiceConfig, ctx: ServiceContext) -> None:
    deliver = ctx.audit_delivery
    if deliver is None:
        assert ctx.credentials is not None
        deliver, close_channel = grpc_delivery(config.address_of("org"), ctx.credentials)
        ctx.on_close(close_channel)
    relay = OutboxRelay(ctx.pool, config.database_url, deliver, service=definition.name)
    ctx.relay = relay
    ctx.run_in_background(relay.run(), name=f"{definition.name}-audit-relay")
    ctx.metrics.gauge(
        "sensei_audit_outbox_backlog",
        "Audit events in the outbox, waiting to be delivered to the org service.",
        relay.pending,
    )
    ctx.metrics.counter(
        "sensei_audit_events_relayed",
        "Audit events this process delivered from its outbox.",
        lambda: relay.delivered,
    )


@contextlib.asynccontextmanager
async def _connection(dsn: str) -> Any:
    conn = await asyncpg.connect(dsn)
    try:
        yield conn
    finally:
        await conn.close()


async def serve(definition: ServiceDefinition, config: ServiceConfig) -> None:
    """Serves until SIGTERM or SIGINT, then stops gracefully."""
    running = await start(definition, config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    serving = logging.LogRecord(
        __name__,
        logging.INFO,
        __file__,
        0,
        "%s serving on %s (metrics on port %d)",
        (definition.name, running.address, running.metrics_port),
        None,
    )
    # The same JSON as the logs (stderr), on stdout: what process runners wait for.
    print(JsonFormatter(definition.name).format(serving), flush=True)
    await stop.wait()
    log.info("%s shutting down (grace %.1fs)", definition.name, config.grace_seconds)
    await running.stop()


def main(definition: ServiceDefinition) -> None:
    """Entry point of `python -m services.<name>`."""
    try:
        settings_check.check(definition.name, os.environ)
        config = config_module.load(definition.name)
        configure_logging(config.log_level, definition.name)
        asyncio.run(serve(definition, config))
    except ConfigError as exc:
        # One line a person can act on per bad value, not a traceback; 2 = misconfigured
        # (as argparse).
        lines = exc.problems if isinstance(exc, settings_check.InvalidSettings) else [str(exc)]
        for line in lines:
            print(f"{definition.name}: {line}", file=sys.stderr, flush=True)
        sys.exit(2)
