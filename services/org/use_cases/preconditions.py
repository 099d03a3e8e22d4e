"""What the use cases check before they act: the names they were given, the organization
they work in, and that the caller still holds the role their token carries."""

from __future__ import annotations

from services.org import store
from services.org.store import RowLock
from shared import names
from shared.db import Connection
from shared.errors import FieldViolation, InvalidArgument, NotFound
from shared.principals import current_principal
from shared.revocations import TokenRevoked

ORG_PATTERN = "organizations/{org}"
USER_PATTERN = "organizations/{org}/users/{user}"
API_KEY_PATTERN = "organizations/{org}/apiKeys/{api_key}"


def parse(value: str, pattern: str, field_name: str) -> tuple[dict[str, str], list[FieldViolation]]:
    """A resource name's ids, or the violations that explain why it is not one."""
    try:
        return names.parse_name(value, pattern, field_name), []
    except InvalidArgument as exc:
        return {}, exc.violations


def parsed(value: str, pattern: str, field_name: str) -> dict[str, str]:
    """A resource name's ids; INVALID_ARGUMENT when it is malformed."""
    return names.parse_name(value, pattern, field_name)


async def require_organization(
    conn: Connection, org_id: str, name: str, *, lock: RowLock = RowLock.NONE
) -> None:
    """NOT_FOUND unless the organization exists, as Get answers.

    Creates under an organization pass `RowLock.KEY_SHARE`: a concurrent
    DeleteOrganization waits instead of orphaning the insert.
    """
    if await store.organization(conn, org_id, lock=lock) is None:
        raise NotFound("Organization", name)


async def require_current_role(conn: Connection) -> None:
    """The calling user still exists with the role their token carries (inside the change's
    transaction, the row kept from deletion until it commits): a stale token never grants
    more than the caller's current role."""
    actor = current_principal()
    if actor.user_id is None or actor.org_id is None:
        return  # platform principals: their API key was checked for this call
    found = await store.user(conn, actor.org_id, actor.user_id, lock=RowLock.KEY_SHARE)
    if found is None:
        raise TokenRevoked("its user was deleted")
    if found.role.value != actor.role:
        raise TokenRevoked(f"the role changed to {found.role.value}")
