"""What CHECKSUM bisects, in no database's terms: primary keys, key ranges and range hashes.

`checksum.py` decides which ranges to hash and split; a database's SQL (`checksum_postgres.py`)
reads columns, samples boundaries and hashes ranges in these terms.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# A primary key value: the text of each key column, in key order.
Key = tuple[str, ...]


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


def primary_key(columns: Sequence[Column]) -> list[Column]:
    """The primary key's columns in key order (empty when the table has none)."""
    return sorted((c for c in columns if c.key_position), key=lambda c: c.key_position)


def ranges_between(key_range: KeyRange, boundaries: Sequence[Key]) -> list[KeyRange]:
    """`key_range` cut at `boundaries` (sorted keys inside it) into adjacent ranges."""
    edges: list[Key | None] = [key_range.low, *boundaries, key_range.high]
    return [KeyRange(edges[i], edges[i + 1]) for i in range(len(edges) - 1)]
