"""Every setting a service reads, and its check at start: one clear line per bad value.

`check(service, env)` runs before a service touches anything (`shared.server.main` and
`start`): it reports every malformed value at once (a port outside 1..65535, a duration
that is not a number of seconds, a URL of the wrong scheme, a key that is not 32 bytes of
base64url, ...), and `main` exits with status 2. Each setting is parsed again where it is
used; this table only decides whether the process may start. README's settings tables are
the reference for people: `tests/shared/test_settings.py` checks they list exactly these.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from shared.config import DEFAULT_PORTS, PREFIX, ConfigError
from shared.metrics import METRICS_PORT_OFFSET

MAX_PORT = 65535
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

Check = Callable[[str], str | None]


class InvalidSettings(ConfigError):
    """Some settings are malformed; `problems` has one line per bad value."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def port(*, zero: str | None = None) -> Check:
    """A TCP port, 1..65535 (0 too when `zero` says what it means)."""
    low = 0 if zero else 1
    extra = f", or 0 for {zero}" if zero else ""

    def check(raw: str) -> str | None:
        if raw.strip().isdigit() and low <= int(raw) <= MAX_PORT:
            return None
        return f"must be a port, 1..{MAX_PORT}{extra}"

    return check


def seconds(*, minimum: float = 0.0, above: bool = False, maximum: float | None = None) -> Check:
    """A finite number of seconds, at least `minimum` (or more than it, with `above`)."""
    floor = f"more than {minimum:g}" if above else f"at least {minimum:g}"
    ceiling = f" and at most {maximum:g}" if maximum is not None else ""

    def check(raw: str) -> str | None:
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        ok = math.isfinite(value) and (value > minimum if above else value >= minimum)
        if ok and (maximum is None or value <= maximum):
            return None
        return f"must be a number of seconds, {floor}{ceiling}"

    return check


def integer(*, minimum: int, maximum: int | None = None, unit: str = "") -> Check:
    """A whole number in [minimum, maximum]."""
    bounds = f"{minimum}..{maximum}" if maximum is not None else f"{minimum} or more"
    what = f"a whole number of {unit}" if unit else "a whole number"

    def check(raw: str) -> str | None:
        try:
            value = int(raw.strip())
        except ValueError:
            return f"must be {what}, {bounds}"
        if value < minimum or (maximum is not None and value > maximum):
            return f"must be {what}, {bounds}"
        return None

    return check


def url(*schemes: str) -> Check:
    """A URL of one of `schemes`, with a host."""

    def check(raw: str) -> str | None:
        try:
            parts = urlsplit(raw)
            has_host = bool(parts.hostname) or "host=" in parts.query
        except ValueError:
            return f"must be a {' or '.join(schemes)} URL"
        if parts.scheme in schemes and (has_host or parts.path or parts.query):
            return None
        return f"must be a {' or '.join(f'{s}://' for s in schemes)} URL"

    return check


def address() -> Check:
    """`host:port`, the port in 1..65535."""
    valid_port = port()

    def check(raw: str) -> str | None:
        host, sep, number = raw.rpartition(":")
        if sep and host and valid_port(number) is None:
            return None
        return f"must be host:port with a port in 1..{MAX_PORT}"

    return check


def key(*, several: bool = False) -> Check:
    """32 bytes, base64url (a comma-separated list of them with `several`)."""

    def check(raw: str) -> str | None:
        parts = [p.strip() for p in raw.split(",")] if several else [raw.strip()]
        for part in parts:
            try:
                decoded = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
            except (ValueError, binascii.Error):
                decoded = b""
            if len(decoded) != 32:
                what = "comma-separated keys of" if several else "a key of"
                return f"must be {what} 32 bytes, base64url-encoded (python -m shared.secrets)"
        return None

    return check


def one_of(*choices: str, case: bool = False) -> Check:
    """One of `choices` (case-insensitive unless `case`)."""

    def check(raw: str) -> str | None:
        value = raw.strip() if case else raw.strip().upper()
        wanted = choices if case else tuple(c.upper() for c in choices)
        return None if value in wanted else f"must be one of {', '.join(choices)}"

    return check


def flag() -> Check:
    """A boolean: 1/0, true/false, yes/no."""
    return one_of("1", "0", "true", "false", "yes", "no")


@dataclass(frozen=True)
class Setting:
    """One setting: its name (`<SVC>` for each service) and the check of its value."""

    name: str
    check: Check

    def names(self, service: str) -> tuple[str, ...]:
        """The environment variables this setting is for one service."""
        return (self.name.replace("<SVC>", service.upper()),)


@dataclass(frozen=True)
class ServiceSetting(Setting):
    """A setting only `service` reads (`SENSEI_<SERVICE>_...`)."""

    service: str = ""

    def names(self, service: str) -> tuple[str, ...]:
        return (self.name,) if service == self.service else ()


_SECONDS = seconds()
_POSITIVE_SECONDS = seconds(above=True)
_DB_URL = url("postgresql", "postgres")

