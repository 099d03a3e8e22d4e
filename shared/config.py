"""Configuration from environment variables, all under one prefix: `SENSEI_`.

Per service `<S>` (ORG, MIGRATION, VERIFICATION, PATTERN):
`SENSEI_<S>_HOST`, `SENSEI_<S>_PORT`, `SENSEI_<S>_DATABASE_URL` (falls back to
`SENSEI_DATABASE_URL`), `SENSEI_<S>_DB_SCHEMA`, plus service-specific settings read with
`ServiceConfig.setting("NAME")` → `SENSEI_<S>_NAME`. Suite-wide: `SENSEI_<S>_ADDR` (where
the other services are), `SENSEI_SERVICE_API_KEY`, `SENSEI_PAGE_TOKEN_SECRET`,
`SENSEI_GRACE_SECONDS`, `SENSEI_MAX_MESSAGE_BYTES`, `SENSEI_REUSE_PORT`, `SENSEI_LOG_LEVEL`,
`SENSEI_ENV` (`dev` or `production`, the default; see shared/secrets.py), the gRPC
connection limits of `ConnectionLimits`, and `SENSEI_TLS_*` (shared/tls.py).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from shared.tls import Target, TlsSettings

PREFIX = "SENSEI_"

DEFAULT_PORTS: dict[str, int] = {
    "org": 50051,
    "migration": 50052,
    "verification": 50053,
    "pattern": 50054,
}


class ConfigError(ValueError):
    """A setting is missing or malformed."""


@dataclass(frozen=True)
class ConnectionLimits:
    """What a service's gRPC and metrics servers allow a connection (README "Connections").

    Times of 0 mean "no limit" where gRPC allows it (idle, age, grace).
    """

    # A connection must complete the HTTP/2 preface and SETTINGS within this, or is closed.
    handshake_timeout_seconds: float = 5.0
    # A connection without calls for this long gets GOAWAY (clients reconnect on demand).
    idle_seconds: float = 300.0
    # Every connection is drained after this (±10% jitter, by gRPC), so load rebalances;
    # its calls then get `age_grace_seconds` to finish before it is closed.
    max_age_seconds: float = 1800.0
    age_grace_seconds: float = 300.0
    # Connections of the whole process, handshaking ones included; more are closed at once.
    max_connections: int = 4096
    # Concurrent calls on one connection; more wait on the client side.
    max_streams_per_connection: int = 256
    # The metrics HTTP endpoint: listen backlog, concurrent scrapes, per-socket timeout.
    metrics_backlog: int = 128
    metrics_max_connections: int = 32
    metrics_timeout_seconds: float = 5.0


@dataclass(frozen=True)
class ServiceConfig:
    """Everything one service process needs to start."""

    service: str
    host: str
    port: int
    database_url: str
    db_schema: str
    addresses: Mapping[str, str]
    service_api_key: str
    page_token_secret: bytes
    grace_seconds: float
    max_message_bytes: int
    reuse_port: bool
    log_level: str
    # How long a service trusts its view of revoked tokens without hearing from the org
    # service before writes fail closed (shared/revocations.py).
    revocation_max_staleness_seconds: float = 30.0
    env: Mapping[str, str] = field(default_factory=dict, repr=False)
    limits: ConnectionLimits = field(default_factory=ConnectionLimits)
    # `SENSEI_TLS_*` (shared/tls.py); None: plaintext port and channels.
    tls: TlsSettings | None = None

    def setting(self, name: str, default: str | None = None) -> str | None:
        """A service-specific setting: `SENSEI_<SERVICE>_<NAME>`."""
        return self.env.get(f"{PREFIX}{self.service.upper()}_{name}", default)

    def address_of(self, service: str) -> str:
        """Where another service listens (`host:port`), with the TLS settings to reach it."""
        return Target(self.addresses[service], self.tls)

    @property
    def is_dev(self) -> bool:
        """Whether `SENSEI_ENV=dev` (`make run`, the tests): development secrets accepted."""
        return self.env.get("SENSEI_ENV", "").strip().lower() == "dev"

    @property
    def domain(self) -> str:
        """The ErrorInfo domain of this service's errors."""
        return f"{self.service}.sensei.dev"


