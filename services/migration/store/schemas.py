"""The migration store's queries on schemas: stored snapshots, definitions as jsonb.

Tables are unqualified (the pool puts the service's schema first on the search path).
Functions that write expect to run inside the caller's transaction.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg

from services.migration.domain import Schema, SchemaType
from shared.db import Connection
from shared.pagination import keyset_after

_SCHEMA_COLUMNS = (
    "id, org_id, migration_id, type, definition::text, fingerprint, metadata::text, created_at"
)


def _schema_of(row: asyncpg.Record) -> Schema:
    return Schema(
        id=str(row["id"]),
        org_id=str(row["org_id"]),
        migration_id=str(row["migration_id"]),
        type=SchemaType(row["type"]),
        definition=json.loads(row["definition"]),
        fingerprint=row["fingerprint"],
        metadata=json.loads(row["metadata"]),
        created_at=row["created_at"],
    )


async def insert_schema(
    conn: Connection,
    org_id: str,
    migration_id: str,
    *,
    schema_type: SchemaType,
    definition: Mapping[str, Any],
    fingerprint: str,
    metadata: Mapping[str, Any],
) -> Schema:
    """Stores a schema snapshot."""
    row = await conn.fetchrow(
        "INSERT INTO schemas (id, org_id, migration_id, type, definition, fingerprint, metadata)"
        f" VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7::jsonb) RETURNING {_SCHEMA_COLUMNS}",
        str(uuid.uuid4()),
        org_id,
        migration_id,
        schema_type.value,
        json.dumps(definition),
        fingerprint,
        json.dumps(metadata),
    )
    assert row is not None
    return _schema_of(row)


async def schema(conn: Connection, org_id: str, migration_id: str, schema_id: str) -> Schema | None:
    """One schema of a migration of an organization."""
    row = await conn.fetchrow(
        f"SELECT {_SCHEMA_COLUMNS} FROM schemas"
        " WHERE org_id = $1 AND migration_id = $2 AND id = $3",
        org_id,
        migration_id,
        schema_id,
    )
    return None if row is None else _schema_of(row)


async def list_schemas(
    conn: Connection,
    org_id: str,
    migration_id: str,
    *,
    schema_type: SchemaType | None,
    after: Sequence[Any] | None,
    limit: int,
) -> list[Schema]:
    """A page of a migration's schemas by (created_at, id), optionally by type."""
    keyset, args = keyset_after(("created_at", "id"), after)
    conditions = [keyset]
    args.extend([migration_id, org_id])
    conditions.append(f"migration_id = ${len(args) - 1} AND org_id = ${len(args)}")
    if schema_type is not None:
        args.append(schema_type.value)
        conditions.append(f"type = ${len(args)}")
    args.append(limit)
    rows = await conn.fetch(
        f"SELECT {_SCHEMA_COLUMNS} FROM schemas WHERE {' AND '.join(conditions)}"
        f" ORDER BY created_at, id LIMIT ${len(args)}",
        *args,
    )
    return [_schema_of(row) for row in rows]
