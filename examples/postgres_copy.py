"""Copying a PostgreSQL source into existing PostgreSQL target tables (examples/agent_worker.py,
DATA_MIGRATOR); a MySQL source is examples/mysql_copy.py."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import asyncpg

COPY_CHUNK_ROWS = 5000


def copy_order(tables: Mapping[str, Any]) -> list[str]:
    """Tables ordered so that every table comes after the tables its foreign keys reference."""
    ordered: list[str] = []
    visiting: set[str] = set()

    def visit(table: str) -> None:
        if table in ordered or table in visiting:
            return  # done, or a reference cycle: its constraints must be deferred
        visiting.add(table)
        for foreign_key in tables[table].get("foreign_keys", []):
            if foreign_key["referenced_table"] in tables:
                visit(foreign_key["referenced_table"])
        visiting.discard(table)
        ordered.append(table)

    for table in sorted(tables):
        visit(table)
    return ordered


def qualified(table: str) -> str:
    """`schema.table` quoted for PostgreSQL."""
    schema, _, name = table.partition(".")
    return ".".join('"' + part.replace('"', '""') + '"' for part in (schema, name))


async def migrate_table(
    source: asyncpg.Connection,
    target: asyncpg.Connection,
    table: str,
    definition: Mapping[str, Any],
) -> int:
    """Copies one table's rows from source to target in chunks; returns how many.

    The target table is emptied first, so a rerun after a crash starts clean. Generated
    columns are left for the target to compute.
    """
    columns = [
        name
        for name, column in sorted(
            definition["columns"].items(), key=lambda item: item[1]["position"]
        )
        if not column.get("generated")
    ]
    schema, _, name = table.partition(".")
    select = "SELECT " + ", ".join(f'"{c}"' for c in columns) + f" FROM {qualified(table)}"
    copied = 0
    async with (
        source.transaction(isolation="repeatable_read", readonly=True),
        target.transaction(),
    ):
        await target.execute(f"DELETE FROM {qualified(table)}")
        cursor = await source.cursor(select)
        while rows := await cursor.fetch(COPY_CHUNK_ROWS):
            await target.copy_records_to_table(
                name, schema_name=schema, columns=columns, records=[tuple(row) for row in rows]
            )
            copied += len(rows)
    return copied
