"""Connection configs of a migration: validation, redaction, and the arguments to connect.

A config is a JSON object with the keys of ``CONNECTION_CONFIG_KEYS`` (``{}`` means not
configured yet). Passwords (the ``password`` key and the password inside a ``dsn``) are
secrets: every response shows them as ``REDACTED``, and a client that sends a redacted
config back keeps the stored secret. Encryption at rest is ``config_cipher.py``'s job.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from shared.errors import FailedPrecondition, FieldViolation

CONNECTION_CONFIG_KEYS = frozenset(
    {"host", "port", "database", "user", "password", "dsn", "sslmode"}
)
SSL_MODES = frozenset({"disable", "allow", "prefer", "require", "verify-ca", "verify-full"})
REDACTED = "REDACTED"
_STRING_KEYS = ("host", "database", "user", "password", "dsn", "sslmode")


def connection_config_violations(config: Any, field_name: str) -> list[FieldViolation]:
    """Every violation in one connection config (``{}`` is valid: not configured yet)."""
    if not isinstance(config, Mapping):
        return [FieldViolation(field_name, "must be an object")]
    violations: list[FieldViolation] = []
    for key in sorted(set(config) - CONNECTION_CONFIG_KEYS):
        violations.append(
            FieldViolation(
                f"{field_name}.{key}",
                f"unknown key; accepted: {', '.join(sorted(CONNECTION_CONFIG_KEYS))}",
            )
        )
    for key in _STRING_KEYS:
        if key in config and not isinstance(config[key], str):
            violations.append(FieldViolation(f"{field_name}.{key}", "must be a string"))
    if "port" in config and _port_of(config["port"]) is None:
        violations.append(FieldViolation(f"{field_name}.port", "must be an integer 1-65535"))
    if isinstance(config.get("sslmode"), str) and config["sslmode"] not in SSL_MODES:
        violations.append(
            FieldViolation(
                f"{field_name}.sslmode", f"must be one of {', '.join(sorted(SSL_MODES))}"
            )
        )
    dsn = config.get("dsn")
    if isinstance(dsn, str):
        try:
            parts = urlsplit(dsn)
            parts.port  # noqa: B018  # raises ValueError on a malformed port
            valid = parts.scheme in ("postgres", "postgresql")
        except ValueError:
            valid = False
        if not valid:
            violations.append(
                FieldViolation(f"{field_name}.dsn", "must be a postgresql:// or postgres:// URL")
            )
    return violations


def _port_of(value: Any) -> int | None:
    # Struct carries every number as a double: accept 5432.0, refuse 5432.5.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not value.is_integer():
        return None
    port = int(value)
    return port if 1 <= port <= 65535 else None


def _replace_dsn_password(dsn: str, password: str | None) -> str:
    """``dsn`` with its password (in the userinfo or the query) replaced, if it has one."""
    parts = urlsplit(dsn)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, hosts = netloc.rsplit("@", 1)
        user, sep, old = userinfo.partition(":")
        if sep and old and password is not None:
            netloc = f"{user}:{password}@{hosts}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if password is not None and any(k == "password" for k, _ in pairs):
            query = urlencode([(k, password if k == "password" else v) for k, v in pairs])
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _dsn_password(dsn: str) -> str | None:
    parts = urlsplit(dsn)
    if "@" in parts.netloc:
        _, sep, password = parts.netloc.rsplit("@", 1)[0].partition(":")
        if sep and password:
            return password
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "password":
            return value
    return None


def redact_connection_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``config`` fit for a response: every password reads REDACTED."""
    redacted = dict(config)
    if isinstance(redacted.get("password"), str) and redacted["password"]:
        redacted["password"] = REDACTED
    if isinstance(redacted.get("dsn"), str):
        redacted["dsn"] = _replace_dsn_password(redacted["dsn"], REDACTED)
    return redacted


def merge_redacted_connection_config(
    new: Mapping[str, Any], stored: Mapping[str, Any]
) -> dict[str, Any]:
    """``new`` with each REDACTED password replaced by the stored secret it stands for.

    Lets a client send back a config it read (redacted) without losing the credentials.
    """
    merged = dict(new)
    if merged.get("password") == REDACTED:
        if isinstance(stored.get("password"), str):
            merged["password"] = stored["password"]
        else:
            del merged["password"]
    dsn = merged.get("dsn")
    if isinstance(dsn, str) and _dsn_password(dsn) == REDACTED:
        stored_dsn = stored.get("dsn")
        secret = _dsn_password(stored_dsn) if isinstance(stored_dsn, str) else None
        merged["dsn"] = _replace_dsn_password(dsn, secret if secret is not None else "")
    return merged


def connect_arguments(config: Mapping[str, Any], *, field_name: str) -> dict[str, Any]:
    """The keyword arguments of ``asyncpg.connect`` that reach the database of ``config``.

    Raises FailedPrecondition (CONNECTION_NOT_CONFIGURED) if it names no database server.
    """
    if not config.get("dsn") and not config.get("host"):
        raise FailedPrecondition(
            f"{field_name} names no database (set dsn or host)",
            reason="CONNECTION_NOT_CONFIGURED",
            metadata={"field": field_name},
        )
    kwargs: dict[str, Any] = {}
    if config.get("dsn"):
        kwargs["dsn"] = config["dsn"]
    for key in ("host", "user", "password", "database"):
        if config.get(key):
            kwargs[key] = config[key]
    if "port" in config and (port := _port_of(config["port"])) is not None:
        kwargs["port"] = port
    if config.get("sslmode"):
        kwargs["ssl"] = config["sslmode"]
    return kwargs
