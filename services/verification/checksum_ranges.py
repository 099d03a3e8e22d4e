"""What CHECKSUM bisects, in no database's terms: tables, primary keys, key ranges, hashes.

`checksum.py` decides which ranges to hash and split; each engine's SQL (`checksum_postgres.py`,
`checksum_mysql.py`, behind `dialects.py`) reads columns, samples boundaries and hashes ranges
in these terms.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# A primary key value: the text of each key column, in key order.
Key = tuple[str, ...]


def quote_identifier(identifier: str) -> str:
    """Quote a PostgreSQL identifier (doubling embedded quotes)."""
    return '"' + identifier.replace('"', '""') + '"'


@dataclass(frozen=True, order=True)
class TableName:
    """A schema-qualified table name, as the PostgreSQL target names it.

    A MySQL source's tables are named in the target's namespace (its database is the
    connection's), so the same table has the same name on both sides.
    """

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
        """The quoted, qualified name for use in PostgreSQL text."""
        return f"{quote_identifier(self.schema)}.{quote_identifier(self.name)}"

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}"


@dataclass(frozen=True)
class Column:
    """A table column as the catalog describes it; `key_position` 0 when not in the key."""

    name: str
    type: str  # without modifiers, so casting a bound never truncates it
    collation: str | None
    key_position: int


@dataclass(frozen=True)
class KeyRange:
    """Keys k with low <= k < high; None is unbounded."""

    low: Key | None
    high: Key | None


@dataclass(frozen=True)
class RangeHash:
    """A range's row count and digest (None when the range is empty)."""

    rows: int
    digest: str | None

    @classmethod
    def of_sum(cls, rows: int, total: object) -> RangeHash:
        """From the sum of `ROW_HASH_PREFIX` over the range's rows (NULL when empty).

        Both engines return the sum as an exact decimal; its integer text is the digest, so
        equal row sets give equal digests on either engine.
        """
        return cls(rows, None if total is None else str(int(str(total))))


# A range's hash is order-independent: the row count and the sum, over its rows, of the
# 60-bit number the first 15 hex digits of each row's md5 spell. Equal row sets hash equal
# whatever order an engine reads them in, and a sum is cheaper than hashing key-ordered
# concatenations of row hashes (one PostgreSQL core, 2,000,000 rows: 2.8 s instead of 5.4 s,
# issue 14). A changed row goes unnoticed only if its new md5 has the same 60-bit prefix
# (odds 2^-60); this guards against accidents, not against someone crafting rows to cancel
# out (nor did md5 chains). Leaves still fetch each row's full md5 and compare by key.
# (A second 60-bit part doubled the cost of a range on PostgreSQL: text to bit casts.)
ROW_HASH_PREFIX = 15


def primary_key(columns: Sequence[Column]) -> list[Column]:
    """The primary key's columns in key order (empty when the table has none)."""
    return sorted((c for c in columns if c.key_position), key=lambda c: c.key_position)


def ranges_between(key_range: KeyRange, boundaries: Sequence[Key]) -> list[KeyRange]:
    """`key_range` cut at `boundaries` (sorted keys inside it) into adjacent ranges."""
    edges: list[Key | None] = [key_range.low, *boundaries, key_range.high]
    return [KeyRange(edges[i], edges[i + 1]) for i in range(len(edges) - 1)]
