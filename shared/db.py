"""asyncpg pools and the per-service SQL migration runner.

Each service owns one PostgreSQL schema. Its migrations are numbered `.sql` files in
`services/<name>/migrations/`, preceded by the shared ones in `shared/migrations/`
(outbox, idempotency). Each file runs once, in its own transaction, under an advisory lock
(replicas may start together), and its checksum is recorded so an edited, already applied
file stops the service instead of silently diverging.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

import asyncpg

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    # What store functions take: a plain connection or one borrowed from a pool.
    Connection: TypeAlias = asyncpg.Connection | PoolConnectionProxy
else:
    Connection = asyncpg.Connection

log = logging.getLogger(__name__)

SHARED_MIGRATIONS = Path(__file__).parent / "migrations"

# The database is unreachable or lost the connection: the same call may succeed later.
TRANSIENT_DB_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # refused, reset, timed out (TimeoutError is an OSError)
    asyncpg.PostgresConnectionError,  # ConnectionDoesNotExistError, ConnectionFailureError
    asyncpg.CannotConnectNowError,  # starting up, shutting down, in recovery
    asyncpg.AdminShutdownError,
    asyncpg.TooManyConnectionsError,
    asyncpg.InterfaceError,  # the connection is closed
    asyncpg.InternalClientError,  # a pooled connection caught mid-protocol by a restart
)
# A concurrent transaction conflicted with this one: running it again may succeed.
CONFLICT_DB_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
)
# Any failure of a database call: a transient one, or the server refusing the statement.
# Background loops outlive all of them (they retry), and a caller-named database may
# answer any of them.
DATABASE_ERRORS: tuple[type[BaseException], ...] = (*TRANSIENT_DB_ERRORS, asyncpg.PostgresError)


class MigrationError(RuntimeError):
    """Applied migrations do not match the files (edited, reordered or missing)."""


@dataclass(frozen=True)
class Migration:
    """One SQL file to apply."""

    version: str
    sql: str

    @property
    def checksum(self) -> str:
        """Hex SHA-256 of the file's text."""
        return hashlib.sha256(self.sql.encode()).hexdigest()


def migrations_in(directory: Path, prefix: str = "") -> list[Migration]:
    """The numbered `.sql` files of a directory, in order."""
    return [
        Migration(version=f"{prefix}{path.stem}", sql=path.read_text())
        for path in sorted(directory.glob("[0-9]*.sql"))
    ]


def service_migrations(service_dir: Path) -> list[Migration]:
    """Shared migrations followed by those of one service."""
    return migrations_in(SHARED_MIGRATIONS, "shared/") + migrations_in(service_dir / "migrations")


async def migrate(conn: Connection, schema: str, migrations: Sequence[Migration]) -> int:
    """Applies pending migrations to `schema`; returns how many ran."""
    _check_identifier(schema)
    lock_key = int.from_bytes(
        hashlib.sha256(f"sensei:{schema}".encode()).digest()[:8], "big", signed=True
    )
    await conn.execute("SELECT pg_advisory_lock($1)", lock_key)
    try:
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        await conn.execute(
            f'CREATE TABLE IF NOT EXISTS "{schema}".schema_migrations ('
            " version text PRIMARY KEY, checksum text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        rows = await conn.fetch(f'SELECT version, checksum FROM "{schema}".schema_migrations')
        applied = {row["version"]: row["checksum"] for row in rows}
        known = {m.version for m in migrations}
        unknown = sorted(set(applied) - known)
        if unknown:
            raise MigrationError(
                f"schema {schema} has migrations this code does not know: {unknown}"
            )
        ran = 0
        for migration in migrations:
            recorded = applied.get(migration.version)
            if recorded is not None:
                if recorded != migration.checksum:
                    raise MigrationError(
                        f"migration {migration.version} of {schema} was edited after it was applied"
                    )
                continue
            async with conn.transaction():
                await conn.execute(f'SET LOCAL search_path TO "{schema}", public')
                await conn.execute(migration.sql)
                await conn.execute(
                    f'INSERT INTO "{schema}".schema_migrations (version, checksum) VALUES ($1, $2)',
                    migration.version,
                    migration.checksum,
                )
            log.info("applied migration %s to schema %s", migration.version, schema)
            ran += 1
        return ran
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", lock_key)


async def create_pool(
    dsn: str, schema: str, *, min_size: int = 1, max_size: int = 10
) -> asyncpg.Pool:
    """A pool whose connections see `schema` first on their search path.

    Released connections are not reset (asyncpg's default reset costs a round trip per
    call): no code leaves session state on a pooled connection. Session settings come in
    the startup packet (`server_settings`), transactions use SET LOCAL / set_config(…,
    true) and transaction-level advisory locks, LISTEN and session locks live on
    connections of their own (`shared.listen`, the pattern indexer, `migrate`), and an
    open transaction is still rolled back on release by asyncpg itself.
    `tests/shared/test_session_state.py` keeps it so.
    """
    _check_identifier(schema)
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        reset=keep_session,
        server_settings={
            "search_path": f'"{schema}", public',
            "application_name": f"sensei-{schema}",
        },
    )
    assert pool is not None
    return pool


async def keep_session(conn: asyncpg.Connection) -> None:
    """The pool's reset on release: nothing to undo (see `create_pool`)."""


def _check_identifier(name: str) -> None:
    if not name or not all(ch.isalnum() or ch == "_" for ch in name) or name[0].isdigit():
        raise ValueError(f"not a plain SQL identifier: {name!r}")
