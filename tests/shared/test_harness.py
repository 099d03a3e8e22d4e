"""The harness gives each test its own migrated database."""

import asyncpg


async def test_each_test_gets_a_migrated_database_of_its_own(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        schemas = {row["nspname"] for row in await conn.fetch("SELECT nspname FROM pg_namespace")}
        await conn.execute("CREATE TABLE org.scratch_marker (id int)")
    finally:
        await conn.close()
    assert {"org", "migration", "verification", "pattern"} <= schemas


async def test_databases_do_not_share_tables(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        exists = await conn.fetchval("SELECT to_regclass('org.scratch_marker') IS NOT NULL")
    finally:
        await conn.close()
    assert exists is False
