"""The suite's secret settings: which they are, the start-up check, and a generator.

A service refuses to start (`shared.server.main` exits with status 2) when one of its secrets
is missing and would be derived from something guessable, is a value published in this
repository (old docker-compose defaults, the test harness's, the development key-encryption
key), or is too short to be secret, unless `SENSEI_ENV=dev` (set by `make run` and the tests).

`python -m shared.secrets` prints fresh values for every secret as `KEY=value` lines: an
`.env` file for docker compose (`--compose` adds the PostgreSQL password) or the input of
`kubectl create secret generic sensei-secrets --from-env-file=...`. Standard library only,
so it runs with any Python 3.11 without the project's dependencies.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import secrets as random_secrets
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from shared.config import ConfigError

ENV_SETTING = "SENSEI_ENV"
DEV = "dev"
PRODUCTION = "production"
# What SENSEI_ENV may say; anything else is refused, so a typo cannot mean "production".
ENVIRONMENTS = frozenset({DEV, PRODUCTION, "prod"})
ALL_SERVICES = ("org", "migration", "verification", "pattern")
# Page-token secrets are free text: shorter than this is guessable.
MIN_TEXT_SECRET_CHARS = 32
KEY_BYTES = 32
# The compose file's PostgreSQL password (only `--compose` prints it).
COMPOSE_POSTGRES_PASSWORD = "POSTGRES_PASSWORD"


@dataclass(frozen=True)
class SecretSetting:
    """One secret setting: who reads it and what a good value looks like."""

    name: str
    services: tuple[str, ...]
    # "key": base64url of 32 random bytes (comma-separated list when `several`); "text": free.
    kind: str
    # What a service does without it (shown in the refusal).
    when_missing: str
    several: bool = False


SECRET_SETTINGS: tuple[SecretSetting, ...] = (
    SecretSetting(
        "SENSEI_PAGE_TOKEN_SECRET",
        ALL_SERVICES,
        "text",
        "page tokens would be signed with a key derived from the database URL",
    ),
    SecretSetting(
        "SENSEI_ORG_KEY_ENCRYPTION_KEY",
        ("org",),
        "key",
        "token signing keys would be sealed with the public development key",
    ),
    SecretSetting(
        "SENSEI_MIGRATION_CONFIG_KEY",
        ("migration",),
        "key",
        "connection configs cannot be encrypted",
        several=True,
    ),
)


def _digest(value: bytes) -> str:
    return hashlib.sha256(value).hexdigest()


# SHA-256 of every secret value ever published in this repository, so a copy-pasted default
# is refused in whatever spelling it arrives (keys are compared after base64url decoding).
_PUBLISHED_TEXT = frozenset(
    _digest(text.encode())
    for text in (
        "compose-dev-page-token-secret",  # docker-compose.yml until 2026-12
        "test-page-token-secret",  # tests/harness/suite.py
        "REPLACE-ME",  # deploy/k8s/secret.yaml placeholders until 2026-12
        "sensei",  # docker-compose.yml's PostgreSQL password until 2026-12
        "changeme",
        "secret",
    )
)
_PUBLISHED_KEYS = frozenset(
    {
        _digest(b"sensei-compose-dev-kek-32-bytes!"),  # docker-compose.yml until 2026-12
        _digest(b"sensei-compose-dev-config-key-32"),  # docker-compose.yml until 2026-12
        _digest(b"test-config-key-32-bytes-long!!!"),  # tests/harness/suite.py
        # services/org/tokens.py's development key-encryption key.
        _digest(hashlib.sha256(b"sensei-dev-token-key-encryption-key").digest()),
        _digest(bytes(KEY_BYTES)),
    }
)


class PublicSecretError(ConfigError):
    """A secret setting is missing, published or weak outside the dev environment."""


def environment(env: Mapping[str, str]) -> str:
    """`dev` or `production` (the default), from SENSEI_ENV."""
    raw = (env.get(ENV_SETTING) or PRODUCTION).strip().lower()
    if raw not in ENVIRONMENTS:
        raise PublicSecretError(
            f"{ENV_SETTING} must be {DEV!r} or {PRODUCTION!r}, got {env.get(ENV_SETTING)!r}"
        )
    return DEV if raw == DEV else PRODUCTION


def problems(service: str, env: Mapping[str, str]) -> list[str]:
    """Why `service` must not start in production with `env`; empty when it may."""
    found = []
    for name in (f"SENSEI_{service.upper()}_DATABASE_URL", "SENSEI_DATABASE_URL"):
        url = env.get(name)
        if url:
            # A database without a password (trust, peer, certificates) is the operator's call;
            # the one docker-compose.yml used to publish is not.
            password = urlsplit(url).password
            if password is not None and _digest(password.encode()) in _PUBLISHED_TEXT:
                found.append(f"{name} carries a database password published in the repository")
            break
    for setting in SECRET_SETTINGS:
        if service not in setting.services:
            continue
        value = (env.get(setting.name) or "").strip()
        if not value:
            found.append(f"{setting.name} is not set ({setting.when_missing})")
            continue
        parts = [p.strip() for p in value.split(",")] if setting.several else [value]
        for part in parts:
            problem = _problem(setting, part)
            if problem:
                found.append(f"{setting.name} {problem}")
                break
    return found


def _problem(setting: SecretSetting, value: str) -> str | None:
    if setting.kind == "text":
        if _digest(value.encode()) in _PUBLISHED_TEXT:
            return "is a value published in the Sensei repository"
        if len(value) < MIN_TEXT_SECRET_CHARS:
            return f"is shorter than {MIN_TEXT_SECRET_CHARS} characters"
        return None
    try:
        key = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (ValueError, binascii.Error):
        return "is not base64url"
    if _digest(key) in _PUBLISHED_KEYS:
        return "is a key published in the Sensei repository"
    if len(key) != KEY_BYTES:
        return f"must be {KEY_BYTES} bytes (base64url-encoded), got {len(key)}"
    return None


def check(service: str, env: Mapping[str, str]) -> None:
    """Raises PublicSecretError (one message naming every problem) unless `service` may start.

    In the dev environment (`SENSEI_ENV=dev`) every value is accepted.
    """
    if environment(env) == DEV:
        return
    found = problems(service, env)
    if found:
        raise PublicSecretError(
            f"refusing to start the {service} service with public or missing secrets: "
            + "; ".join(found)
            + ". Generate them with `python -m shared.secrets` (see README, Deploying),"
            f" or set {ENV_SETTING}={DEV} on a development machine."
        )


def generate(*, compose: bool = False) -> dict[str, str]:
    """Fresh random values for every secret setting (and compose's PostgreSQL password)."""
    values = {}
    for setting in SECRET_SETTINGS:
        if setting.kind == "key":
            raw = random_secrets.token_bytes(KEY_BYTES)
            values[setting.name] = base64.urlsafe_b64encode(raw).decode()
        else:
            values[setting.name] = random_secrets.token_urlsafe(KEY_BYTES)
    if compose:
        values[COMPOSE_POSTGRES_PASSWORD] = random_secrets.token_urlsafe(24)
    return values


def cli(argv: list[str]) -> int:
    """`python -m shared.secrets [--compose]`: KEY=value lines on stdout."""
    parser = argparse.ArgumentParser(
        prog="python -m shared.secrets",
        description="Print fresh values of Sensei's secret settings as KEY=value lines.",
    )
    parser.add_argument(
        "--compose",
        action="store_true",
        help=f"also {COMPOSE_POSTGRES_PASSWORD} (docker-compose.yml's PostgreSQL password)",
    )
    args = parser.parse_args(argv)
    for name, value in generate(compose=args.compose).items():
        print(f"{name}={value}")
    return 0


if __name__ == "__main__":
    sys.exit(cli(sys.argv[1:]))
