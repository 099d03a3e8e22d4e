"""The MySQL/MariaDB dialect of CHECKSUM and ROW_COUNT (a source compared with PostgreSQL).

The same ranges and hashes as `checksum_postgres.py`, in MySQL's SQL: a range's hash is its
row count and the sum of the 60-bit prefixes (`checksum_ranges.ROW_HASH_PREFIX`) of the rows'
`MD5` over the canonical text of `canonical_text.py` (`SUM(CONV(SUBSTR(…), 16, 10))`, in no
order), and keys are ordered, cut and bounded by their binary value (text keys as UTF-8 bytes:
`CAST(k AS BINARY)`), because MySQL's default collations fold case and accents and ignore
trailing spaces (PAD SPACE) while the target's "C" order does not. Rows are read in one
consistent-snapshot, read-only transaction on the connection's database; its tables are named
in the target's namespace.

Values are inlined as escaped literals (the driver's own escaping) rather than passed as
parameters, so the `%` of DATE_FORMAT patterns needs no doubling.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Sequence
from typing import Any

from services.verification import canonical_text
from services.verification.checksum_ranges import (
    ROW_HASH_PREFIX,
    Column,
    Key,
    KeyRange,
    RangeHash,
    TableName,
)
from services.verification.dialects import MYSQL, TableShape
from shared.mysql import execute, fetch_all, quote_mysql_identifier

# Session settings of a checking connection: room for a table's concatenated row hashes
# (`multiset_hash`, tables without a primary key).
SESSION = (
    "SET SESSION TRANSACTION READ ONLY",
    "SET SESSION group_concat_max_len = 1073741824",
)

_TABLES = """
SELECT TABLE_NAME FROM information_schema.TABLES
WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME
"""

_COLUMNS = """
SELECT c.COLUMN_NAME, LOWER(c.COLUMN_TYPE), c.COLLATION_NAME, COALESCE(s.SEQ_IN_INDEX, 0)
FROM information_schema.COLUMNS c
LEFT JOIN information_schema.STATISTICS s
  ON s.TABLE_SCHEMA = c.TABLE_SCHEMA AND s.TABLE_NAME = c.TABLE_NAME
 AND s.COLUMN_NAME = c.COLUMN_NAME AND s.INDEX_NAME = 'PRIMARY'