SETTINGS: tuple[Setting, ...] = (
    Setting("SENSEI_DATABASE_URL", _DB_URL),
    Setting("SENSEI_<SVC>_DATABASE_URL", _DB_URL),
    Setting("SENSEI_<SVC>_PORT", port(zero="any free port")),
    Setting("SENSEI_<SVC>_METRICS_PORT", port(zero="any free port")),
    Setting("SENSEI_GRACE_SECONDS", _SECONDS),
    Setting("SENSEI_MAX_MESSAGE_BYTES", integer(minimum=1024, maximum=2**31 - 1, unit="bytes")),
    Setting("SENSEI_REUSE_PORT", flag()),
    Setting("SENSEI_<SVC>_REUSE_PORT", flag()),
    Setting("SENSEI_LOG_LEVEL", one_of(*LOG_LEVELS)),
    Setting("SENSEI_REVOCATION_MAX_STALENESS_SECONDS", _POSITIVE_SECONDS),
    Setting("SENSEI_HANDSHAKE_TIMEOUT_SECONDS", _POSITIVE_SECONDS),
    Setting("SENSEI_CONNECTION_IDLE_SECONDS", _SECONDS),
    Setting("SENSEI_CONNECTION_MAX_AGE_SECONDS", _SECONDS),
    Setting("SENSEI_CONNECTION_AGE_GRACE_SECONDS", _SECONDS),
    Setting("SENSEI_MAX_CONNECTIONS", integer(minimum=1)),
    Setting("SENSEI_MAX_STREAMS_PER_CONNECTION", integer(minimum=1)),
    Setting("SENSEI_METRICS_BACKLOG", integer(minimum=1)),
    Setting("SENSEI_METRICS_MAX_CONNECTIONS", integer(minimum=1)),
    Setting("SENSEI_METRICS_TIMEOUT_SECONDS", _POSITIVE_SECONDS),
    *(Setting(f"SENSEI_{other.upper()}_ADDR", address()) for other in DEFAULT_PORTS),
    ServiceSetting("SENSEI_ORG_KEY_ENCRYPTION_KEY", key(), "org"),
    ServiceSetting("SENSEI_ORG_TOKEN_TTL_SECONDS", integer(minimum=10, maximum=86_400), "org"),
    ServiceSetting(
        "SENSEI_ORG_REVOCATION_HEARTBEAT_SECONDS", seconds(above=True, maximum=60), "org"
    ),
    ServiceSetting("SENSEI_ORG_AUDIT_CHECKPOINT_EVERY", integer(minimum=1), "org"),
    ServiceSetting("SENSEI_ORG_AUDIT_CHECKPOINT_SECONDS", _POSITIVE_SECONDS, "org"),
    ServiceSetting("SENSEI_MIGRATION_CONFIG_KEY", key(several=True), "migration"),
    ServiceSetting("SENSEI_MIGRATION_PLAN_CACHE_SECONDS", _SECONDS, "migration"),
    ServiceSetting("SENSEI_VERIFICATION_WORKERS", integer(minimum=0), "verification"),
    ServiceSetting("SENSEI_VERIFICATION_LEASE_SECONDS", seconds(minimum=0.1), "verification"),
    ServiceSetting("SENSEI_VERIFICATION_POLL_SECONDS", seconds(minimum=0.01), "verification"),
    ServiceSetting("SENSEI_VERIFICATION_MAX_ATTEMPTS", integer(minimum=1), "verification"),
    ServiceSetting(
        "SENSEI_VERIFICATION_CONNECT_TIMEOUT_SECONDS", seconds(minimum=0.1), "verification"
    ),
    ServiceSetting("SENSEI_PATTERN_WEAVIATE_URL", url("http", "https"), "pattern"),
    ServiceSetting("SENSEI_PATTERN_WEAVIATE_GRPC_PORT", port(), "pattern"),
    ServiceSetting("SENSEI_PATTERN_WEAVIATE_TIMEOUT_SECONDS", _POSITIVE_SECONDS, "pattern"),
    ServiceSetting("SENSEI_PATTERN_EMBEDDING_DIM", integer(minimum=1, maximum=16_000), "pattern"),
    ServiceSetting("SENSEI_PATTERN_INDEXER_BATCH_SIZE", integer(minimum=1), "pattern"),
    ServiceSetting("SENSEI_PATTERN_INDEXER_POLL_SECONDS", _POSITIVE_SECONDS, "pattern"),
    ServiceSetting("SENSEI_PATTERN_INDEXER_MAX_BACKOFF_SECONDS", _POSITIVE_SECONDS, "pattern"),
)


def problems(
    service: str, env: Mapping[str, str], settings: Iterable[Setting] = SETTINGS
) -> list[str]:
    """One line per malformed setting of `service` in `env` (empty: it may start)."""
    found = []
    for setting in settings:
        for name in setting.names(service):
            raw = env.get(name)
            if raw is None or raw == "":
                continue
            problem = setting.check(raw)
            if problem:
                found.append(f"{name} {problem}, got {raw!r}")
    found.extend(_derived_metrics_port(service, env))
    return found


def _derived_metrics_port(service: str, env: Mapping[str, str]) -> list[str]:
    upper = f"{PREFIX}{service.upper()}"
    raw_port = env.get(f"{upper}_PORT") or str(DEFAULT_PORTS.get(service, 0))
    if env.get(f"{upper}_METRICS_PORT") or not raw_port.isdigit():
        return []
    grpc_port = int(raw_port)
    derived = grpc_port + METRICS_PORT_OFFSET
    if grpc_port == 0 or grpc_port > MAX_PORT or derived <= MAX_PORT:
        return []
    return [
        f"{upper}_METRICS_PORT is unset and its default, {upper}_PORT + {METRICS_PORT_OFFSET}"
        f" = {derived}, is not a port: set {upper}_METRICS_PORT (0 for any free port)"
    ]


def check(service: str, env: Mapping[str, str]) -> None:
    """Raises InvalidSettings naming every malformed setting of `service`."""
    found = problems(service, env)
    if found:
        raise InvalidSettings(found)
