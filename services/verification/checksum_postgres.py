"""The PostgreSQL side of CHECKSUM: the SQL that reads columns, samples and hashes key ranges.

`checksum.py` decides which ranges to hash, split or fetch; this module says how, in PostgreSQL:
a range's hash is md5 of the md5s of its rows' text, ordered by key, many ranges per round trip,
and `read_snapshots` opens the read-only snapshot with fixed output settings each side reads in.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from services.verification.checksum_ranges import Column, Key, KeyRange, RangeHash, primary_key
from services.verification.row_counts import TableName, quote_identifier

_SESSION_SETTINGS = (
    "SET LOCAL TimeZone = 'UTC'",
    "SET LOCAL DateStyle = 'ISO, YMD'",
    "SET LOCAL IntervalStyle = 'postgres'",
    "SET LOCAL extra_float_digits = 1",
    "SET LOCAL bytea_output = 'hex'",
)

_COLUMNS = """
SELECT a.attname AS name,
       format_type(a.atttypid, NULL) AS type,
       CASE WHEN a.attcollation = 0 THEN NULL
            WHEN co.collname = 'default'
                 THEN (SELECT datcollate FROM pg_database WHERE datname = current_database())
            ELSE co.collname END AS collation,
       coalesce(k.ord, 0) AS key_position
FROM pg_attribute a
LEFT JOIN pg_collation co ON co.oid = a.attcollation
LEFT JOIN (
    SELECT key.attnum, key.ord
    FROM pg_index i, unnest(i.indkey) WITH ORDINALITY AS key(attnum, ord)
    WHERE i.indrelid = $1::regclass AND i.indisprimary
) k ON k.attnum = a.attnum
WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""


@contextlib.asynccontextmanager
async def read_snapshots(
    source: asyncpg.Connection, target: asyncpg.Connection
) -> AsyncIterator[None]:
    """One read-only REPEATABLE READ transaction on each side, with the fixed output settings.

    The connections must not be inside a transaction.
    """
    async with (
        source.transaction(isolation="repeatable_read", readonly=True),
        target.transaction(isolation="repeatable_read", readonly=True),
    ):
        for setting in _SESSION_SETTINGS:
            await asyncio.gather(source.execute(setting), target.execute(setting))
        yield


@dataclass(frozen=True)
class TablePlan:
    """SQL fragments for one table, identical on both sides."""

    table: TableName
    key_columns: tuple[str, ...]
    key_types: tuple[str, ...]
    key_collations: tuple[str, ...]
    row_hash: str

    @property
    def key_exprs(self) -> tuple[str, ...]:
        """Each key column, with the collation both sides order it by."""
        return tuple(
            quote_identifier(c) + collate
            for c, collate in zip(self.key_columns, self.key_collations, strict=True)
        )

    @property
    def order_by(self) -> str:
        """The ORDER BY list of key order."""
        return ", ".join(self.key_exprs)

    @property
    def key_text(self) -> str:
        """The select list of the key columns' text."""
        return ", ".join(f"{quote_identifier(c)}::text" for c in self.key_columns)

    def bound(self, key: Key, params: list[str]) -> str:
        """A row constructor for `key`, appending its values to `params`."""
        parts = []
        for value, column_type, collate in zip(
            key, self.key_types, self.key_collations, strict=True
        ):
            params.append(value)
            parts.append(f"${len(params)}::text::{column_type}{collate}")
        return f"({', '.join(parts)})" if len(parts) > 1 else parts[0]

    def where(self, key_range: KeyRange, params: list[str]) -> str:
        """WHERE condition selecting `key_range`, appending parameters to `params`."""
        key = f"({self.order_by})" if len(self.key_exprs) > 1 else self.key_exprs[0]
        conditions = []
        if key_range.low is not None:
            conditions.append(f"{key} >= {self.bound(key_range.low, params)}")
        if key_range.high is not None:
            conditions.append(f"{key} < {self.bound(key_range.high, params)}")
        return " AND ".join(conditions) or "TRUE"