WHERE c.TABLE_SCHEMA = DATABASE() AND c.TABLE_NAME = {table}
ORDER BY c.ORDINAL_POSITION
"""

# MariaDB's JSON is a longtext checked by json_valid(`col`) (as capture_mysql.py reads it).
_JSON_CHECKS = """
SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS
WHERE CONSTRAINT_SCHEMA = DATABASE() AND TABLE_NAME = {table}
"""
_JSON_VALID = re.compile(r"^json_valid\(`((?:[^`]|``)+)`\)$", re.IGNORECASE)


class MySQLDialect:
    """A MySQL/MariaDB side: `Dialect` over one asyncmy connection (autocommit, UTC, `SESSION`).

    Its tables are named in `namespace`, the target schema that holds their translations.
    """

    engine = MYSQL

    def __init__(self, connection: Any, namespace: str) -> None:
        self.connection = connection
        self._namespace = namespace

    @contextlib.asynccontextmanager
    async def snapshot(self) -> AsyncIterator[None]:
        """One consistent-snapshot, read-only REPEATABLE READ transaction."""
        await execute(self.connection, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        await execute(self.connection, "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
        try:
            yield
        finally:
            await execute(self.connection, "COMMIT")

    async def list_tables(self) -> list[TableName]:
        """The base tables of the connection's database, named in the target's namespace."""
        rows = await fetch_all(self.connection, _TABLES)
        return [TableName(self._namespace, str(name)) for (name,) in rows]

    async def table_columns(self, table: TableName) -> list[Column]:
        """The columns in order: lower-case COLUMN_TYPE (MariaDB's JSON as `json`), key position."""
        name = self.literal(table.name)
        rows = await fetch_all(self.connection, _COLUMNS.format(table=name))
        checks = await fetch_all(self.connection, _JSON_CHECKS.format(table=name))
        json_columns = {
            match[1].replace("``", "`")
            for (clause,) in checks
            if (match := _JSON_VALID.match(str(clause).strip())) is not None
        }
        return [
            Column(
                str(column),
                "json" if column in json_columns else str(column_type),
                None if column in json_columns else collation,
                int(position),
            )
            for column, column_type, collation, position in rows
        ]

    async def count_rows(self, table: TableName) -> int:
        """The exact row count."""
        rows = await fetch_all(self.connection, f"SELECT COUNT(*) FROM {_table_sql(table)}")
        return int(rows[0][0])

    def reader(self, shape: TableShape, side: str) -> MySQLReader:
        """This side reading `shape`'s table (always against another engine)."""
        return MySQLReader(self, shape, side)

    def literal(self, value: str) -> str:
        """`value` as an escaped SQL string literal (the driver's escaping)."""
        return str(self.connection.literal(value))


def _table_sql(table: TableName) -> str:
    return quote_mysql_identifier(table.name)


class MySQLReader:
    """A MySQL side reading one table in canonical text (`TableReader`)."""

    def __init__(self, dialect: MySQLDialect, shape: TableShape, side: str) -> None:
        self._dialect = dialect
        self._connection = dialect.connection
        self._table = _table_sql(shape.table)
        own = {c.name: c for c in shape.columns_on(side)}
        key = [own[name] for name in shape.key if name in own]
        self._key_texts = [
            canonical_text.mysql_value(quote_mysql_identifier(c.name), c.type) for c in key
        ]
        self._key_orders = [_ordered(c) for c in key]
        self._key_bounds = [_bound(c) for c in key]
        values = [
            canonical_text.mysql_value(quote_mysql_identifier(name), own[name].type)
            for name in shape.common
        ]
        self._row_hash = f"MD5({canonical_text.mysql_row(values)})"

    @property
    def _order_by(self) -> str:
        return ", ".join(self._key_orders)

    def _bound(self, key: Key) -> str:
        parts = [
            template.format(self._dialect.literal(value))
            for value, template in zip(key, self._key_bounds, strict=True)
        ]
        return f"({', '.join(parts)})" if len(parts) > 1 else parts[0]

    def _where(self, key_range: KeyRange) -> str:
        key = f"({self._order_by})" if len(self._key_orders) > 1 else self._key_orders[0]
        conditions = []
        if key_range.low is not None:
            conditions.append(f"{key} >= {self._bound(key_range.low)}")
        if key_range.high is not None:
            conditions.append(f"{key} < {self._bound(key_range.high)}")
        return " AND ".join(conditions) or "TRUE"

    async def sample_boundaries(self, key_range: KeyRange, step: int) -> list[Key]:
        """Every `step`-th key of `key_range` in binary key order (the first key excluded)."""
        aliases = [f"k{i}" for i in range(len(self._key_texts))]
        selects = ", ".join(
            f"{text} AS {alias}" for text, alias in zip(self._key_texts, aliases, strict=True)
        )
        rows = await fetch_all(
            self._connection,
            f"SELECT {', '.join(aliases)} FROM ("
            f" SELECT {selects}, ROW_NUMBER() OVER (ORDER BY {self._order_by}) AS rn"
            f" FROM {self._table} WHERE {self._where(key_range)}) AS numbered"
            f" WHERE MOD(rn, {int(step)}) = 1 AND rn > 1 ORDER BY rn",
        )
        return [tuple(str(v) for v in row) for row in rows]

    async def hash_ranges(self, ranges: Sequence[KeyRange], per_query: int) -> list[RangeHash]:
        """Row count and hash of each range, in order, `per_query` ranges per round trip."""
        # SUM of an unsigned integer is an exact DECIMAL (CONV alone is text: SUM would be DOUBLE).
        total = f"SUM(CAST(CONV(SUBSTR(h, 1, {ROW_HASH_PREFIX}), 16, 10) AS UNSIGNED))"
        hashes: list[RangeHash] = []
        for start in range(0, len(ranges), per_query):
            selects = [
                f"SELECT {index} AS i, COUNT(*) AS n, {total} AS total"
                f" FROM (SELECT {self._row_hash} AS h FROM {self._table}"
                f" WHERE {self._where(key_range)}) AS r{index}"
                for index, key_range in enumerate(ranges[start : start + per_query])
            ]
            rows = await fetch_all(self._connection, " UNION ALL ".join(selects) + " ORDER BY i")
            hashes.extend(RangeHash.of_sum(int(n), total) for _, n, total in rows)
        return hashes

    async def row_hashes(self, key_range: KeyRange) -> dict[Key, str]:
        """Each row's hash in `key_range`, by key (its canonical text)."""
        rows = await fetch_all(
            self._connection,
            f"SELECT {self._row_hash}, {', '.join(self._key_texts)}"
            f" FROM {self._table} WHERE {self._where(key_range)}",
        )
        return {tuple(str(v) for v in row[1:]): str(row[0]) for row in rows}

    async def multiset_hash(self) -> tuple[int, str | None]:
        """Row count and an order-independent hash of the whole table (row hashes by bytes)."""
        rows = await fetch_all(
            self._connection,
            f"SELECT COUNT(*), MD5(GROUP_CONCAT(h ORDER BY CAST(h AS BINARY) SEPARATOR ''))"
            f" FROM (SELECT {self._row_hash} AS h FROM {self._table}) AS hashed",
        )
        count, digest = rows[0]
        return int(count), None if digest is None else str(digest)


def _ordered(column: Column) -> str:
    """A key column as it orders: text by its UTF-8 bytes (no case folding, no PAD SPACE)."""
    name = quote_mysql_identifier(column.name)
    if canonical_text.category(column.type) == "text":
        return f"CAST(CONVERT({name} USING utf8mb4) AS BINARY)"
    return name


def _bound(column: Column) -> str:
    """A template for a bound of `column` from its canonical text (a literal)."""
    kind = canonical_text.category(column.type)
    if kind == "integer":
        return "CAST({} AS UNSIGNED)" if "unsigned" in column.type else "CAST({} AS SIGNED)"
    if kind == "decimal":
        return "CAST({} AS DECIMAL(65, 30))"
    if kind == "text":
        return "CAST({} AS BINARY)"
    if kind == "binary":
        return "UNHEX({})"
    return "{}"
