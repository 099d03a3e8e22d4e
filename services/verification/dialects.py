"""The engine seam of ROW_COUNT and CHECKSUM: what each engine's SQL must answer.

Ranges, bisection and reporting (`checksum.py`, `row_counts.py`) are the same for every
engine; a `Dialect` is one side's database (`checksum_postgres.PostgresDialect`,
`checksum_mysql.MySQLDialect`), and a `TableReader` is that side reading one table the way
both sides agreed in a `TableShape`. A third engine is one more module with these two.

Across engines (a MySQL/MariaDB source, a PostgreSQL target) both sides hash the canonical
text of every value (`canonical_text.py`) and order and cut keys by their binary value
(text keys as UTF-8 bytes), so collations that fold case or pad spaces cannot hide a
difference. Between two PostgreSQL databases nothing changes: rows hash as `ROW(...)::text`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

from services.verification.checksum_ranges import Column, Key, KeyRange, RangeHash, TableName

POSTGRESQL = "postgresql"
MYSQL = "mysql"


@dataclass(frozen=True)
class TableShape:
    """What both sides hash of one table: its columns on each side and their engines."""

    table: TableName
    source_engine: str
    target_engine: str
    source_columns: tuple[Column, ...]
    target_columns: tuple[Column, ...]

    @property
    def across_engines(self) -> bool:
        """The sides are different engines: hash canonical text, order keys by bytes."""
        return self.source_engine != self.target_engine

    @property
    def common(self) -> tuple[str, ...]:
        """The columns both sides have, in source order: what a row's hash covers."""
        names = {c.name for c in self.target_columns}
        return tuple(c.name for c in self.source_columns if c.name in names)

    @property
    def key(self) -> tuple[str, ...]:
        """The primary key's columns, in key order (the same on both sides)."""
        keyed = sorted((c for c in self.source_columns if c.key_position), key=_position)
        return tuple(c.name for c in keyed)

    def mysql_types(self) -> Mapping[str, str]:
        """Across engines: each column's MySQL type, which picks its canonical-text rule."""
        side = self.source_columns if self.source_engine == MYSQL else self.target_columns
        return {c.name: c.type for c in side}

    def columns_on(self, side: str) -> tuple[Column, ...]:
        """`source` or `target`'s columns."""
        return self.source_columns if side == "source" else self.target_columns

    def other_side(self, side: str) -> tuple[Column, ...]:
        """The columns of the side that is not `side`."""
        return self.target_columns if side == "source" else self.source_columns


def _position(column: Column) -> int:
    return column.key_position


class TableReader(Protocol):
    """One side reading one table as its `TableShape` says (inside that side's snapshot)."""

    async def sample_boundaries(self, key_range: KeyRange, step: int) -> list[Key]:
        """Every `step`-th key of `key_range` in key order (the first key excluded)."""
        ...

    async def hash_ranges(self, ranges: Sequence[KeyRange], per_query: int) -> list[RangeHash]:
        """Row count and hash of each range, in order, `per_query` ranges per round trip."""
        ...

    async def row_hashes(self, key_range: KeyRange) -> dict[Key, str]:
        """Each row's hash in `key_range`, by key."""
        ...

    async def multiset_hash(self) -> tuple[int, str | None]:
        """Row count and an order-independent hash of the whole table (no primary key)."""
        ...


class Dialect(Protocol):
    """One side's database, in the terms CHECKSUM and ROW_COUNT compare."""

    @property
    def engine(self) -> str:
        """`postgresql` or `mysql`."""
        ...

    def snapshot(self) -> AbstractAsyncContextManager[None]:
        """One read-only, repeatable-read transaction with fixed output settings."""
        ...

    async def list_tables(self) -> list[TableName]:
        """The user tables this side compares, named as the target names them."""
        ...

    async def table_columns(self, table: TableName) -> list[Column]:
        """The table's columns in order, with type, collation and primary key position."""
        ...

    async def count_rows(self, table: TableName) -> int:
        """The table's exact row count."""
        ...

    def reader(self, shape: TableShape, side: str) -> TableReader:
        """This side (`source` or `target`) reading `shape`'s table."""
        ...
