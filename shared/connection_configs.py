"""Connection configs of migrations: what a caller may send, parsed into a `Destination`.

A config is a JSON object (the keys of ``CONNECTION_CONFIG_KEYS``): a ``postgresql://`` (or
``mysql://`` / ``mariadb://``) DSN and/or separate keys, the separate keys overriding the DSN's
parts; ``engine`` names the database engine when there is no DSN (PostgreSQL by default).
Nothing in it may name a local file, socket or service: DSN parameters outside
``DSN_PARAMETERS`` and hosts that are
paths are violations naming the parameter. Where a destination may point, and connecting
there, is ``shared/destinations.py``; docs/destinations.md describes both for operators.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from shared.errors import FailedPrecondition, FieldViolation

# Engines a config may name (MySQL covers MariaDB), their DSN schemes, default ports and users.
POSTGRESQL = "postgresql"
MYSQL = "mysql"
ENGINES = (POSTGRESQL, MYSQL)
ENGINE_ALIASES = {
    "postgresql": POSTGRESQL,
    "postgres": POSTGRESQL,
    "mysql": MYSQL,
    "mariadb": MYSQL,
}
DSN_SCHEMES = ENGINE_ALIASES
DEFAULT_PORTS = {POSTGRESQL: 5432, MYSQL: 3306}
DEFAULT_USERS = {POSTGRESQL: "postgres", MYSQL: "root"}
DEFAULT_USER = DEFAULT_USERS[POSTGRESQL]

# `schema`: where a PostgreSQL target holds tables translated from MySQL (default public).
CONNECTION_CONFIG_KEYS = frozenset(
    {"engine", "host", "port", "database", "user", "password", "dsn", "sslmode", "schema"}
)
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
DEFAULT_SSL_MODE = "prefer"
# Query parameters a caller's DSN may carry; everything else is refused by name.
DSN_PARAMETERS = frozenset({"sslmode", "connect_timeout", "user", "password", "dbname", "port"})
# Parameters libpq reads a local file, directory or socket from: refused with that reason.
FILE_PARAMETERS = frozenset(
    {
        "host",
        "hostaddr",
        "passfile",
        "service",
        "servicefile",
        "sslrootcert",
        "sslcert",
        "sslkey",
        "sslcrl",
        "sslcrldir",
        "gssdelegation",
        "krbsrvname",
    }
)
# Parameter names whose values are secrets: redacted wherever a config is shown.
SECRET_PARAMETERS = frozenset({"password", "sslpassword"})
REDACTED = "REDACTED"
MAX_CONNECT_TIMEOUT_SECONDS = 30.0
_DSN_SHAPE = "must be a postgresql://, postgres://, mysql:// or mariadb:// URL"


def is_secret_parameter(name: str) -> bool:
    """Whether a DSN parameter's value is a secret (shown as REDACTED)."""
    lowered = name.lower()
    return lowered in SECRET_PARAMETERS or "pass" in lowered or "secret" in lowered


# --- parsing -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Destination:
    """A database server and the credentials to log in, parsed from a connection config."""

    engine: str
    host: str
    port: int
    database: str
    user: str
    password: str | None = field(default=None, repr=False)
    sslmode: str = DEFAULT_SSL_MODE
    connect_timeout: float | None = None
    # PostgreSQL schema holding tables translated from a MySQL source (docs/destinations.md).
    schema: str = "public"

    @property
    def key(self) -> tuple[str, str, int, str, str]:
        """What a stored secret is bound to: engine, host, port, database, user."""
        return (self.engine, self.host.lower(), self.port, self.database, self.user)

    def describe(self) -> str:
        """``host:port/database`` (no credentials), for logs."""
        return f"{self.host}:{self.port}/{self.database}"


@dataclass(frozen=True)
class _Parts:
    """The parts of a config before defaults: None where neither the DSN nor a key sets it."""

    engine: str = POSTGRESQL
    host: str | None = None
    port: int | None = None
    database: str | None = None
    user: str | None = None
    password: str | None = None
    sslmode: str | None = None
    connect_timeout: float | None = None
    schema: str | None = None