def load(service: str, env: Mapping[str, str] | None = None) -> ServiceConfig:
    """Reads the configuration of `service` from the environment (or `env`)."""
    source: Mapping[str, str] = os.environ if env is None else env
    upper = service.upper()

    def get(name: str, default: str | None = None) -> str | None:
        return source.get(f"{PREFIX}{name}", default)

    database_url = get(f"{upper}_DATABASE_URL") or get("DATABASE_URL")
    if not database_url:
        raise ConfigError(f"set {PREFIX}{upper}_DATABASE_URL or {PREFIX}DATABASE_URL")
    port = _int(get(f"{upper}_PORT"), DEFAULT_PORTS[service], f"{upper}_PORT")
    addresses = {
        name: get(f"{name.upper()}_ADDR") or f"127.0.0.1:{default}"
        for name, default in DEFAULT_PORTS.items()
    }
    secret = get("PAGE_TOKEN_SECRET")
    # Development only: stable across replicas without setup, but guessable, so the start-up
    # check (shared/secrets.py) refuses a missing secret outside SENSEI_ENV=dev.
    page_secret = (
        secret.encode()
        if secret
        else hashlib.sha256(f"sensei-page-token:{database_url}".encode()).digest()
    )
    return ServiceConfig(
        service=service,
        host=get(f"{upper}_HOST") or "127.0.0.1",
        port=port,
        database_url=database_url,
        db_schema=get(f"{upper}_DB_SCHEMA") or service,
        addresses=addresses,
        service_api_key=get(f"{upper}_SERVICE_API_KEY") or get("SERVICE_API_KEY") or "",
        page_token_secret=page_secret,
        grace_seconds=float(get("GRACE_SECONDS") or "10"),
        max_message_bytes=_int(get("MAX_MESSAGE_BYTES"), 8 * 1024 * 1024, "MAX_MESSAGE_BYTES"),
        reuse_port=(get(f"{upper}_REUSE_PORT") or get("REUSE_PORT") or "0") in {"1", "true", "yes"},
        log_level=get("LOG_LEVEL") or "INFO",
        revocation_max_staleness_seconds=_seconds(
            get("REVOCATION_MAX_STALENESS_SECONDS"),
            30.0,
            "REVOCATION_MAX_STALENESS_SECONDS",
            zero_allowed=False,
        ),
        env=dict(source),
        limits=_limits(get),
        tls=TlsSettings.from_env(source),
    )


def _limits(get: Callable[[str], str | None]) -> ConnectionLimits:
    defaults = ConnectionLimits()
    return ConnectionLimits(
        handshake_timeout_seconds=_seconds(
            get("HANDSHAKE_TIMEOUT_SECONDS"),
            defaults.handshake_timeout_seconds,
            "HANDSHAKE_TIMEOUT_SECONDS",
            zero_allowed=False,
        ),
        idle_seconds=_seconds(
            get("CONNECTION_IDLE_SECONDS"), defaults.idle_seconds, "CONNECTION_IDLE_SECONDS"
        ),
        max_age_seconds=_seconds(
            get("CONNECTION_MAX_AGE_SECONDS"),
            defaults.max_age_seconds,
            "CONNECTION_MAX_AGE_SECONDS",
        ),
        age_grace_seconds=_seconds(
            get("CONNECTION_AGE_GRACE_SECONDS"),
            defaults.age_grace_seconds,
            "CONNECTION_AGE_GRACE_SECONDS",
        ),
        max_connections=_positive(
            get("MAX_CONNECTIONS"), defaults.max_connections, "MAX_CONNECTIONS"
        ),
        max_streams_per_connection=_positive(
            get("MAX_STREAMS_PER_CONNECTION"),
            defaults.max_streams_per_connection,
            "MAX_STREAMS_PER_CONNECTION",
        ),
        metrics_backlog=_positive(
            get("METRICS_BACKLOG"), defaults.metrics_backlog, "METRICS_BACKLOG"
        ),
        metrics_max_connections=_positive(
            get("METRICS_MAX_CONNECTIONS"),
            defaults.metrics_max_connections,
            "METRICS_MAX_CONNECTIONS",
        ),
        metrics_timeout_seconds=_seconds(
            get("METRICS_TIMEOUT_SECONDS"),
            defaults.metrics_timeout_seconds,
            "METRICS_TIMEOUT_SECONDS",
            zero_allowed=False,
        ),
    )


def _seconds(raw: str | None, default: float, name: str, *, zero_allowed: bool = True) -> float:
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value < 0 or (value == 0 and not zero_allowed):
        floor = "0 or more" if zero_allowed else "more than 0"
        raise ConfigError(f"{PREFIX}{name} must be a number of seconds, {floor}: {raw!r}")
    return value


def _positive(raw: str | None, default: int, name: str) -> int:
    value = _int(raw, default, name)
    if value < 1:
        raise ConfigError(f"{PREFIX}{name} must be a positive integer, got {raw!r}")
    return value


def _int(raw: str | None, default: int, name: str) -> int:
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{PREFIX}{name} must be an integer, got {raw!r}") from None
