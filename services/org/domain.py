"""The org service's rules: its resources, input validation and who may do what.

Pure: no I/O. Validation collects every violation of a request before raising, so a
caller sees all of them in one BadRequest. Role rules go beyond the interceptor's minimum
level (docs/architecture.md#roles): nobody manages a user above their own role or grants a
role above their own (so only an OWNER creates, promotes or demotes OWNERs), plan changes
need an OWNER (or a service), and an organization always keeps at least one OWNER.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from shared import names
from shared.auth import Principal
from shared.errors import (
    EtagMismatch,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    PermissionDenied,
)

MAX_DISPLAY_NAME = 200
MAX_EMAIL = 254
MAX_URL = 2048
API_KEY_SCHEME = "sk"

_SLUG = re.compile(r"^[a-z][a-z0-9-]{1,61}[a-z0-9]$")
# Pragmatic address check: one @, a dot-separated domain with a TLD, no spaces.
_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
    r"[A-Za-z]{2,63}$"
)


class Plan(StrEnum):
    """Billing plans; what each allows: docs/architecture.md#plan-quotas."""

    FREE = "FREE"
    PRO = "PRO"
    ENTERPRISE = "ENTERPRISE"


class Role(StrEnum):
    """Roles in an organization, VIEWER < MEMBER < ADMIN < OWNER."""

    OWNER = "OWNER"
    ADMIN = "ADMIN"
    MEMBER = "MEMBER"
    VIEWER = "VIEWER"

    @property
    def rank(self) -> int:
        """Position in the role order (higher is more powerful)."""
        return _ROLE_RANK[self]


_ROLE_RANK = {Role.VIEWER: 1, Role.MEMBER: 2, Role.ADMIN: 3, Role.OWNER: 4}


def etag_of(resource_id: str, version: int) -> str:
    """The opaque etag of one version of a resource."""
    return hashlib.sha256(f"{resource_id}:{version}".encode()).hexdigest()[:20]


# --- resources ------------------------------------------------------------------------


@dataclass(frozen=True)
class Organization:
    """A tenant."""

    id: str
    display_name: str
    slug: str
    plan: Plan
    settings: Mapping[str, Any]
    created_at: datetime
    updated_at: datetime
    version: int

    @property
    def etag(self) -> str:
        """Current etag."""
        return etag_of(self.id, self.version)


@dataclass(frozen=True)
class User:
    """A person in an organization."""

    id: str
    org_id: str
    email: str
    display_name: str
    role: Role
    avatar_url: str
    created_at: datetime
    updated_at: datetime
    version: int

    @property
    def etag(self) -> str:
        """Current etag."""
        return etag_of(self.id, self.version)


@dataclass(frozen=True)
class ServiceAccount:
    """A non-human principal (role SERVICE, no organization)."""

    id: str
    display_name: str
    created_at: datetime


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


# --- inputs ---------------------------------------------------------------------------


@dataclass(frozen=True)
class OrganizationDraft:
    """A CreateOrganization request, as text (enums by name, "" when unset)."""

    display_name: str
    slug: str
    plan: str
    settings: Mapping[str, Any]


@dataclass(frozen=True)
class OrganizationPatch:
    """An UpdateOrganization request: new values, the mask, the expected etag."""

    paths: Sequence[str]
    display_name: str
    slug: str
    plan: str
    settings: Mapping[str, Any]
    etag: str


@dataclass(frozen=True)
class UserDraft:
    """A CreateUser request."""

    email: str
    display_name: str
    role: str
    avatar_url: str


@dataclass(frozen=True)
class UserPatch:
    """An UpdateUser request."""

    paths: Sequence[str]
    email: str
    display_name: str
    role: str
    avatar_url: str
    etag: str


@dataclass(frozen=True)
class ApiKeyDraft:
    """A CreateApiKey request."""

    user_name: str
    display_name: str
    expires_at: datetime | None


@dataclass(frozen=True)
class Changes:
    """Validated new column values of an update (only the masked ones)."""

    values: Mapping[str, Any] = field(default_factory=dict)


# --- validation -----------------------------------------------------------------------


def raise_if(violations: Iterable[FieldViolation | None]) -> None:
    """INVALID_ARGUMENT listing every violation, if there is any."""
    found = [v for v in violations if v is not None]
    if found:
        raise InvalidArgument(found)


def check_display_name(value: str, path: str) -> FieldViolation | None:
    """1..200 printable characters, not only spaces."""
    if not value.strip():
        return FieldViolation(path, "is required", "REQUIRED")
    if len(value) > MAX_DISPLAY_NAME:
        return FieldViolation(path, f"must be at most {MAX_DISPLAY_NAME} characters", "TOO_LONG")
    if not value.isprintable():
        return FieldViolation(path, "must not contain control characters")
    return None


