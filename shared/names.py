"""Resource names (AIP-122): parsing `organizations/{org}/migrations/{migration}` and friends."""

from __future__ import annotations

import uuid

from shared.errors import FieldViolation, InvalidArgument

# The organization id of the platform audit chain: actions of platform principals on
# platform-wide resources (patterns, signing keys, service accounts) belong to no tenant.
PLATFORM_ORG_ID = "00000000-0000-0000-0000-000000000000"


def parse_name(name: str, pattern: str, field_name: str = "name") -> dict[str, str]:
    """Matches `name` against a pattern like `organizations/{org}/users/{user}`.

    Returns the variables; every variable must be a UUID (our ids). Raises
    INVALID_ARGUMENT naming the field otherwise.
    """
    parts = name.split("/")
    template = pattern.split("/")
    if len(parts) != len(template):
        raise InvalidArgument.single(field_name, f"must look like {pattern!r}")
    values: dict[str, str] = {}
    for part, expected in zip(parts, template, strict=True):
        if expected.startswith("{") and expected.endswith("}"):
            if not is_uuid(part):
                raise InvalidArgument.single(
                    field_name, f"must look like {pattern!r} with UUID ids"
                )
            values[expected[1:-1]] = part.lower()
        elif part != expected:
            raise InvalidArgument.single(field_name, f"must look like {pattern!r}")
    return values


def org_of(value: str) -> str | None:
    """The organization id that a resource name (or a bare org id) points into, if any."""
    if is_uuid(value):
        return value.lower()
    parts = value.split("/")
    if len(parts) >= 2 and parts[0] == "organizations" and is_uuid(parts[1]):
        return parts[1].lower()
    return None


def is_uuid(value: str) -> bool:
    """Whether `value` is a canonical UUID string."""
    try:
        return str(uuid.UUID(value)) == value.lower()
    except (ValueError, AttributeError):
        return False


def require_uuid(value: str, field_name: str) -> FieldViolation | None:
    """A violation when `value` is not a UUID."""
    return None if is_uuid(value) else FieldViolation(field_name, "must be a UUID")
