"""Use cases of MigrationService: one transaction per write, the rules from domain.

Every write locks the migration row, checks the etag and the rules, saves the next version
(which logs the change and NOTIFYs watchers, store/migrations.py) and records an audit event,
all in one transaction. Plans come from the org service through OrgDirectory.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

import asyncpg
from google.protobuf.message import Message

from services.migration import domain, store
from services.migration.config_cipher import ConfigCipher
from services.migration.connection_config import merge_redacted_connection_config
from services.migration.domain import (
    MIGRATION_PATTERN,
    ORG_PATTERN,
    PLAN_LIMITS,
    TERMINAL_STATUSES,
    AgentType,
    AgentTypeUsage,
    ChangeEvent,
    Connections,
    Migration,
    MigrationChange,
    MigrationDraft,
    MigrationPatch,
    MigrationStatus,
    MonthlyUsage,
    Usage,
    Verb,
)
from services.migration.org_directory import OrgDirectory
from services.migration.watch import SAFETY_POLL_SECONDS, ChangeHub
from shared import outbox
from shared.db import Connection
from shared.errors import FieldViolation, InvalidArgument, NotFound
from shared.idempotency import create_once
from shared.listen import wait_woken
from shared.names import parse_name
from shared.pagination import Page, PageTokens, page_of, page_size
from shared.principals import current_principal

log = logging.getLogger(__name__)

ResponseT = TypeVar("ResponseT", bound=Message)

RESOURCE = "migration"


class Migrations:
    """Migrations: CRUD, lifecycle, progress, usage, connections and watching."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        cipher: ConfigCipher,
        orgs: OrgDirectory,
        hub: ChangeHub,
        page_tokens: PageTokens,
    ) -> None:
        self._pool = pool
        self._cipher = cipher
        self._orgs = orgs
        self._hub = hub
        self._tokens = page_tokens

    async def organization_deleted(self, org_id: str) -> None:
        """An organization was deleted (revocation feed): its migrations go with it.

        Not audited here: the deletion is the last entry of the organization's chain.
        """
        self._orgs.forget(org_id)
        async with self._pool.acquire() as conn, conn.transaction():
            deleted = await store.delete_organization_data(conn, org_id)
        if deleted:
            log.info("deleted %d migrations of deleted organization %s", deleted, org_id)

    # --- standard methods -------------------------------------------------------------

    async def create(
        self,
        parent: str,
        values: Mapping[str, Any],
        *,
        request: Message,
        response_type: type[ResponseT],
        respond: Callable[[Migration], ResponseT],
        violations: list[FieldViolation],
    ) -> ResponseT:
        """CreateMigration: validated, the organization checked with the org service."""
        org_id = parse_name(parent, ORG_PATTERN, "parent")["org"]
        violations = [*violations, *domain.migration_field_violations(values)]
        if violations:
            raise InvalidArgument(violations)
        await self._orgs.organization(org_id)
        draft = MigrationDraft(
            display_name=values["display_name"].strip(),
            description=values["description"],
            source_config=values["source_config"],
            target_config=values["target_config"],
        )

        async def create(conn: Connection) -> ResponseT:
            migration = await store.insert_migration(conn, self._cipher, org_id, draft)
            await outbox.record(
                conn,
                action="migration.create",
                resource_type=RESOURCE,
                resource_id=migration.id,
                org_id=org_id,
                details={"display_name": migration.display_name},
            )
            return respond(migration)

        return await create_once(self._pool, request, response_type, create)

    async def get(self, name: str) -> Migration:
        """GetMigration."""
        org_id, migration_id = _ids(name)
        async with self._pool.acquire() as conn:
            return await self._require(conn, org_id, migration_id, name)

    async def list_migrations(
        self, parent: str, status: MigrationStatus | None, size: int, token: str
    ) -> Page[Migration]:
        """ListMigrations: keyset pages by (create_time, id)."""
        org_id = parse_name(parent, ORG_PATTERN, "parent")["org"]
        limit = page_size(size)
        query = ("migrations", org_id, status.value if status else "")
        after = self._tokens.decode(token, query)
        if current_principal().org_id is None:
            # A platform principal may name any organization: one that is not there is
            # NOT_FOUND, as GetOrganization answers (a tenant's own organization exists).
            await self._orgs.organization(org_id)
        async with self._pool.acquire() as conn:
            rows = await store.list_migrations(
                conn, self._cipher, org_id, status=status, after=after, limit=limit + 1
            )
        return page_of(self._tokens, rows, limit, query, lambda m: (m.created_at, m.id))

    async def update(self, patch: MigrationPatch) -> Migration:
        """UpdateMigration: masked fields, etag, configs only while PENDING."""
        org_id, migration_id = _ids(patch.name, "migration.name")
        async with self._pool.acquire() as conn, conn.transaction():
            current = await self._require(conn, org_id, migration_id, patch.name, lock=True)
            domain.check_etag(patch.etag, current.etag, "Migration", patch.name)
            domain.check_update_mask(patch.paths, current.status)
            values = {path: patch.values[path] for path in patch.paths}
            violations = domain.migration_field_violations(values)
            if violations:
                raise InvalidArgument(violations)
            changes: dict[str, Any] = {}
            if "display_name" in values:
                changes["display_name"] = values["display_name"].strip()
            if "description" in values:
                changes["description"] = values["description"]
            for side in ("source_config", "target_config"):
                if side in values:
                    changes[side] = merge_redacted_connection_config(
                        values[side], getattr(current, side), f"migration.{side}"
                    )
            updated = await store.save_migration(
                conn, self._cipher, dataclasses.replace(current, **changes), ChangeEvent.UPDATED
            )
            await outbox.record(
                conn,
                action="migration.update",
                resource_type=RESOURCE,
                resource_id=migration_id,
                org_id=org_id,
                details={"fields": sorted(patch.paths)},
            )
            return updated

    async def delete(self, name: str, etag: str) -> None:
        """DeleteMigration: only PENDING or terminal migrations."""
        org_id, migration_id = _ids(name)
        async with self._pool.acquire() as conn, conn.transaction():
            current = await self._require(conn, org_id, migration_id, name, lock=True)
            domain.check_etag(etag, current.etag, "Migration", name)
            domain.check_deletable(current.status)
            await store.delete_migration(conn, org_id, migration_id)
            await outbox.record(
                conn,
                action="migration.delete",
                resource_type=RESOURCE,
                resource_id=migration_id,
                org_id=org_id,
                details={"status": current.status.value},
            )

    # --- lifecycle --------------------------------------------------------------------

    async def move(self, name: str, verb: Verb, etag: str, reason: str = "") -> Migration:
        """A lifecycle verb (Start, Advance, Pause, Resume, Complete, Fail, Cancel)."""
        org_id, migration_id = _ids(name)
        async with self._pool.acquire() as conn, conn.transaction():
            current = await self._require(conn, org_id, migration_id, name, lock=True)
            domain.check_etag(etag, current.etag, "Migration", name)
            now = await store.transaction_time(conn)
            lifecycle = domain.apply_verb(current.lifecycle, verb, now, reason=reason)
            run = current.run
            if verb is Verb.START:
                await self._check_active_quota(conn, org_id)
                run += 1
            moved = await store.save_migration(
                conn,
                self._cipher,
                dataclasses.replace(current, lifecycle=lifecycle, run=run),
                ChangeEvent.STATUS_CHANGED,
            )
            details: dict[str, Any] = {"from": current.status.value, "to": moved.status.value}
            if lifecycle.failure_reason and verb is Verb.FAIL:
                details["reason"] = lifecycle.failure_reason
            await outbox.record(
                conn,
                action=f"migration.{verb.value.lower()}",
                resource_type=RESOURCE,
                resource_id=migration_id,
                org_id=org_id,
                details=details,
            )
            return moved

    async def _check_active_quota(self, conn: Connection, org_id: str) -> None:
        # Usually a cache hit; the advisory lock makes concurrent starts of one org take turns.
        org = await self._orgs.organization(org_id)
        await store.lock_org_quota(conn, org_id)
        in_flight = await store.count_in_flight(conn, org_id)
        domain.check_active_migration_quota(org.plan, in_flight, subject=f"organizations/{org_id}")

    async def report_progress(self, name: str, progress: float) -> Migration:
        """ReportProgress: never decreasing within a run; the same value is a no-op."""
        org_id, migration_id = _ids(name)
        async with self._pool.acquire() as conn, conn.transaction():
            current = await self._require(conn, org_id, migration_id, name, lock=True)
            lifecycle = domain.report_progress(current.lifecycle, progress)
            if lifecycle == current.lifecycle:
                return current
            reported = await store.save_migration(
                conn,
                self._cipher,
                dataclasses.replace(current, lifecycle=lifecycle),
                ChangeEvent.PROGRESS_CHANGED,
            )
            await outbox.record(
                conn,
                action="migration.report_progress",
                resource_type=RESOURCE,
                resource_id=migration_id,
                org_id=org_id,
                details={"progress": lifecycle.progress},
            )
            return reported

    # --- watching ---------------------------------------------------------------------

    async def watch(self, name: str) -> AsyncIterator[MigrationChange]:
        """The current state, then every committed change, until terminal or deleted."""
        org_id, migration_id = _ids(name)
        with self._hub.subscribe(migration_id) as woken:
            async with self._pool.acquire() as conn:
                current = await self._require(conn, org_id, migration_id, name)
            yield MigrationChange(ChangeEvent.SNAPSHOT, current)
            if current.status in TERMINAL_STATUSES:
                return
            last = current.version
            while True:
                await wait_woken(woken, SAFETY_POLL_SECONDS)
                woken.clear()  # before reading, so a commit during the read wakes us again
                async with self._pool.acquire() as conn:
                    changes = await store.changes_after(conn, self._cipher, migration_id, last)
                for change in changes:
                    yield change
                    last = change.migration.version
                    if (
                        change.event is ChangeEvent.DELETED
                        or change.migration.status in TERMINAL_STATUSES
                    ):
                        return

    # --- usage and connections --------------------------------------------------------

    async def usage(self, parent: str, start_month: str, end_month: str) -> Usage:
        """GetUsage: tokens per month and agent type, with the plan's limits."""
        org_id = parse_name(parent, ORG_PATTERN, "parent")["org"]
        months = domain.usage_months(start_month, end_month, datetime.now(UTC).date())
        org = await self._orgs.organization(org_id)
        async with self._pool.acquire() as conn:
            rows = await store.token_usage(
                conn, org_id, domain.month_start(months[0]), domain.month_start(months[-1])
            )
            in_flight = await store.count_in_flight(conn, org_id)
        by_month: dict[str, list[AgentTypeUsage]] = {month: [] for month in months}
        for month, usage in rows:
            by_month[f"{month.year:04d}-{month.month:02d}"].append(usage)
        limits = PLAN_LIMITS[org.plan]
        return Usage(
            org_id=org_id,
            months=tuple(
                MonthlyUsage(month, tuple(sorted(usages, key=_agent_type_order)))
                for month, usages in by_month.items()
            ),
            monthly_token_limit=limits.monthly_tokens,
            active_migration_limit=limits.active_migrations,
            active_migrations=in_flight,
        )

    async def connections(self, name: str) -> Connections:
        """GetMigrationConnections (service principals): configs in clear, audited."""
        org_id, migration_id = _ids(name)
        async with self._pool.acquire() as conn, conn.transaction():
            migration = await self._require(conn, org_id, migration_id, name)
            await outbox.record(
                conn,
                action="migration.read_connections",
                resource_type=RESOURCE,
                resource_id=migration_id,
                org_id=org_id,
            )
        return Connections(name, dict(migration.source_config), dict(migration.target_config))

    # --- helpers ----------------------------------------------------------------------

    async def _require(
        self, conn: Connection, org_id: str, migration_id: str, name: str, *, lock: bool = False
    ) -> Migration:
        found = await store.migration(
            conn, self._cipher, org_id, migration_id, lock="UPDATE" if lock else None
        )
        if found is None:
            raise NotFound("Migration", name)
        return found


def _agent_type_order(usage: AgentTypeUsage) -> int:
    return list(AgentType).index(usage.agent_type)


def _ids(name: str, field_name: str = "name") -> tuple[str, str]:
    ids = parse_name(name, MIGRATION_PATTERN, field_name)
    return ids["org"], ids["migration"]
