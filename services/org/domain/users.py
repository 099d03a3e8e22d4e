"""Users and roles: who may manage, grant and demote whom (docs/architecture.md#roles).

Nobody manages a user above their own role or grants a role above their own (so only an
OWNER creates, promotes or demotes OWNERs), and an organization always keeps at least one
OWNER.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from services.org.domain.validation import (
    Changes,
    check_display_name,
    check_email,
    check_etag,
    check_mask,
    check_url,
    etag_of,
    normalize_email,
    raise_if,
)
from shared.errors import FailedPrecondition, FieldViolation, PermissionDenied
from shared.principals import Principal


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


def check_role(value: str, path: str, *, required: bool) -> FieldViolation | None:
    """A known role (or unset, when not required)."""
    if not value or value == "UNSPECIFIED":
        return FieldViolation(path, "is required", "REQUIRED") if required else None
    if value not in Role.__members__:
        return FieldViolation(path, "must be ROLE_OWNER, ROLE_ADMIN, ROLE_MEMBER or ROLE_VIEWER")
    return None


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