def check_slug(value: str, path: str) -> FieldViolation | None:
    """3..63 of [a-z0-9-], starting with a letter, not ending with `-`."""
    if not value:
        return FieldViolation(path, "is required", "REQUIRED")
    if not _SLUG.fullmatch(value) or "--" in value:
        return FieldViolation(
            path,
            "must be 3-63 characters of a-z, 0-9 and single '-', start with a letter"
            " and not end with '-'",
            "INVALID_SLUG",
        )
    return None


def check_email(value: str, path: str) -> FieldViolation | None:
    """A plausible e-mail address of at most 254 characters."""
    if not value:
        return FieldViolation(path, "is required", "REQUIRED")
    if len(value) > MAX_EMAIL or not _EMAIL.fullmatch(value):
        return FieldViolation(path, "must be a valid e-mail address", "INVALID_EMAIL")
    return None


def check_url(value: str, path: str) -> FieldViolation | None:
    """Empty, or an absolute http(s) URL with a host."""
    if not value:
        return None
    try:
        parts = urlsplit(value)
        valid = parts.scheme in {"http", "https"} and bool(parts.hostname)
    except ValueError:
        valid = False
    if not valid or len(value) > MAX_URL or not value.isprintable() or " " in value:
        return FieldViolation(
            path, f"must be an http(s) URL of at most {MAX_URL} characters", "INVALID_URL"
        )
    return None


def check_plan(value: str, path: str, *, required: bool) -> FieldViolation | None:
    """A known plan (or unset, when not required)."""
    if not value or value == "UNSPECIFIED":
        return FieldViolation(path, "is required", "REQUIRED") if required else None
    if value not in Plan.__members__:
        return FieldViolation(path, "must be PLAN_FREE, PLAN_PRO or PLAN_ENTERPRISE")
    return None


def check_role(value: str, path: str, *, required: bool) -> FieldViolation | None:
    """A known role (or unset, when not required)."""
    if not value or value == "UNSPECIFIED":
        return FieldViolation(path, "is required", "REQUIRED") if required else None
    if value not in Role.__members__:
        return FieldViolation(path, "must be ROLE_OWNER, ROLE_ADMIN, ROLE_MEMBER or ROLE_VIEWER")
    return None


def check_mask(
    paths: Sequence[str], mutable: Iterable[str], immutable: Iterable[str], path: str
) -> list[FieldViolation]:
    """Every path must be a known mutable field; the mask must not be empty."""
    if not paths:
        return [FieldViolation(path, "must list the fields to change", "REQUIRED")]
    allowed, frozen = set(mutable), set(immutable)
    out = []
    for item in paths:
        if item in frozen:
            out.append(FieldViolation(path, f"{item!r} cannot be changed", "IMMUTABLE_FIELD"))
        elif item not in allowed:
            out.append(FieldViolation(path, f"{item!r} is not a field", "UNKNOWN_FIELD"))
    return out


def normalize_email(value: str) -> str:
    """E-mails compare case-insensitively; we store them lower-cased."""
    return value.strip().lower()


# --- organizations --------------------------------------------------------------------

ORGANIZATION_MUTABLE = ("display_name", "slug", "plan", "settings")
ORGANIZATION_IMMUTABLE = ("name", "id", "create_time", "update_time", "etag")


def validate_new_organization(
    draft: OrganizationDraft, extra: Iterable[FieldViolation] = ()
) -> OrganizationDraft:
    """The draft with defaults applied; INVALID_ARGUMENT listing every problem."""
    raise_if(
        [
            *extra,
            check_display_name(draft.display_name, "organization.display_name"),
            check_slug(draft.slug, "organization.slug"),
            check_plan(draft.plan, "organization.plan", required=False),
        ]
    )
    plan = draft.plan if draft.plan in Plan.__members__ else Plan.FREE.value
    return OrganizationDraft(draft.display_name.strip(), draft.slug, plan, draft.settings)


def organization_changes(
    actor: Principal,
    current: Organization,
    patch: OrganizationPatch,
    extra: Iterable[FieldViolation] = (),
) -> Changes:
    """Validated column changes of an UpdateOrganization, after the role and etag rules."""
    violations: list[FieldViolation | None] = [
        *extra,
        *check_mask(patch.paths, ORGANIZATION_MUTABLE, ORGANIZATION_IMMUTABLE, "update_mask"),
    ]
    paths = set(patch.paths)
    if "display_name" in paths:
        violations.append(check_display_name(patch.display_name, "organization.display_name"))
    if "slug" in paths:
        violations.append(check_slug(patch.slug, "organization.slug"))
    if "plan" in paths:
        violations.append(check_plan(patch.plan, "organization.plan", required=True))
    raise_if(violations)
    if "plan" in paths and not (actor.is_service or actor.role == Role.OWNER):
        raise PermissionDenied("only an OWNER may change the plan", reason="PLAN_NEEDS_OWNER")
    check_etag(patch.etag, current.etag, "Organization", f"organizations/{current.id}")
    values: dict[str, Any] = {}
    if "display_name" in paths:
        values["display_name"] = patch.display_name.strip()
    if "slug" in paths:
        values["slug"] = patch.slug
    if "plan" in paths:
        values["plan"] = patch.plan
    if "settings" in paths:
        values["settings"] = dict(patch.settings)
    return Changes(values)


