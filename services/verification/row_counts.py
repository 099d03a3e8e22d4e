"""ROW_COUNT verification: exact per-table row counts of two live PostgreSQL databases.

Also home of what both live comparisons (this one and CHECKSUM) need from the catalog: table
names and the list of user tables.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import asyncpg

from services.verification.table_results import PerTableResult

# Called with (tables_done, tables_total) after each table; the worker persists it as progress.
ProgressCallback = Callable[[int, int], Awaitable[None]]

_USER_TABLES = """
SELECT n.nspname, c.relname
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p')
  AND NOT c.relispartition
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_toast%'
  AND n.nspname NOT LIKE 'pg\\_temp\\_%'
ORDER BY n.nspname, c.relname
"""


def quote_identifier(identifier: str) -> str:
    """Quote a PostgreSQL identifier (doubling embedded quotes)."""
    return '"' + identifier.replace('"', '""') + '"'


@dataclass(frozen=True, order=True)
class TableName:
    """A schema-qualified table name."""

    schema: str
    name: str

    @classmethod
    def parse(cls, text: str) -> TableName:
        """`schema.table`, or `table` for schema public."""
        schema, dot, name = text.partition(".")
        if not dot:
            return cls("public", schema)
        if not schema or not name:
            raise ValueError(f"not a table name: {text!r}")
        return cls(schema, name)

    @property
    def sql(self) -> str:
        """The quoted, qualified name for use in SQL text."""
        return f"{quote_identifier(self.schema)}.{quote_identifier(self.name)}"

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}"


async def list_tables(connection: asyncpg.Connection) -> list[TableName]:
    """Every user table (ordinary or partitioned, partitions excluded) of the database."""
    rows = await connection.fetch(_USER_TABLES)
    return [TableName(row["nspname"], row["relname"]) for row in rows]


async def tables_to_compare(
    source: asyncpg.Connection,
    target: asyncpg.Connection,
    tables: Sequence[str] | None,
) -> tuple[list[TableName], set[TableName], set[TableName]]:
    """The tables to compare and which of them exist on each side.

    With `tables` empty or None: every table of either side. Returns (tables, on source, on target).
    """
    on_source = set(await list_tables(source))
    on_target = set(await list_tables(target))
    chosen = (
        sorted({TableName.parse(t) for t in tables}) if tables else sorted(on_source | on_target)
    )
    return chosen, on_source, on_target


@dataclass(frozen=True)
class TableRowCount:
    """Row counts of one table; None where the table does not exist."""

    table: TableName
    source_rows: int | None
    target_rows: int | None

    @property
    def matched(self) -> bool:
        """Both sides have the table with the same number of rows."""
        return self.source_rows is not None and self.source_rows == self.target_rows

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "table": str(self.table),
            "source_rows": self.source_rows,
            "target_rows": self.target_rows,
            "matched": self.matched,
        }


@dataclass(frozen=True)
class RowCountResult(PerTableResult[TableRowCount]):
    """ROW_COUNT outcome: one check per table."""

    kind: ClassVar[str] = "ROW_COUNT"


async def _count(connection: asyncpg.Connection, table: TableName, exists: bool) -> int | None:
    if not exists:
        return None
    count: int = await connection.fetchval(f"SELECT count(*) FROM {table.sql}")
    return count


async def compare_row_counts(
    source: asyncpg.Connection,
    target: asyncpg.Connection,
    tables: Sequence[str] | None = None,
    progress: ProgressCallback | None = None,
) -> RowCountResult:
    """Count every table exactly on both sides (both in parallel, each in one snapshot).

    The connections must not be inside a transaction.
    """
    chosen, on_source, on_target = await tables_to_compare(source, target, tables)
    counts: list[TableRowCount] = []
    if progress is not None:
        await progress(0, len(chosen))
    async with (
        source.transaction(isolation="repeatable_read", readonly=True),
        target.transaction(isolation="repeatable_read", readonly=True),
    ):
        for done, table in enumerate(chosen, start=1):
            source_rows, target_rows = await asyncio.gather(
                _count(source, table, table in on_source),
                _count(target, table, table in on_target),
            )
            counts.append(TableRowCount(table, source_rows, target_rows))
            if progress is not None:
                await progress(done, len(chosen))
    return RowCountResult(tuple(counts))
