"""Use cases of organizations, users and API keys: one transaction each.

Each method checks the request (domain), reads and writes through the store, records the
audit event in the same transaction (shared outbox), and for creates runs under the
caller's request id (shared idempotency), so a retry returns the first response and
writes nothing. The servicer maps protos in and out; this layer never sees grpc.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

import asyncpg
from google.protobuf.message import Message

from services.org import domain, store
from services.org.domain import (
    ApiKey,
    ApiKeyDraft,
    NewSecret,
    Organization,
    OrganizationDraft,
    OrganizationPatch,
    User,
    UserDraft,
    UserPatch,
)
from services.org.store import RowLock
from shared import names, outbox
from shared.auth import current_principal
from shared.db import Connection
from shared.errors import FieldViolation, InvalidArgument, NotFound, PermissionDenied
from shared.idempotency import create_once
from shared.outbox import PLATFORM_ORG_ID
from shared.pagination import Page, PageTokens, page_of, page_size
from shared.revocations import TokenRevoked

ResponseT = TypeVar("ResponseT", bound=Message)

ORG_PATTERN = "organizations/{org}"
USER_PATTERN = "organizations/{org}/users/{user}"
API_KEY_PATTERN = "organizations/{org}/apiKeys/{api_key}"


@dataclass(frozen=True)
class CreatedApiKey:
    """A new key: its metadata, and its secret (None when a request-id repeat replays it)."""

    key: ApiKey
    secret: str | None


def parse(value: str, pattern: str, field_name: str) -> tuple[dict[str, str], list[FieldViolation]]:
    """A resource name's ids, or the violations that explain why it is not one."""
    try:
        return names.parse_name(value, pattern, field_name), []
    except InvalidArgument as exc:
        return {}, exc.violations


async def _require_organization(conn: Connection, org_id: str, parent: str) -> None:
    """A List under an organization that does not exist answers NOT_FOUND, as Get does."""
    if await store.organization(conn, org_id) is None:
        raise NotFound("Organization", parent)


async def _require_current_role(conn: Connection) -> None:
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


def parsed(value: str, pattern: str, field_name: str) -> dict[str, str]:
    """A resource name's ids; INVALID_ARGUMENT when it is malformed."""
    return names.parse_name(value, pattern, field_name)