async def table_columns(connection: asyncpg.Connection, table: TableName) -> list[Column]:
    """The table's columns in attribute order, with collation and primary key position."""
    rows = await connection.fetch(_COLUMNS, table.sql)
    return [Column(r["name"], r["type"], r["collation"], r["key_position"]) for r in rows]


def table_plan(
    table: TableName, source_columns: list[Column], target_columns: list[Column]
) -> TablePlan:
    """The SQL fragments for a table whose source and target primary keys are the same."""
    target_by_name = {c.name: c for c in target_columns}
    key = primary_key(source_columns)
    # Different collations order text differently; "C" keeps both sides' ranges identical.
    collations = tuple(
        ' COLLATE "C"'
        if c.collation is not None and c.collation != target_by_name[c.name].collation
        else ""
        for c in key
    )
    common = [c.name for c in source_columns if c.name in target_by_name]
    row = ", ".join(quote_identifier(name) for name in common)
    return TablePlan(
        table=table,
        key_columns=tuple(c.name for c in key),
        key_types=tuple(c.type for c in key),
        key_collations=collations,
        row_hash=f"md5(ROW({row})::text)",
    )


async def sample_boundaries(
    connection: asyncpg.Connection, plan: TablePlan, key_range: KeyRange, step: int
) -> list[Key]:
    """Every `step`-th key of `key_range` in key order (the first key excluded)."""
    params: list[Any] = []
    where = plan.where(key_range, params)
    params.append(step)
    aliases = [f"k{i}" for i in range(len(plan.key_columns))]
    key_text = ", ".join(
        f"{quote_identifier(column)}::text AS {alias}"
        for column, alias in zip(plan.key_columns, aliases, strict=True)
    )
    rows = await connection.fetch(
        f"SELECT {', '.join(aliases)} FROM ("
        f" SELECT {key_text}, row_number() OVER (ORDER BY {plan.order_by}) AS rn"
        f" FROM {plan.table.sql} WHERE {where}) AS numbered"
        f" WHERE rn % ${len(params)} = 1 AND rn > 1 ORDER BY rn",
        *params,
    )
    return [tuple(row) for row in rows]


async def hash_ranges(
    connection: asyncpg.Connection, plan: TablePlan, ranges: Sequence[KeyRange], per_query: int
) -> list[RangeHash]:
    """Row count and hash of each range, in order, `per_query` ranges per round trip."""
    hashes: list[RangeHash] = []
    for start in range(0, len(ranges), per_query):
        params: list[str] = []
        selects = [
            f"SELECT {index} AS i, count(*) AS n,"
            f" md5(string_agg({plan.row_hash}, '' ORDER BY {plan.order_by})) AS h"
            f" FROM {plan.table.sql} WHERE {plan.where(key_range, params)}"
            for index, key_range in enumerate(ranges[start : start + per_query])
        ]
        rows = await connection.fetch(" UNION ALL ".join(selects) + " ORDER BY i", *params)
        hashes.extend(RangeHash(row["n"], row["h"]) for row in rows)
    return hashes


async def row_hashes(
    connection: asyncpg.Connection, plan: TablePlan, key_range: KeyRange
) -> dict[Key, str]:
    """Each row's hash in `key_range`, by key."""
    params: list[str] = []
    rows = await connection.fetch(
        f"SELECT {plan.row_hash} AS h, {plan.key_text} FROM {plan.table.sql}"
        f" WHERE {plan.where(key_range, params)}",
        *params,
    )
    return {tuple(row[1:]): row["h"] for row in rows}


async def multiset_hash(
    connection: asyncpg.Connection, table: TableName, columns: Sequence[str]
) -> tuple[int, str | None]:
    """Row count and an order-independent hash of the whole table over `columns`."""
    row = ", ".join(quote_identifier(name) for name in columns)
    record = await connection.fetchrow(
        f"SELECT count(*) AS n, md5(string_agg(h, '' ORDER BY h)) AS h"
        f" FROM (SELECT md5(ROW({row})::text) AS h FROM {table.sql}) AS hashed"
    )
    assert record is not None  # an aggregate always returns one row
    return record["n"], record["h"]
