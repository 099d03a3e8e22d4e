"""The PostgreSQL dialect of CHECKSUM and ROW_COUNT: lists, counts, samples and hashes ranges.

`checksum.py` decides which ranges to hash, split or fetch; this module says how, in PostgreSQL:
a range's hash is its row count and the sum of its rows' md5s' 60-bit prefixes (order does
not matter: `checksum_ranges.ROW_HASH_PREFIX`), many ranges per round trip, and the snapshot is
read-only with fixed output settings. Between two PostgreSQL databases a
row's text is `ROW(...)::text`; against a MySQL source it is the canonical text of
`canonical_text.py`, keys in their binary order (`COLLATE "C"`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from services.verification import canonical_text
from services.verification.checksum_ranges import (
    ROW_HASH_PREFIX,
    Column,
    Key,
    KeyRange,
    RangeHash,
    TableName,
    primary_key,
    quote_identifier,
)
from services.verification.dialects import POSTGRESQL, Dialect, TableShape

_USER_TABLES = """
SELECT n.nspname, c.relname
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p')
  AND NOT c.relispartition
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_toast%'
  AND n.nspname NOT LIKE 'pg\\_temp\\_%'
  AND ($1::text IS NULL OR n.nspname = $1)
ORDER BY n.nspname, c.relname
"""

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
    """SQL fragments for one table on one PostgreSQL side."""

    table: TableName
    key_columns: tuple[str, ...]
    key_types: tuple[str, ...]
    key_collations: tuple[str, ...]
    row_hash: str
    # The text of each key column as a select expression (`"id"::text` between PostgreSQL).
    key_selects: tuple[str, ...] = ()
    # Each key column's bound as a template for its `$n` parameter.
    key_bounds: tuple[str, ...] = ()

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
        return ", ".join(self.key_texts)

    @property
    def key_texts(self) -> tuple[str, ...]:
        """Each key column's text as a select expression."""
        return self.key_selects or tuple(f"{quote_identifier(c)}::text" for c in self.key_columns)

    def bound(self, key: Key, params: list[str]) -> str:
        """A row constructor for `key`, appending its values to `params`."""
        templates = self.key_bounds or tuple(
            f"{{}}::text::{column_type}{collate}"
            for column_type, collate in zip(self.key_types, self.key_collations, strict=True)
        )
        parts = []
        for value, template in zip(key, templates, strict=True):
            params.append(value)
            parts.append(template.format(f"${len(params)}"))
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


def canonical_plan(shape: TableShape, side: str) -> TablePlan:
    """The SQL fragments of a PostgreSQL side compared with a MySQL one (canonical text)."""
    own = {c.name: c for c in shape.columns_on(side)}
    mysql_types = shape.mysql_types()

    def text(name: str) -> str:
        return canonical_text.postgres_value(
            quote_identifier(name), mysql_types[name], own[name].type
        )

    # Without a primary key on both sides (a whole-table comparison) the key is unused.
    key = [own[name] for name in shape.key if name in own]
    # Text keys order by their UTF-8 bytes, as the MySQL side orders them.
    collations = tuple(' COLLATE "C"' if c.collation is not None else "" for c in key)
    bounds = tuple(
        "decode({}, 'hex')"
        if canonical_text.category(mysql_types[c.name]) == "binary"
        else f"{{}}::text::{c.type}{collate}"
        for c, collate in zip(key, collations, strict=True)
    )
    row = canonical_text.postgres_row([text(name) for name in shape.common])
    return TablePlan(
        table=shape.table,
        key_columns=tuple(c.name for c in key),
        key_types=tuple(c.type for c in key),
        key_collations=collations,
        row_hash=f"md5({row})",
        key_selects=tuple(text(c.name) for c in key),
        key_bounds=bounds,
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
        f"{select} AS {alias}" for select, alias in zip(plan.key_texts, aliases, strict=True)
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
    total = f"sum(('x' || substr(h, 1, {ROW_HASH_PREFIX}))::bit({4 * ROW_HASH_PREFIX})::bigint)"
    hashes: list[RangeHash] = []
    for start in range(0, len(ranges), per_query):
        params: list[str] = []
        selects = [
            f"SELECT {index} AS i, count(*) AS n, {total} AS total"
            f" FROM (SELECT {plan.row_hash} AS h FROM {plan.table.sql}"
            f" WHERE {plan.where(key_range, params)}) AS r{index}"
            for index, key_range in enumerate(ranges[start : start + per_query])
        ]
        rows = await connection.fetch(" UNION ALL ".join(selects) + " ORDER BY i", *params)
        hashes.extend(RangeHash.of_sum(row["n"], row["total"]) for row in rows)
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
    connection: asyncpg.Connection,
    table: TableName,
    columns: Sequence[str],
    row_hash: str | None = None,
) -> tuple[int, str | None]:
    """Row count and an order-independent hash of the whole table over `columns`.

    `row_hash` (canonical text, across engines) replaces `md5(ROW(columns)::text)`; the row
    hashes are then ordered by their bytes, as the other engine orders them.
    """
    if row_hash is None:
        row = ", ".join(quote_identifier(name) for name in columns)
        row_hash, order = f"md5(ROW({row})::text)", "h"
    else:
        order = 'h COLLATE "C"'
    record = await connection.fetchrow(
        f"SELECT count(*) AS n, md5(string_agg(h, '' ORDER BY {order})) AS h"
        f" FROM (SELECT {row_hash} AS h FROM {table.sql}) AS hashed"
    )
    assert record is not None  # an aggregate always returns one row
    return record["n"], record["h"]


