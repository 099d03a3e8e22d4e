"""The per-service SQL migration runner."""

import asyncio
from collections.abc import Awaitable, Callable

import asyncpg
import pytest

from shared.db import Migration, MigrationError, migrate

FIRST = Migration("0001_init", "CREATE TABLE things (id int PRIMARY KEY);")
SECOND = Migration("0002_more", "ALTER TABLE things ADD COLUMN label text;")


async def test_migrations_apply_once_into_their_own_schema(
    make_database: Callable[[], Awaitable[str]],
) -> None:
    conn = await asyncpg.connect(await make_database())
    try:
        assert await migrate(conn, "svc", [FIRST, SECOND]) == 2
        assert await migrate(conn, "svc", [FIRST, SECOND]) == 0
        columns = await conn.fetch(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = 'svc' AND table_name = 'things' ORDER BY column_name"
        )
    finally:
        await conn.close()
    assert [row["column_name"] for row in columns] == ["id", "label"]


async def test_edited_applied_migration_is_refused(
    make_database: Callable[[], Awaitable[str]],
) -> None:
    conn = await asyncpg.connect(await make_database())
    try:
        await migrate(conn, "svc", [FIRST])
        edited = Migration("0001_init", FIRST.sql + " -- changed")
        with pytest.raises(MigrationError, match="edited"):
            await migrate(conn, "svc", [edited])
    finally:
        await conn.close()


async def test_failed_migration_leaves_nothing_half_applied(
    make_database: Callable[[], Awaitable[str]],
) -> None:
    broken = Migration("0002_broken", "CREATE TABLE halfway (id int); SELECT 1/0;")
    conn = await asyncpg.connect(await make_database())
    try:
        with pytest.raises(asyncpg.DivisionByZeroError):
            await migrate(conn, "svc", [FIRST, broken])
        halfway = await conn.fetchval("SELECT to_regclass('svc.halfway')")
        versions = await conn.fetch("SELECT version FROM svc.schema_migrations")
    finally:
        await conn.close()
    assert halfway is None
    assert [row["version"] for row in versions] == ["0001_init"]


async def test_concurrent_replicas_apply_each_migration_once(
    make_database: Callable[[], Awaitable[str]],
) -> None:
    dsn = await make_database()
    conns = [await asyncpg.connect(dsn) for _ in range(4)]
    try:
        ran = await asyncio.gather(*(migrate(conn, "svc", [FIRST, SECOND]) for conn in conns))
    finally:
        for conn in conns:
            await conn.close()
    assert sorted(ran) == [0, 0, 0, 2]


async def test_unknown_applied_migration_is_refused(
    make_database: Callable[[], Awaitable[str]],
) -> None:
    conn = await asyncpg.connect(await make_database())
    try:
        await migrate(conn, "svc", [FIRST, SECOND])
        with pytest.raises(MigrationError, match="does not know"):
            await migrate(conn, "svc", [FIRST])
    finally:
        await conn.close()
