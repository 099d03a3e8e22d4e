"""Use cases of organizations: one transaction each.

Each method checks the request (domain), reads and writes through the store, records the
audit event in the same transaction (shared outbox), and for creates runs under the
caller's request id (shared idempotency), so a retry returns the first response and
writes nothing. The servicer maps protos in and out; this layer never sees grpc.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import asyncpg
from google.protobuf.message import Message

from services.org import domain, store
from services.org.domain import Organization, OrganizationDraft, OrganizationPatch
from services.org.store import RowLock
from services.org.use_cases.preconditions import ORG_PATTERN, parse, parsed
from shared import outbox
from shared.db import Connection
from shared.errors import FieldViolation, NotFound, PermissionDenied
from shared.idempotency import create_once
from shared.outbox import PLATFORM_ORG_ID
from shared.pagination import Page, PageTokens, page_of, page_size
from shared.principals import current_principal

ResponseT = TypeVar("ResponseT", bound=Message)


class Organizations:
    """CreateOrganization, GetOrganization, LookupOrganization, ListOrganizations,
    UpdateOrganization, DeleteOrganization."""

    def __init__(self, pool: asyncpg.Pool, page_tokens: PageTokens) -> None:
        self._pool = pool
        self._tokens = page_tokens

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