def connection_config_violations(config: Any, field_name: str) -> list[FieldViolation]:
    """Every violation in one connection config (``{}`` is valid: not configured yet).

    A target (``...target_config``) must be PostgreSQL: sources may be either engine.
    """
    parts, violations = _parse(config, field_name)
    if field_name.endswith("target_config") and parts.engine != POSTGRESQL and not violations:
        where = "dsn" if isinstance(config.get("dsn"), str) and config["dsn"] else "engine"
        violations.append(
            FieldViolation(f"{field_name}.{where}", "targets must be PostgreSQL databases")
        )
    return violations


def destination_of(config: Mapping[str, Any], field_name: str) -> Destination:
    """The destination of a stored config.

    FailedPrecondition CONNECTION_NOT_CONFIGURED when it names no server, and
    CONNECTION_CONFIG_INVALID when it breaks the rules (a config stored before they existed).
    """
    parts, violations = _parse(config, field_name)
    if violations:
        raise FailedPrecondition(
            f"{field_name} is not usable: {violations[0].field} {violations[0].description}",
            reason="CONNECTION_CONFIG_INVALID",
            metadata={"field": field_name},
        )
    destination = _destination(parts)
    if destination is None:
        raise FailedPrecondition(
            f"{field_name} names no database (set dsn or host)",
            reason="CONNECTION_NOT_CONFIGURED",
            metadata={"field": field_name},
        )
    return destination


def destination_key(config: Mapping[str, Any]) -> tuple[str, str, int, str, str] | None:
    """The destination (engine, host, port, database, user) of a config; None if none/invalid."""
    parts, violations = _parse(config, "config")
    destination = None if violations else _destination(parts)
    return destination.key if destination is not None else None


def engine_of(config: Mapping[str, Any]) -> str:
    """The engine a config names (``postgresql`` when it names none or is invalid)."""
    return _parse(config, "config")[0].engine


def stored_password(config: Mapping[str, Any]) -> str | None:
    """The password a config carries (its ``password`` key, else its DSN's), if any."""
    parts, _ = _parse(config, "config")
    return parts.password


def _destination(parts: _Parts) -> Destination | None:
    if not parts.host:
        return None
    user = parts.user or DEFAULT_USERS[parts.engine]
    return Destination(
        engine=parts.engine,
        host=parts.host,
        port=parts.port or DEFAULT_PORTS[parts.engine],
        database=parts.database or user,
        user=user,
        password=parts.password,
        sslmode=parts.sslmode or DEFAULT_SSL_MODE,
        connect_timeout=parts.connect_timeout,
        schema=parts.schema or "public",
    )


def _parse(config: Any, field_name: str) -> tuple[_Parts, list[FieldViolation]]:
    if not isinstance(config, Mapping):
        return _Parts(), [FieldViolation(field_name, "must be an object")]
    violations: list[FieldViolation] = []
    for key in sorted(set(config) - CONNECTION_CONFIG_KEYS):
        violations.append(
            FieldViolation(
                f"{field_name}.{key}",
                f"unknown key; accepted: {', '.join(sorted(CONNECTION_CONFIG_KEYS))}",
            )
        )
    for key in ("engine", "host", "database", "user", "password", "dsn", "sslmode", "schema"):
        if key in config and not isinstance(config[key], str):
            violations.append(FieldViolation(f"{field_name}.{key}", "must be a string"))
    values: dict[str, Any] = {}
    dsn = config.get("dsn")
    if isinstance(dsn, str) and dsn:
        values, dsn_violations = _parse_dsn(dsn, f"{field_name}.dsn")
        violations += dsn_violations
    for key in ("host", "database", "user", "password", "sslmode", "schema"):
        if isinstance(config.get(key), str) and config[key]:
            values[key] = config[key]
    violations += _engine_violations(config.get("engine"), values, field_name)
    if "port" in config:
        port = port_of(config["port"])
        if port is None:
            violations.append(FieldViolation(f"{field_name}.port", "must be an integer 1-65535"))
        else:
            values["port"] = port
    host = values.get("host")
    if isinstance(host, str):
        violations += _host_violations(host, f"{field_name}.host")
    sslmode = values.get("sslmode")
    if isinstance(sslmode, str) and sslmode not in SSL_MODES:
        violations.append(
            FieldViolation(f"{field_name}.sslmode", f"must be one of {', '.join(SSL_MODES)}")
        )
    return _Parts(**values), violations


