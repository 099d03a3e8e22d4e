"""Organizations: creates, updates, who may change the plan, who may look up a slug."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from services.org.domain.users import Role
from services.org.domain.validation import (
    Changes,
    check_display_name,
    check_etag,
    check_mask,
    check_slug,
    etag_of,
    raise_if,
)
from shared.errors import FieldViolation, PermissionDenied
from shared.principals import Principal


class Plan(StrEnum):
    """Billing plans; what each allows: docs/architecture.md#plan-quotas."""

    FREE = "FREE"
    PRO = "PRO"
    ENTERPRISE = "ENTERPRISE"


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


def check_plan(value: str, path: str, *, required: bool) -> FieldViolation | None:
    """A known plan (or unset, when not required)."""
    if not value or value == "UNSPECIFIED":
        return FieldViolation(path, "is required", "REQUIRED") if required else None
    if value not in Plan.__members__:
        return FieldViolation(path, "must be PLAN_FREE, PLAN_PRO or PLAN_ENTERPRISE")
    return None


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


def lookup_allowed(actor: Principal, own_org: Organization | None, slug: str) -> bool:
    """Users may look up only their own organization's slug (services: any)."""
    return actor.is_service or (own_org is not None and own_org.slug == slug)
