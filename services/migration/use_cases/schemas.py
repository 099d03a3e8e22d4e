"""Use cases of SchemaService: store, capture, read and compare schema snapshots.

CaptureSchema connects to the migration's live source or target database with its
decrypted connection config, under the destination policy (shared/destinations.py), in a
read-only session with a statement timeout, and reads pg_catalog (capture.py). A database
that cannot be reached, refuses the login or fails the capture is FAILED_PRECONDITION
`SOURCE_UNREACHABLE` / `TARGET_UNREACHABLE`, one answer for every cause (so callers cannot
probe the network); a destination the policy refuses is `DESTINATION_NOT_ALLOWED`. The
details go to the service log with the request id.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import asyncpg
from google.protobuf.message import Message

from services.migration import store
from services.migration.capture import capture_schema
from services.migration.capture_mysql import capture_live_mysql
from services.migration.config_cipher import ConfigCipher
from services.migration.domain import MIGRATION_PATTERN, SCHEMA_PATTERN, Schema, SchemaType
from services.migration.schema_canonical import canonical_definition, fingerprint_of
from services.migration.schema_diff import diff
from services.migration.schema_difference import SchemaDifference
from shared import outbox
from shared.connection_configs import MYSQL, Destination, destination_of
from shared.db import DATABASE_ERRORS, Connection
from shared.destinations import DestinationNotAllowed, DestinationPolicy, DestinationUnreachable
from shared.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from shared.idempotency import create_once
from shared.names import parse_name
from shared.pagination import Page, PageTokens, page_of, page_size

ResponseT = TypeVar("ResponseT", bound=Message)

RESOURCE = "schema"
CONNECT_TIMEOUT_SECONDS = 10.0
CAPTURE_STATEMENT_TIMEOUT_MS = 60_000
MAX_CAPTURE_SCHEMAS = 100

log = logging.getLogger(__name__)


class Schemas:
    """Schema snapshots of migrations."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        cipher: ConfigCipher,
        page_tokens: PageTokens,
        destinations: DestinationPolicy,
    ) -> None:
        self._pool = pool
        self._cipher = cipher
        self._tokens = page_tokens
        self._destinations = destinations

    async def create(
        self,
        parent: str,
        *,
        schema_type: SchemaType | None,
        definition: Mapping[str, Any],
        metadata: Mapping[str, Any],
        request: Message,
        response_type: type[ResponseT],
        respond: Callable[[Schema], ResponseT],
    ) -> ResponseT:
        """CreateSchema: validated, stored in canonical form with its fingerprint."""
        org_id, migration_id = _migration_ids(parent)
        violations = [] if schema_type else [_type_required("schema.type")]
        try:
            canonical = canonical_definition(definition, field="schema.definition")
        except InvalidArgument as exc:
            violations += exc.violations
        if violations:
            raise InvalidArgument(violations)
        assert schema_type is not None

        async def create(conn: Connection) -> ResponseT:
            await self._require_migration(conn, org_id, migration_id, parent)
            schema = await store.insert_schema(
                conn,
                org_id,
                migration_id,
                schema_type=schema_type,
                definition=canonical,
                fingerprint=fingerprint_of(canonical),
                metadata=metadata,
            )
            await self._audit(conn, "schema.create", schema)
            return respond(schema)

        return await create_once(self._pool, request, response_type, create)

    async def capture(
        self,
        parent: str,
        *,
        schema_type: SchemaType | None,
        namespaces: Sequence[str],
        metadata: Mapping[str, Any],
        request: Message,
        response_type: type[ResponseT],
        respond: Callable[[Schema], ResponseT],
    ) -> ResponseT:
        """CaptureSchema: introspects the live database and stores the result."""
        org_id, migration_id = _migration_ids(parent)
        violations = [] if schema_type else [_type_required("type")]
        if len(namespaces) > MAX_CAPTURE_SCHEMAS:
            violations.append(
                FieldViolation("schemas", f"at most {MAX_CAPTURE_SCHEMAS} schemas per capture")
            )
        violations += [
            FieldViolation(f"schemas[{i}]", "must be a non-empty schema name")
            for i, namespace in enumerate(namespaces)
            if not namespace.strip()
        ]
        if violations:
            raise InvalidArgument(violations)
        assert schema_type is not None

        async def create(conn: Connection) -> ResponseT:
            # KEY SHARE: a concurrent delete waits for the capture instead of orphaning it.
            migration = await store.migration(
                conn, self._cipher, org_id, migration_id, lock="KEY SHARE"
            )
            if migration is None:
                raise NotFound("Migration", parent)
            side = schema_type.value.lower()
            config_field = f"{side}_config"
            config = migration.source_config if side == "source" else migration.target_config
            definition, server_version = await _capture(
                self._destinations, destination_of(config, config_field), namespaces, side
            )
            try:
                canonical = canonical_definition(definition, field="definition")
            except InvalidArgument as exc:
                raise FailedPrecondition(
                    f"the {side} database uses something the schema form cannot describe:"
                    f" {exc.message}",
                    reason="CAPTURE_UNSUPPORTED",
                ) from None
            captured_metadata = {
                **metadata,
                "captured_from": side,
                "server_version": server_version,
                "schemas": sorted(namespaces),
            }
            schema = await store.insert_schema(
                conn,
                org_id,
                migration_id,
                schema_type=schema_type,
                definition=canonical,
                fingerprint=fingerprint_of(canonical),
                metadata=captured_metadata,
            )
            await self._audit(conn, "schema.capture", schema)
            return respond(schema)

        return await create_once(self._pool, request, response_type, create)

    async def get(self, name: str) -> Schema:
        """GetSchema."""
        ids = parse_name(name, SCHEMA_PATTERN, "name")
        async with self._pool.acquire() as conn:
            return await self._require(conn, ids, name)

    async def list_schemas(
        self, parent: str, schema_type: SchemaType | None, size: int, token: str
    ) -> Page[Schema]:
        """ListSchemas: keyset pages by (create_time, id), optionally by type."""
        org_id, migration_id = _migration_ids(parent)
        limit = page_size(size)
        query = ("schemas", org_id, migration_id, schema_type.value if schema_type else "")
        after = self._tokens.decode(token, query)
        async with self._pool.acquire() as conn:
            # A missing parent answers NOT_FOUND, as GetMigration does (docs/api-conventions.md).
            if await store.migration_status(conn, org_id, migration_id) is None:
                raise NotFound("Migration", parent)
            rows = await store.list_schemas(
                conn,
                org_id,
                migration_id,
                schema_type=schema_type,
                after=after,
                limit=limit + 1,
            )
        return page_of(self._tokens, rows, limit, query, lambda s: (s.created_at, s.id))

    async def diff(
        self, base_name: str, target_name: str
    ) -> tuple[Schema, Schema, list[SchemaDifference]]:
        """DiffSchemas: both schemas of one organization, every difference."""
        base_ids = parse_name(base_name, SCHEMA_PATTERN, "base_schema")
        target_ids = parse_name(target_name, SCHEMA_PATTERN, "target_schema")
        if target_ids["org"] != base_ids["org"]:
            # The interceptor checked base_schema against the caller's organization.
            raise PermissionDenied(
                "target_schema belongs to another organization than base_schema",
                reason="OTHER_ORGANIZATION",
                metadata={"field": "target_schema"},
            )
        async with self._pool.acquire() as conn:
            base = await self._require(conn, base_ids, base_name)
            target = await self._require(conn, target_ids, target_name)
        return base, target, diff(base.definition, target.definition)

    # --- helpers ----------------------------------------------------------------------

    async def _require(self, conn: Connection, ids: Mapping[str, str], name: str) -> Schema:
        found = await store.schema(conn, ids["org"], ids["migration"], ids["schema"])
        if found is None:
            raise NotFound("Schema", name)
        return found

    @staticmethod
    async def _require_migration(
        conn: Connection, org_id: str, migration_id: str, name: str
    ) -> None:
        if not await store.migration_exists(conn, org_id, migration_id):
            raise NotFound("Migration", name)

    @staticmethod
    async def _audit(conn: Connection, action: str, schema: Schema) -> None:
        await outbox.record(
            conn,
            action=action,
            resource_type=RESOURCE,
            resource_id=schema.id,
            org_id=schema.org_id,
            details={
                "migration_id": schema.migration_id,
                "type": schema.type.value,
                "fingerprint": schema.fingerprint,
            },
        )


