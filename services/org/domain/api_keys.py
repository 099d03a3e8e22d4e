"""API keys: their secrets (only a digest is stored), who a key acts as, and CreateApiKey checks."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from services.org.domain.validation import check_display_name, raise_if
from shared import names
from shared.errors import FieldViolation, InvalidArgument

API_KEY_SCHEME = "sk"


@dataclass(frozen=True)
class ApiKey:
    """An API key's metadata (never its secret)."""

    id: str
    org_id: str | None
    user_id: str | None
    service_account_id: str | None
    display_name: str
    prefix: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None

    def usable_at(self, now: datetime) -> bool:
        """Whether the key may be exchanged for a token at `now`."""
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


@dataclass(frozen=True)
class ApiKeyOwner:
    """Who an API key acts as, resolved when it is exchanged."""

    key: ApiKey
    role: str  # a Role value, SERVICE or OPERATOR
    subject: str  # users/{id}, serviceAccounts/{id} or operators/{id}


@dataclass(frozen=True)
class TokenStanding:
    """The state of an API key that decides whether its tokens still count."""

    revoked: bool
    user_role: str | None  # the key's user's current role; None for platform principals


@dataclass(frozen=True)
class NewSecret:
    """A freshly generated API key secret and what is stored about it."""

    secret: str
    prefix: str
    sha256: bytes


def new_api_key_secret() -> NewSecret:
    """A random secret `sk_<prefix>_<random>`; only its SHA-256 is ever stored."""
    prefix = f"{API_KEY_SCHEME}_{secrets.token_hex(4)}"
    secret = f"{prefix}_{secrets.token_urlsafe(32)}"
    return NewSecret(secret=secret, prefix=prefix, sha256=secret_sha256(secret))


def secret_sha256(secret: str) -> bytes:
    """The stored digest of an API key secret."""
    return hashlib.sha256(secret.encode()).digest()


def looks_like_api_key(secret: str) -> bool:
    """Cheap shape check before any lookup."""
    return secret.startswith(f"{API_KEY_SCHEME}_") and 20 <= len(secret) <= 200


@dataclass(frozen=True)
class ApiKeyDraft:
    """A CreateApiKey request."""

    user_name: str
    display_name: str
    expires_at: datetime | None


def validate_new_api_key(
    org_id: str, draft: ApiKeyDraft, now: datetime, extra: Iterable[FieldViolation] = ()
) -> str:
    """Checks a CreateApiKey request; returns the id of the user the key acts as."""
    violations: list[FieldViolation | None] = [
        *extra,
        check_display_name(draft.display_name, "api_key.display_name"),
    ]
    user_id = ""
    try:
        parsed = names.parse_name(
            draft.user_name, "organizations/{org}/users/{user}", "api_key.user"
        )
    except InvalidArgument as exc:
        violations.extend(exc.violations)
    else:
        if parsed["org"] != org_id:
            violations.append(
                FieldViolation("api_key.user", "must be a user of the parent organization")
            )
        user_id = parsed["user"]
    if draft.expires_at is not None and draft.expires_at <= now:
        violations.append(FieldViolation("api_key.expire_time", "must be in the future"))
    raise_if(violations)
    return user_id
