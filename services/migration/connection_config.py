"""Connection configs of a migration: redaction in responses, secrets kept across updates.

Parsing and validation (which keys and DSN parameters a caller may send) live in
``shared/connection_configs.py`` (the destination policy that connects is
``shared/destinations.py``).
Passwords (the ``password`` key and every secret DSN parameter) are secrets: every response
shows them as ``REDACTED``; a client that sends a redacted config back keeps the stored
secret while the destination (engine, host, port, database, user) stays the same.
Encryption at rest is ``config_cipher.py``'s job.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from shared.connection_configs import (
    CONNECTION_CONFIG_KEYS,
    REDACTED,
    connection_config_violations,
    destination_key,
    is_secret_parameter,
    stored_password,
)
from shared.errors import FieldViolation, InvalidArgument

__all__ = [
    "CONNECTION_CONFIG_KEYS",
    "REDACTED",
    "connection_config_violations",
    "merge_redacted_connection_config",
    "redact_connection_config",
]


def _replace_dsn_secrets(dsn: str, replace: str) -> str:
    """``dsn`` with its password (userinfo) and every secret query parameter replaced."""
    try:
        parts = urlsplit(dsn)
    except ValueError:
        return REDACTED
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, hosts = netloc.rsplit("@", 1)
        user, sep, old = userinfo.partition(":")
        if sep and old:
            netloc = f"{user}:{quote(replace, safe='')}@{hosts}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(is_secret_parameter(k) for k, _ in pairs):
            query = urlencode([(k, replace if is_secret_parameter(k) else v) for k, v in pairs])
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _dsn_has_redacted_secret(dsn: str) -> bool:
    try:
        parts = urlsplit(dsn)
    except ValueError:
        return False
    if "@" in parts.netloc and parts.password == REDACTED:
        return True
    return any(
        is_secret_parameter(k) and v == REDACTED
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
    )


def redact_connection_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``config`` fit for a response, a log or an audit event: secrets REDACTED."""
    redacted = dict(config)
    for key in list(redacted):
        if is_secret_parameter(key) and isinstance(redacted[key], str) and redacted[key]:
            redacted[key] = REDACTED
    if isinstance(redacted.get("dsn"), str):
        redacted["dsn"] = _replace_dsn_secrets(redacted["dsn"], REDACTED)
    return redacted


def merge_redacted_connection_config(
    new: Mapping[str, Any], stored: Mapping[str, Any], field_name: str
) -> dict[str, Any]:
    """``new`` with each REDACTED password replaced by the stored secret it stands for.

    Lets a client send back a config it read (redacted) without losing the credentials, but
    only to the same destination: a REDACTED password with another engine, host, port,
    database or user is INVALID_ARGUMENT (else a caller could send the stored password to a
    server of their choosing).
    """
    merged = dict(new)
    dsn = merged.get("dsn")
    redacted_key = merged.get("password") == REDACTED
    redacted_dsn = isinstance(dsn, str) and _dsn_has_redacted_secret(dsn)
    if not (redacted_key or redacted_dsn):
        return merged
    secret = stored_password(stored)
    if secret is not None and destination_key(_without_secrets(merged)) != destination_key(stored):
        raise InvalidArgument(
            [
                FieldViolation(
                    f"{field_name}.password",
                    "send the password again when the destination changes"
                    " (engine, host, port, database or user)",
                )
            ]
        )
    if redacted_key:
        if secret is not None:
            merged["password"] = secret
        else:
            del merged["password"]
    if redacted_dsn and isinstance(dsn, str):
        merged["dsn"] = _replace_dsn_secrets(dsn, secret if secret is not None else "")
    return merged


def _without_secrets(config: Mapping[str, Any]) -> dict[str, Any]:
    cleaned = {k: v for k, v in config.items() if k != "password"}
    if isinstance(cleaned.get("dsn"), str):
        cleaned["dsn"] = _replace_dsn_secrets(cleaned["dsn"], "x")
    return cleaned
