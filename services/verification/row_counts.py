"""ROW_COUNT verification: exact per-table row counts of two live databases.

Also home of what both live comparisons (this one and CHECKSUM) share: which tables to compare.
Each side is a `Dialect` (dialects.py); an asyncpg connection is a PostgreSQL side.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import asyncpg

from services.verification.checksum_postgres import as_dialect
from services.verification.checksum_ranges import TableName, quote_identifier
from services.verification.dialects import Dialect
from services.verification.table_results import PerTableResult

__all__ = [
    "ProgressCallback",
    "RowCountResult",
    "TableName",
    "TableRowCount",
    "compare_row_counts",
    "quote_identifier",
    "tables_to_compare",
]

# Called with (tables_done, tables_total) after each table; the worker persists it as progress.
ProgressCallback = Callable[[int, int], Awaitable[None]]


async def tables_to_compare(
    source: Dialect,
    target: Dialect,
    tables: Sequence[str] | None,
) -> tuple[list[TableName], set[TableName], set[TableName]]:
    """The tables to compare and which of them exist on each side.

    With `tables` empty or None: every table of either side. Returns (tables, on source, on target).
    """
    on_source = set(await source.list_tables())
    on_target = set(await target.list_tables())
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


async def _count(side: Dialect, table: TableName, exists: bool) -> int | None:
    return await side.count_rows(table) if exists else None


async def compare_row_counts(
    source: Dialect | asyncpg.Connection,
    target: Dialect | asyncpg.Connection,
    tables: Sequence[str] | None = None,
    progress: ProgressCallback | None = None,
) -> RowCountResult:
    """Count every table exactly on both sides (both in parallel, each in one snapshot).

    The connections must not be inside a transaction.
    """
    source, target = as_dialect(source), as_dialect(target)
    chosen, on_source, on_target = await tables_to_compare(source, target, tables)
    counts: list[TableRowCount] = []
    if progress is not None:
        await progress(0, len(chosen))
    async with source.snapshot(), target.snapshot():
        for done, table in enumerate(chosen, start=1):
            source_rows, target_rows = await asyncio.gather(
                _count(source, table, table in on_source),
                _count(target, table, table in on_target),
            )
            counts.append(TableRowCount(table, source_rows, target_rows))
            if progress is not None:
                await progress(done, len(chosen))
    return RowCountResult(tuple(counts))
