"""The migration store's queries on migrations: rows, their change log and NOTIFY, quotas.

Connection configs are sealed with the ConfigCipher on the way in and opened on the way out,
so no other module sees them encrypted and none stores them in clear. Every saved version is
copied to `migration_changes` and announced on the deployment's change channel (watch.py).
Also here: the transaction's clock and the per-organization quota lock, which agent
executions take too.

Tables are unqualified (the pool puts the service's schema first on the search path).
Functions that write expect to run inside the caller's transaction.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from services.migration.config_cipher import ConfigCipher
from services.migration.domain import (
    IN_FLIGHT_STATUSES,
    ChangeEvent,
    Lifecycle,
    Migration,
    MigrationChange,
    MigrationDraft,
    MigrationStatus,
)
from shared.db import Connection
from shared.pagination import keyset_after

MIGRATION_COLUMNS = (
    "id, org_id, display_name, description, status, source_config_sealed,"
    " target_config_sealed, progress, started_at, completed_at, paused_status, failure_reason,"
    " run, version, created_at, updated_at"
)

_CHANNEL_PREFIX = "sensei_"
_CHANNEL_SUFFIX = "_migration_changes"


def change_channel(db_schema: str) -> str:
    """The NOTIFY channel of committed migration changes of one deployment (its schema)."""
    return f"{_CHANNEL_PREFIX}{db_schema}{_CHANNEL_SUFFIX}"


async def transaction_time(conn: Connection) -> datetime:
    """The database's `now()`: the start of the current transaction, one clock for all."""
    now: datetime = await conn.fetchval("SELECT now()")
    return now