def _engine_violations(
    engine: Any, values: dict[str, Any], field_name: str
) -> list[FieldViolation]:
    """Checks the ``engine`` key against the DSN's scheme; sets ``values["engine"]``."""
    if not isinstance(engine, str) or not engine:
        return []
    named = ENGINE_ALIASES.get(engine.lower())
    if named is None:
        return [FieldViolation(f"{field_name}.engine", f"must be one of {', '.join(ENGINES)}")]
    if values.setdefault("engine", named) != named:
        return [FieldViolation(f"{field_name}.engine", "names another engine than the dsn")]
    return []


def _parse_dsn(dsn: str, field_name: str) -> tuple[dict[str, Any], list[FieldViolation]]:
    try:
        parts = urlsplit(dsn)
        port = parts.port
    except ValueError:
        return {}, [FieldViolation(field_name, _DSN_SHAPE)]
    engine = DSN_SCHEMES.get(parts.scheme)
    if engine is None:
        return {}, [FieldViolation(field_name, _DSN_SHAPE)]
    violations: list[FieldViolation] = []
    values: dict[str, Any] = {"engine": engine}
    hostinfo = parts.netloc.rpartition("@")[2]
    if "," in hostinfo:
        violations.append(FieldViolation(field_name, "must name one host (no host lists)"))
    elif parts.hostname:
        values["host"] = unquote(parts.hostname)
    if port is not None:
        values["port"] = port
    if parts.username:
        values["user"] = unquote(parts.username)
    if parts.password:
        values["password"] = unquote(parts.password)
    if parts.path.strip("/"):
        values["database"] = unquote(parts.path.lstrip("/"))
    try:
        query = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError:
        return values, [*violations, FieldViolation(field_name, "has a malformed query string")]
    for name, value in query:
        where = f"{field_name}?{name}"
        if name in FILE_PARAMETERS:
            violations.append(
                FieldViolation(
                    where,
                    "names a local file, socket or service: not accepted from callers"
                    " (put the server in the URL; TLS CA bundles are an operator setting)",
                )
            )
        elif name not in DSN_PARAMETERS:
            violations.append(
                FieldViolation(
                    where, f"unsupported parameter; accepted: {', '.join(sorted(DSN_PARAMETERS))}"
                )
            )
        elif name == "connect_timeout":
            try:
                values["connect_timeout"] = min(float(value), MAX_CONNECT_TIMEOUT_SECONDS)
                if values["connect_timeout"] <= 0:
                    raise ValueError(value)
            except ValueError:
                violations.append(FieldViolation(where, "must be a positive number of seconds"))
        elif name == "port":
            if (query_port := port_of(int(value) if value.isdigit() else None)) is None:
                violations.append(FieldViolation(where, "must be an integer 1-65535"))
            else:
                values["port"] = query_port
        else:
            values[{"dbname": "database"}.get(name, name)] = value
    return values, violations


def _host_violations(host: str, field_name: str) -> list[FieldViolation]:
    if host.startswith(("/", "@", ".")) or "/" in host or "\\" in host:
        return [FieldViolation(field_name, "must be a host name or IP address, not a socket path")]
    if "," in host:
        return [FieldViolation(field_name, "must name one host (no host lists)")]
    if len(host) > 253 or any(c.isspace() or not c.isprintable() for c in host):
        return [FieldViolation(field_name, "must be a host name or IP address")]
    return []


def port_of(value: Any) -> int | None:
    """A TCP port from a config value (Struct carries numbers as doubles: 5432.0 is fine)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not value.is_integer():
        return None
    port = int(value)
    return port if 1 <= port <= 65535 else None