def check_etag(sent: str, current: str, resource_type: str, name: str) -> None:
    """ABORTED when an etag was sent and it is not the current one."""
    if sent and sent != current:
        raise EtagMismatch(resource_type, name)


def lookup_allowed(actor: Principal, own_org: Organization | None, slug: str) -> bool:
    """Users may look up only their own organization's slug (services: any)."""
    return actor.is_service or (own_org is not None and own_org.slug == slug)


# --- users ----------------------------------------------------------------------------

USER_MUTABLE = ("display_name", "email", "role", "avatar_url")
USER_IMMUTABLE = ("name", "id", "org_id", "create_time", "update_time", "etag")


def actor_rank(actor: Principal) -> int:
    """How far up the role order the caller reaches (services above OWNER)."""
    if actor.is_service:
        return Role.OWNER.rank + 1
    return Role(actor.role).rank if actor.role in Role.__members__ else 0


def check_can_grant(actor: Principal, role: Role) -> None:
    """Nobody grants a role above their own: only OWNERs (and services) make OWNERs."""
    if role.rank > actor_rank(actor):
        raise PermissionDenied(
            f"only an {role.value} may grant the {role.value} role",
            reason="ROLE_GRANT_DENIED",
            metadata={"role": role.value},
        )


def check_can_manage(actor: Principal, user: User) -> None:
    """Nobody changes, deletes or creates keys for a user above their own role."""
    if user.role.rank > actor_rank(actor):
        raise PermissionDenied(
            f"only an {user.role.value} may manage an {user.role.value}",
            reason="USER_ABOVE_CALLER",
            metadata={"role": user.role.value},
        )


def check_keeps_an_owner(user: User, remaining_owners: int, verb: str) -> None:
    """An organization must keep at least one OWNER."""
    if user.role == Role.OWNER and remaining_owners < 1:
        raise FailedPrecondition(
            f"cannot {verb} the last OWNER of the organization", reason="LAST_OWNER"
        )


def validate_new_user(
    actor: Principal, draft: UserDraft, extra: Iterable[FieldViolation] = ()
) -> UserDraft:
    """The draft normalized, with defaults; checks the role may be granted by `actor`."""
    raise_if(
        [
            *extra,
            check_email(draft.email.strip(), "user.email"),
            check_display_name(draft.display_name, "user.display_name"),
            check_role(draft.role, "user.role", required=False),
            check_url(draft.avatar_url, "user.avatar_url"),
        ]
    )
    role = Role(draft.role) if draft.role in Role.__members__ else Role.MEMBER
    check_can_grant(actor, role)
    return UserDraft(
        email=normalize_email(draft.email),
        display_name=draft.display_name.strip(),
        role=role.value,
        avatar_url=draft.avatar_url,
    )


def user_changes(
    actor: Principal,
    current: User,
    patch: UserPatch,
    owner_count: int,
    extra: Iterable[FieldViolation] = (),
) -> Changes:
    """Validated column changes of an UpdateUser, after role, last-owner and etag rules."""
    violations: list[FieldViolation | None] = [
        *extra,
        *check_mask(patch.paths, USER_MUTABLE, USER_IMMUTABLE, "update_mask"),
    ]
    paths = set(patch.paths)
    if "display_name" in paths:
        violations.append(check_display_name(patch.display_name, "user.display_name"))
    if "email" in paths:
        violations.append(check_email(patch.email.strip(), "user.email"))
    if "role" in paths:
        violations.append(check_role(patch.role, "user.role", required=True))
    if "avatar_url" in paths:
        violations.append(check_url(patch.avatar_url, "user.avatar_url"))
    raise_if(violations)
    check_can_manage(actor, current)
    values: dict[str, Any] = {}
    if "role" in paths:
        role = Role(patch.role)
        check_can_grant(actor, role)
        if role != current.role:
            check_keeps_an_owner(current, owner_count - 1, "demote")
            values["role"] = role.value
    check_etag(patch.etag, current.etag, "User", user_name(current))
    if "display_name" in paths:
        values["display_name"] = patch.display_name.strip()
    if "email" in paths:
        values["email"] = normalize_email(patch.email)
    if "avatar_url" in paths:
        values["avatar_url"] = patch.avatar_url
    return Changes(values)


def check_user_deletable(actor: Principal, user: User, owner_count: int, etag: str) -> None:
    """Role, last-owner and etag rules of DeleteUser."""
    check_can_manage(actor, user)
    check_keeps_an_owner(user, owner_count - 1, "delete")
    check_etag(etag, user.etag, "User", user_name(user))


def user_name(user: User) -> str:
    """`organizations/{org}/users/{id}`."""
    return f"organizations/{user.org_id}/users/{user.id}"


# --- api keys -------------------------------------------------------------------------


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


def check_service_account(display_name: str) -> None:
    """A CreateServiceAccount request needs a display name."""
    raise_if([check_display_name(display_name, "service_account.display_name")])