def _migration_of(row: asyncpg.Record, cipher: ConfigCipher) -> Migration:
    migration_id = str(row["id"])
    return Migration(
        id=migration_id,
        org_id=str(row["org_id"]),
        display_name=row["display_name"],
        description=row["description"],
        source_config=cipher.open(
            row["source_config_sealed"], migration_id=migration_id, side="source"
        ),
        target_config=cipher.open(
            row["target_config_sealed"], migration_id=migration_id, side="target"
        ),
        lifecycle=Lifecycle(
            status=MigrationStatus(row["status"]),
            progress=row["progress"],
            start_time=row["started_at"],
            complete_time=row["completed_at"],
            paused_status=MigrationStatus(row["paused_status"]) if row["paused_status"] else None,
            failure_reason=row["failure_reason"],
        ),
        run=row["run"],
        version=row["version"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


async def insert_migration(
    conn: Connection, cipher: ConfigCipher, org_id: str, draft: MigrationDraft
) -> Migration:
    """Stores a new PENDING migration."""
    migration_id = str(uuid.uuid4())
    row = await conn.fetchrow(
        "INSERT INTO migrations (id, org_id, display_name, description,"
        " source_config_sealed, target_config_sealed)"
        f" VALUES ($1, $2, $3, $4, $5, $6) RETURNING {MIGRATION_COLUMNS}",
        migration_id,
        org_id,
        draft.display_name,
        draft.description,
        cipher.seal(draft.source_config, migration_id=migration_id, side="source"),
        cipher.seal(draft.target_config, migration_id=migration_id, side="target"),
    )
    assert row is not None
    return _migration_of(row, cipher)


_LOCKS = {None: "", "UPDATE": " FOR UPDATE", "SHARE": " FOR SHARE", "KEY SHARE": " FOR KEY SHARE"}


async def migration(
    conn: Connection,
    cipher: ConfigCipher,
    org_id: str,
    migration_id: str,
    *,
    lock: str | None = None,
) -> Migration | None:
    """One migration of an organization; `lock` (UPDATE, SHARE, KEY SHARE) locks its row."""
    suffix = _LOCKS[lock]
    row = await conn.fetchrow(
        f"SELECT {MIGRATION_COLUMNS} FROM migrations WHERE org_id = $1 AND id = $2{suffix}",
        org_id,
        migration_id,
    )
    return None if row is None else _migration_of(row, cipher)


async def migration_status(
    conn: Connection, org_id: str, migration_id: str, *, lock: str | None = None
) -> MigrationStatus | None:
    """The status of one migration of an organization; `lock` as in `migration`."""
    status = await conn.fetchval(
        f"SELECT status FROM migrations WHERE org_id = $1 AND id = $2{_LOCKS[lock]}",
        org_id,
        migration_id,
    )
    return None if status is None else MigrationStatus(status)


async def migration_exists(conn: Connection, org_id: str, migration_id: str) -> bool:
    """Whether an organization has this migration (key-share locked against deletion)."""
    found = await conn.fetchval(
        "SELECT true FROM migrations WHERE org_id = $1 AND id = $2 FOR KEY SHARE",
        org_id,
        migration_id,
    )
    return bool(found)


async def list_migrations(
    conn: Connection,
    cipher: ConfigCipher,
    org_id: str,
    *,
    status: MigrationStatus | None,
    after: Sequence[Any] | None,
    limit: int,
) -> list[Migration]:
    """A page of an organization's migrations by (created_at, id), optionally by status."""
    keyset, args = keyset_after(("created_at", "id"), after)
    conditions = [keyset]
    args.append(org_id)
    conditions.append(f"org_id = ${len(args)}")
    if status is not None:
        args.append(status.value)
        conditions.append(f"status = ${len(args)}")
    args.append(limit)
    rows = await conn.fetch(
        f"SELECT {MIGRATION_COLUMNS} FROM migrations WHERE {' AND '.join(conditions)}"
        f" ORDER BY created_at, id LIMIT ${len(args)}",
        *args,
    )
    return [_migration_of(row, cipher) for row in rows]


async def save_migration(
    conn: Connection, cipher: ConfigCipher, changed: Migration, event: ChangeEvent
) -> Migration:
    """Writes the mutable fields of `changed` as the next version, logs and announces it.

    The caller holds the row lock (read with lock="UPDATE"); the change row and the NOTIFY
    commit or roll back with the write.
    """
    state = changed.lifecycle
    row = await conn.fetchrow(
        "UPDATE migrations SET display_name = $3, description = $4, source_config_sealed = $5,"
        " target_config_sealed = $6, status = $7, progress = $8, started_at = $9,"
        " completed_at = $10, paused_status = $11, failure_reason = $12, run = $13,"
        " version = version + 1, updated_at = now()"
        f" WHERE org_id = $1 AND id = $2 RETURNING {MIGRATION_COLUMNS}",
        changed.org_id,
        changed.id,
        changed.display_name,
        changed.description,
        cipher.seal(changed.source_config, migration_id=changed.id, side="source"),
        cipher.seal(changed.target_config, migration_id=changed.id, side="target"),
        state.status.value,
        state.progress,
        state.start_time,
        state.complete_time,
        state.paused_status.value if state.paused_status else None,
        state.failure_reason,
        changed.run,
    )
    assert row is not None
    await _record_change(conn, changed.id, event, version_offset=0)
    return _migration_of(row, cipher)


async def delete_migration(conn: Connection, org_id: str, migration_id: str) -> None:
    """Deletes a migration (its schemas and executions cascade), logging a DELETED change."""
    await _record_change(conn, migration_id, ChangeEvent.DELETED, version_offset=1)
    await conn.execute("DELETE FROM migrations WHERE org_id = $1 AND id = $2", org_id, migration_id)


async def delete_organization_data(conn: Connection, org_id: str) -> int:
    """Deletes everything of a deleted organization: its migrations (with their schemas,
    executions and stored connection secrets) and its token usage; watchers see DELETED.
    Returns how many migrations went (0 when it already ran: replays are harmless)."""
    ids = await conn.fetch(
        "SELECT id FROM migrations WHERE org_id = $1 ORDER BY id FOR UPDATE", org_id
    )
    for row in ids:
        await _record_change(conn, str(row["id"]), ChangeEvent.DELETED, version_offset=1)
    await conn.execute("DELETE FROM migrations WHERE org_id = $1", org_id)
    await conn.execute("DELETE FROM token_usage WHERE org_id = $1", org_id)
    return len(ids)


async def _record_change(
    conn: Connection, migration_id: str, event: ChangeEvent, *, version_offset: int
) -> None:
    version = await conn.fetchval(
        "INSERT INTO migration_changes (migration_id, version, event_type, org_id, display_name,"
        " description, status, source_config_sealed, target_config_sealed, progress,"
        " started_at, completed_at, paused_status, failure_reason, run, created_at, updated_at)"
        " SELECT id, version + $2, $3, org_id, display_name, description, status,"
        " source_config_sealed, target_config_sealed, progress, started_at, completed_at,"
        " paused_status, failure_reason, run, created_at, updated_at"
        " FROM migrations WHERE id = $1 RETURNING version",
        migration_id,
        version_offset,
        event.value,
    )
    # Sent on commit, in commit order; listeners only learn which migration to re-read.
    await conn.execute(
        f"SELECT pg_notify('{_CHANNEL_PREFIX}' || current_schema() || '{_CHANNEL_SUFFIX}', $1)",
        json.dumps({"migration_id": migration_id, "version": version}),
    )


async def changes_after(
    conn: Connection, cipher: ConfigCipher, migration_id: str, version: int, limit: int = 100
) -> list[MigrationChange]:
    """The logged versions of a migration after `version`, oldest first."""
    rows = await conn.fetch(
        "SELECT migration_id AS id, event_type, org_id, display_name, description, status,"
        " source_config_sealed, target_config_sealed, progress, started_at, completed_at,"
        " paused_status, failure_reason, run, version, created_at, updated_at"
        " FROM migration_changes WHERE migration_id = $1 AND version > $2"
        " ORDER BY version LIMIT $3",
        migration_id,
        version,
        limit,
    )
    return [
        MigrationChange(ChangeEvent(row["event_type"]), _migration_of(row, cipher)) for row in rows
    ]


async def prune_changes(conn: Connection, before: datetime) -> int:
    """Drops logged changes recorded before `before`; returns how many."""
    result: str = await conn.execute("DELETE FROM migration_changes WHERE recorded_at < $1", before)
    return int(result.rsplit(" ", 1)[-1])


async def lock_org_quota(conn: Connection, org_id: str) -> None:
    """Serializes quota checks of one organization until the transaction ends."""
    key = int.from_bytes(
        hashlib.sha256(f"sensei-migration-quota:{org_id}".encode()).digest()[:8],
        "big",
        signed=True,
    )
    await conn.execute("SELECT pg_advisory_xact_lock($1)", key)


async def count_in_flight(conn: Connection, org_id: str) -> int:
    """How many of an organization's migrations are started and not finished."""
    count: int = await conn.fetchval(
        "SELECT count(*) FROM migrations WHERE org_id = $1 AND status = ANY($2::text[])",
        org_id,
        sorted(status.value for status in IN_FLIGHT_STATUSES),
    )
    return count
