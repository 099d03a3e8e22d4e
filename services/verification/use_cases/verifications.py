"""Use cases of verifications: create (queue), get, list and watch.

CreateVerification checks the request (domain), asks the migration service whether the
migration exists in the caller's organization, then stores the PENDING verification, its job
and the audit event in one transaction under the caller's request id. The servicer maps protos
in and out; this layer never sees grpc.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from typing import TypeVar

import asyncpg
from google.protobuf.message import Message

from services.verification import store
from services.verification.domain import (
    Verification,
    VerificationStatus,
    VerificationType,
    error_result,
    new_id,
    parse_list_parent,
    parse_verification_name,
    validate_new_verification,
)
from services.verification.feed import ChangeFeed
from services.verification.migration_client import MigrationClient
from shared import outbox
from shared.db import Connection
from shared.errors import NotFound
from shared.idempotency import create_once
from shared.pagination import Page, PageTokens, page_of, page_size
from shared.principals import current_principal

ResponseT = TypeVar("ResponseT", bound=Message)


class Verifications:
    """Verifications of migrations."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        migrations: MigrationClient,
        feed: ChangeFeed,
        page_tokens: PageTokens,
    ) -> None:
        self._pool = pool
        self._migrations = migrations
        self._feed = feed
        self._tokens = page_tokens

    async def create(
        self,
        parent: str,
        type_name: str,
        tables: Sequence[str],
        *,
        request: Message,
        response_type: type[ResponseT],
        respond: Callable[[Verification], ResponseT],
    ) -> ResponseT:
        """CreateVerification: queues a job; a repeated request_id returns the first result."""
        new = validate_new_verification(parent, type_name, tables)
        principal = current_principal()
        # Over RPC, before the transaction: the migration must exist in this organization.
        if await self._migrations.migration_org(new.migration_name) != new.org_id:
            raise NotFound("Migration", new.migration_name)

        async def create(conn: Connection) -> ResponseT:
            created = await store.insert_verification(conn, new_id(), new, principal.subject)
            await store.enqueue_job(conn, created.id)
            await outbox.record(
                conn,
                action="verification.create",
                resource_type="verification",
                resource_id=created.id,
                org_id=created.org_id,
                details={
                    "migration_id": created.migration_id,
                    "type": created.type.value,
                    "tables": list(created.tables),
                },
            )
            return respond(created)

        return await create_once(self._pool, request, response_type, create)

    async def get(self, name: str) -> Verification:
        """GetVerification."""
        org_id, migration_id, verification_id = parse_verification_name(name)
        async with self._pool.acquire() as conn:
            found = await store.verification(conn, org_id, migration_id, verification_id)
            if found is not None and await store.organization_deleted(conn, org_id):
                found = None
        if found is None:
            raise NotFound("Verification", name)
        return found

    async def organization_deleted(self, org_id: str) -> None:
        """An organization was deleted (revocation feed): its unfinished verifications end
        in ERROR (reason ORGANIZATION_DELETED) and all of them answer NOT_FOUND from now on.

        Not audited here: the deletion is the last entry of the organization's chain.
        """
        async with self._pool.acquire() as conn, conn.transaction():
            for verification in await store.close_organization(conn, org_id):
                await store.finish_verification(
                    conn,
                    verification.id,
                    status=VerificationStatus.ERROR,
                    score=0.0,
                    result=error_result(
                        verification.type,
                        "ORGANIZATION_DELETED",
                        "the organization was deleted; the verification was cancelled",
                        {},
                    ),
                    certificate_id=None,
                )

    async def list_page(
        self,
        parent: str,
        requested_size: int,
        page_token: str,
        type_filter: VerificationType | None,
        status_filter: VerificationStatus | None,
    ) -> Page[Verification]:
        """ListVerifications of one migration, or of every migration (`-`), oldest first."""
        org_id, migration_id = parse_list_parent(parent)
        size = page_size(requested_size)
        query = [
            "verifications",
            org_id,
            migration_id,
            type_filter.value if type_filter else None,
            status_filter.value if status_filter else None,
        ]
        after = self._tokens.decode(page_token, query)
        # A missing parent answers NOT_FOUND, as GetMigration does (docs/api-conventions.md).
        # The interceptor already matched the parent's organization to the caller's, so
        # asking the migration service as a service principal reveals nothing across orgs.
        if migration_id is not None and await self._migrations.migration_org(parent) != org_id:
            raise NotFound("Migration", parent)
        async with self._pool.acquire() as conn:
            if await store.organization_deleted(conn, org_id):
                raise NotFound("Organization", f"organizations/{org_id}")
            rows = await store.verifications_page(
                conn,
                org_id,
                migration_id=migration_id,
                type_filter=type_filter,
                status_filter=status_filter,
                after=after,
                limit=size + 1,
            )
        return page_of(self._tokens, rows, size, query, lambda v: [v.created_at, v.id])

    async def watch(self, name: str) -> AsyncIterator[Verification]:
        """WatchVerification: the current state, then every committed change until terminal.

        Subscribes before reading the current state, so no change between the two is lost;
        changes at or below the version already sent are skipped.
        """
        org_id, migration_id, verification_id = parse_verification_name(name)
        async with self._feed.subscribe(verification_id) as subscription:
            current = await self.get(name)
            yield current
            while not current.status.terminal:
                change = await subscription.next()
                if isinstance(change, dict) and _complete_and_live(change):
                    latest = store.verification_of(change)
                else:
                    # Terminal (the result is not in the notification), oversized, or resync.
                    async with self._pool.acquire() as conn:
                        found = await store.verification(
                            conn, org_id, migration_id, verification_id
                        )
                    if found is None:
                        raise NotFound("Verification", name)
                    latest = found
                if latest.version > current.version:
                    current = latest
                    yield current


def _complete_and_live(change: dict[str, object]) -> bool:
    status = change.get("status")
    return (
        isinstance(status, str)
        and "tables_total" in change
        and not VerificationStatus(status).terminal
    )