def _migration_ids(parent: str) -> tuple[str, str]:
    ids = parse_name(parent, MIGRATION_PATTERN, "parent")
    return ids["org"], ids["migration"]


def _type_required(field_name: str) -> FieldViolation:
    return FieldViolation(field_name, "must be SCHEMA_TYPE_SOURCE or SCHEMA_TYPE_TARGET")


async def _capture(
    destinations: DestinationPolicy,
    destination: Destination,
    namespaces: Sequence[str],
    side: str,
) -> tuple[dict[str, Any], str]:
    """The definition and server version of the `side` database."""
    config_field = f"{side}_config"
    try:
        if destination.engine == MYSQL:
            return await capture_live_mysql(
                destinations,
                destination,
                connect_timeout=CONNECT_TIMEOUT_SECONDS,
                statement_timeout_ms=CAPTURE_STATEMENT_TIMEOUT_MS,
            )
        conn = await destinations.connect(
            destination,
            timeout=CONNECT_TIMEOUT_SECONDS,
            server_settings={
                "application_name": "sensei-schema-capture",
                "default_transaction_read_only": "on",
                "statement_timeout": str(CAPTURE_STATEMENT_TIMEOUT_MS),
            },
        )
    except DestinationNotAllowed:
        raise FailedPrecondition(
            f"the {side} database's address is not allowed: the platform's own servers,"
            " loopback, link-local and metadata addresses are refused unless an operator"
            " allows them",
            reason="DESTINATION_NOT_ALLOWED",
            metadata={"field": config_field},
        ) from None
    except DestinationUnreachable:
        raise _unreachable(side) from None
    try:
        definition = await capture_schema(conn, list(namespaces) or None)
        version = conn.get_server_version()
    except DATABASE_ERRORS as exc:
        log.warning(
            "capturing the %s database %s failed: %s: %s",
            side,
            destination.describe(),
            type(exc).__name__,
            exc,
        )
        raise _unreachable(side) from None
    finally:
        await conn.close()
    return definition, f"{version.major}.{version.minor}"


def _unreachable(side: str) -> FailedPrecondition:
    """The one answer for a database that cannot be reached, refuses us or fails the capture."""
    return FailedPrecondition(
        f"cannot read the {side} database: check its address, credentials and that it"
        " accepts connections from Sensei",
        reason=f"{side.upper()}_UNREACHABLE",
        metadata={"field": f"{side}_config"},
    )