class Tenancy:
    """Organizations, users and API keys."""

    def __init__(self, pool: asyncpg.Pool, page_tokens: PageTokens) -> None:
        self._pool = pool
        self._tokens = page_tokens

    # --- organizations -----------------------------------------------------------------

    async def create_organization(
        self,
        draft: OrganizationDraft,
        request: Message,
        response_type: type[ResponseT],
        respond: Callable[[Organization], ResponseT],
        extra: list[FieldViolation],
    ) -> ResponseT:
        """CreateOrganization (platform principals)."""
        valid = domain.validate_new_organization(draft, extra)

        async def create(conn: Connection) -> ResponseT:
            org = await store.insert_organization(conn, valid)
            # The new tenant's chain starts with its creation; the platform chain records
            # which platform principal created it.
            for chain in (org.id, PLATFORM_ORG_ID):
                await outbox.record(
                    conn,
                    action="organization.create",
                    resource_type="organization",
                    resource_id=org.id,
                    org_id=chain,
                    details={"slug": org.slug, "plan": org.plan.value},
                )
            return respond(org)

        return await create_once(self._pool, request, response_type, create)

    async def get_organization(self, name: str) -> Organization:
        """GetOrganization."""
        org_id = parsed(name, ORG_PATTERN, "name")["org"]
        async with self._pool.acquire() as conn:
            org = await store.organization(conn, org_id)
        if org is None:
            raise NotFound("Organization", name)
        return org

    async def lookup_organization(self, slug: str) -> Organization:
        """LookupOrganization: users learn nothing about other organizations' slugs."""
        domain.raise_if([domain.check_slug(slug, "slug")])
        actor = current_principal()
        async with self._pool.acquire() as conn:
            own = None if actor.org_id is None else await store.organization(conn, actor.org_id)
            if not domain.lookup_allowed(actor, own, slug):
                raise PermissionDenied(
                    "you may only look up your own organization", reason="OTHER_ORGANIZATION"
                )
            org = own if own is not None else await store.organization_by_slug(conn, slug)
        if org is None:
            raise NotFound("Organization", slug)
        return org

    async def list_organizations(
        self, requested_size: int, page_token: str, plan: str | None
    ) -> Page[Organization]:
        """ListOrganizations: every one for services, the caller's own for users."""
        actor = current_principal()
        size = page_size(requested_size)
        only_id = None if actor.is_service else actor.org_id
        query = ["organizations", only_id, plan]
        after = self._tokens.decode(page_token, query)
        async with self._pool.acquire() as conn:
            rows = await store.organizations_page(
                conn, plan=plan, only_id=only_id, after=after, limit=size + 1
            )
        return page_of(self._tokens, rows, size, query, lambda org: [org.created_at, org.id])

    async def update_organization(
        self, name: str, patch: OrganizationPatch, extra: list[FieldViolation]
    ) -> Organization:
        """UpdateOrganization: ADMIN for name, slug and settings; OWNER (or service) for plan."""
        ids, name_violations = parse(name, ORG_PATTERN, "organization.name")
        actor = current_principal()
        if not ids:
            domain.raise_if([*name_violations, *extra])
        async with self._pool.acquire() as conn, conn.transaction():
            current = await store.organization(conn, ids["org"], lock=RowLock.NO_KEY_UPDATE)
            if current is None:
                raise NotFound("Organization", name)
            changes = domain.organization_changes(actor, current, patch, extra)
            org = await store.update_organization(conn, current.id, changes.values)
            await outbox.record(
                conn,
                action="organization.update",
                resource_type="organization",
                resource_id=org.id,
                org_id=org.id,
                details={"fields": sorted(changes.values)},
            )
        return org

    async def delete_organization(self, name: str, etag: str) -> None:
        """DeleteOrganization: with its users and API keys."""
        org_id = parsed(name, ORG_PATTERN, "name")["org"]
        async with self._pool.acquire() as conn, conn.transaction():
            current = await store.organization(conn, org_id, lock=RowLock.UPDATE)
            if current is None:
                raise NotFound("Organization", name)
            domain.check_etag(etag, current.etag, "Organization", name)
            await store.delete_organization(conn, org_id)
            # Every token of the organization stops counting, on every service.
            await store.append_revocation(conn, org_id=org_id)
            await outbox.record(
                conn,
                action="organization.delete",
                resource_type="organization",
                resource_id=org_id,
                org_id=org_id,
                details={"slug": current.slug},
            )

    # --- users -------------------------------------------------------------------------

    async def create_user(
        self,
        parent: str,
        draft: UserDraft,
        request: Message,
        response_type: type[ResponseT],
        respond: Callable[[User], ResponseT],
    ) -> ResponseT:
        """CreateUser: nobody grants a role above their own."""
        ids, extra = parse(parent, ORG_PATTERN, "parent")
        valid = domain.validate_new_user(current_principal(), draft, extra)
        org_id = ids["org"]

        async def create(conn: Connection) -> ResponseT:
            await self._require_organization(conn, org_id, parent)
            await _require_current_role(conn)
            user = await store.insert_user(conn, org_id, valid)
            await outbox.record(
                conn,
                action="user.create",
                resource_type="user",
                resource_id=user.id,
                org_id=org_id,
                details={"role": user.role.value},
            )
            return respond(user)

        return await create_once(self._pool, request, response_type, create)

    async def get_user(self, name: str) -> User:
        """GetUser."""
        ids = parsed(name, USER_PATTERN, "name")
        async with self._pool.acquire() as conn:
            found = await store.user(conn, ids["org"], ids["user"])
        if found is None:
            raise NotFound("User", name)
        return found

    async def list_users(
        self, parent: str, requested_size: int, page_token: str, role: str | None
    ) -> Page[User]:
        """ListUsers, optionally of one role."""
        org_id = parsed(parent, ORG_PATTERN, "parent")["org"]
        size = page_size(requested_size)
        query = ["users", org_id, role]
        after = self._tokens.decode(page_token, query)
        async with self._pool.acquire() as conn:
            await _require_organization(conn, org_id, parent)
            rows = await store.users_page(conn, org_id, role=role, after=after, limit=size + 1)
        return page_of(self._tokens, rows, size, query, lambda user: [user.created_at, user.id])

    async def update_user(self, name: str, patch: UserPatch) -> User:
        """UpdateUser: role rules, the last OWNER stays an OWNER, etag."""
        ids, extra = parse(name, USER_PATTERN, "user.name")
        if not ids:
            domain.raise_if(extra)
        actor = current_principal()
        async with self._pool.acquire() as conn, conn.transaction():
            owners = await store.lock_owners(conn, ids["org"])
            await _require_current_role(conn)
            current = await store.user(conn, ids["org"], ids["user"], lock=RowLock.NO_KEY_UPDATE)
            if current is None:
                raise NotFound("User", name)
            changes = domain.user_changes(actor, current, patch, owners)
            updated = await store.update_user(conn, current.id, changes.values)
            if updated.role != current.role:
                # Tokens that carry the old role stop counting, on every service.
                await store.append_revocation(
                    conn, subject=f"users/{updated.id}", current_role=updated.role.value
                )
            await outbox.record(
                conn,
                action="user.update",
                resource_type="user",
                resource_id=updated.id,
                org_id=updated.org_id,
                details={"fields": sorted(changes.values), "role": updated.role.value},
            )
        return updated

    async def delete_user(self, name: str, etag: str) -> None:
        """DeleteUser: with their API keys; never the last OWNER."""
        ids = parsed(name, USER_PATTERN, "name")
        actor = current_principal()
        async with self._pool.acquire() as conn, conn.transaction():
            owners = await store.lock_owners(conn, ids["org"])
            current = await store.user(conn, ids["org"], ids["user"], lock=RowLock.UPDATE)
            if current is None:
                raise NotFound("User", name)
            await _require_current_role(conn)
            domain.check_user_deletable(actor, current, owners, etag)
            await store.delete_user(conn, current.id)
            await store.append_revocation(conn, subject=f"users/{current.id}")
            await outbox.record(
                conn,
                action="user.delete",
                resource_type="user",
                resource_id=current.id,
                org_id=current.org_id,
                details={"role": current.role.value},
            )

    # --- api keys ----------------------------------------------------------------------

    async def create_api_key(
        self,
        parent: str,
        draft: ApiKeyDraft,
        request: Message,
        response_type: type[ResponseT],
        respond: Callable[[CreatedApiKey], ResponseT],
    ) -> ResponseT:
        """CreateApiKey. The stored (replayable) response never holds the secret."""
        ids, extra = parse(parent, ORG_PATTERN, "parent")
        org_id = ids.get("org", "")
        user_id = domain.validate_new_api_key(org_id, draft, datetime.now(UTC), extra)
        actor = current_principal()
        fresh: list[NewSecret] = []

        async def create(conn: Connection) -> ResponseT:
            await self._require_organization(conn, org_id, parent)
            await _require_current_role(conn)
            owner = await store.user(conn, org_id, user_id, lock=RowLock.KEY_SHARE)
            if owner is None:
                raise NotFound("User", draft.user_name)
            domain.check_can_manage(actor, owner)
            secret = domain.new_api_key_secret()
            key = await store.insert_api_key(
                conn,
                secret=secret,
                display_name=draft.display_name.strip(),
                org_id=org_id,
                user_id=user_id,
                expires_at=draft.expires_at,
            )
            await outbox.record(
                conn,
                action="api_key.create",
                resource_type="api_key",
                resource_id=key.id,
                org_id=org_id,
                details={"user_id": user_id, "prefix": key.prefix},
            )
            fresh.append(secret)
            return respond(CreatedApiKey(key, None))

        response = await create_once(self._pool, request, response_type, create)
        if fresh:
            # Only the first call sees the secret; it was never part of the stored response.
            setattr(response, "secret", fresh[0].secret)  # noqa: B010
        return response

    async def list_api_keys(
        self,
        parent: str,
        requested_size: int,
        page_token: str,
        user_name: str,
        show_revoked: bool,
    ) -> Page[ApiKey]:
        """ListApiKeys (metadata only), optionally of one user, active only by default."""
        ids, violations = parse(parent, ORG_PATTERN, "parent")
        user_id: str | None = None
        if user_name:
            user_ids, user_violations = parse(user_name, USER_PATTERN, "user")
            violations += user_violations
            if user_ids and ids and user_ids["org"] != ids["org"]:
                violations.append(FieldViolation("user", "must be a user of the parent"))
            user_id = user_ids.get("user")
        domain.raise_if(violations)
        org_id = ids["org"]
        size = page_size(requested_size)
        query = ["api_keys", org_id, user_id, show_revoked]
        after = self._tokens.decode(page_token, query)
        async with self._pool.acquire() as conn:
            await _require_organization(conn, org_id, parent)
            rows = await store.api_keys_page(
                conn,
                org_id,
                user_id=user_id,
                show_revoked=show_revoked,
                after=after,
                limit=size + 1,
            )
        return page_of(self._tokens, rows, size, query, lambda key: [key.created_at, key.id])

    async def revoke_api_key(self, name: str) -> ApiKey:
        """RevokeApiKey: the key can no longer be exchanged. Revoking twice is harmless."""
        ids = parsed(name, API_KEY_PATTERN, "name")
        actor = current_principal()
        async with self._pool.acquire() as conn, conn.transaction():
            key = await store.api_key(conn, ids["org"], ids["api_key"], lock=RowLock.NO_KEY_UPDATE)
            if key is None:
                raise NotFound("ApiKey", name)
            await _require_current_role(conn)
            if key.user_id is not None:
                owner = await store.user(conn, ids["org"], key.user_id)
                if owner is not None:
                    domain.check_can_manage(actor, owner)
            revoked = await store.revoke_api_key(conn, key.id)
            if key.revoked_at is None:
                await store.append_revocation(conn, api_key_id=key.id)
                await outbox.record(
                    conn,
                    action="api_key.revoke",
                    resource_type="api_key",
                    resource_id=key.id,
                    org_id=ids["org"],
                    details={"user_id": key.user_id, "prefix": key.prefix},
                )
        return revoked

    # --- helpers -----------------------------------------------------------------------

    @staticmethod
    async def _require_organization(conn: Connection, org_id: str, name: str) -> None:
        # KEY SHARE: a concurrent DeleteOrganization waits instead of orphaning the insert.
        if await store.organization(conn, org_id, lock=RowLock.KEY_SHARE) is None:
            raise NotFound("Organization", name)