class PostgresDialect:
    """A PostgreSQL side: `Dialect` over one asyncpg connection (not inside a transaction).

    `namespace` limits the tables to one schema (the target of a MySQL source: its tables
    live there); None lists every schema's.
    """

    engine = POSTGRESQL

    def __init__(self, connection: asyncpg.Connection, namespace: str | None = None) -> None:
        self.connection = connection
        self._namespace = namespace

    @contextlib.asynccontextmanager
    async def snapshot(self) -> AsyncIterator[None]:
        """One read-only REPEATABLE READ transaction with the fixed output settings."""
        async with self.connection.transaction(isolation="repeatable_read", readonly=True):
            for setting in _SESSION_SETTINGS:
                await self.connection.execute(setting)
            yield

    async def list_tables(self) -> list[TableName]:
        """Every user table (ordinary or partitioned, partitions excluded)."""
        rows = await self.connection.fetch(_USER_TABLES, self._namespace)
        return [TableName(row["nspname"], row["relname"]) for row in rows]

    async def table_columns(self, table: TableName) -> list[Column]:
        """The table's columns in attribute order, with collation and primary key position."""
        return await table_columns(self.connection, table)

    async def count_rows(self, table: TableName) -> int:
        """The exact row count."""
        count: int = await self.connection.fetchval(f"SELECT count(*) FROM {table.sql}")
        return count

    def reader(self, shape: TableShape, side: str) -> PostgresReader:
        """This side reading `shape`'s table."""
        if shape.across_engines:
            return PostgresReader(self.connection, canonical_plan(shape, side), shape, True)
        source, target = list(shape.source_columns), list(shape.target_columns)
        plan = table_plan(shape.table, source, target)
        return PostgresReader(self.connection, plan, shape, False)


class PostgresReader:
    """A PostgreSQL side reading one table (`TableReader`)."""

    def __init__(
        self, connection: asyncpg.Connection, plan: TablePlan, shape: TableShape, canonical: bool
    ) -> None:
        self._connection = connection
        self._plan = plan
        self._shape = shape
        self._canonical = canonical

    async def sample_boundaries(self, key_range: KeyRange, step: int) -> list[Key]:
        """Every `step`-th key of `key_range` in key order (the first key excluded)."""
        return await sample_boundaries(self._connection, self._plan, key_range, step)

    async def hash_ranges(self, ranges: Sequence[KeyRange], per_query: int) -> list[RangeHash]:
        """Row count and hash of each range, in order."""
        return await hash_ranges(self._connection, self._plan, ranges, per_query)

    async def row_hashes(self, key_range: KeyRange) -> dict[Key, str]:
        """Each row's hash in `key_range`, by key."""
        return await row_hashes(self._connection, self._plan, key_range)

    async def multiset_hash(self) -> tuple[int, str | None]:
        """Row count and an order-independent hash of the whole table."""
        row_hash = self._plan.row_hash if self._canonical else None
        return await multiset_hash(
            self._connection, self._shape.table, self._shape.common, row_hash
        )


def as_dialect(side: Dialect | asyncpg.Connection) -> Dialect:
    """A Dialect as it is; an asyncpg connection as a PostgreSQL side over every schema."""
    if isinstance(side, asyncpg.Connection):
        return PostgresDialect(side)
    return side
