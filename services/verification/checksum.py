"""CHECKSUM verification: compare table contents of two live databases.

For each table the primary-key space is cut into ranges of about `range_rows` rows (boundaries
sampled from the source in one index-ordered pass). Each range is hashed inside the database —
its row count and the sum of its rows' md5s' 60-bit prefixes, so equal row sets hash equal in
any order (`checksum_ranges.ROW_HASH_PREFIX`) — on both sides at once, many ranges per round
trip. A range whose count or hash differs is split again (boundaries sampled from the side with
more rows) until it is small enough to fetch (key, row md5) pairs and diff them, which yields the
keys missing in the target, extra in the target and changed. Only hashes and differing ranges'
keys cross the wire, never the table.

Both sides run in a REPEATABLE READ, read-only transaction per table with fixed output settings
(time zone, date style, float digits, bytea output) so that equal values have equal text.

This module is the range and bisection logic, in no database's terms; the SQL that reads
columns, samples boundaries and hashes ranges is each engine's, behind `dialects.py`
(`checksum_postgres.py`, `checksum_mysql.py`). A MySQL source and a PostgreSQL target hash the
canonical text of `canonical_text.py`, with keys in their binary order on both sides.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import asyncpg

from services.verification.checksum_postgres import as_dialect
from services.verification.checksum_ranges import (
    Key,
    KeyRange,
    RangeHash,
    TableName,
    primary_key,
    ranges_between,
)
from services.verification.dialects import Dialect, TableReader, TableShape
from services.verification.row_counts import ProgressCallback, tables_to_compare
from services.verification.table_results import PerTableResult

# Guards against pathological recursion; each level shrinks the larger side's row count.
_MAX_DEPTH = 64


class TableStatus(enum.StrEnum):
    """How one table compared."""

    MATCH = "MATCH"
    MISMATCH = "MISMATCH"
    NO_PRIMARY_KEY = "NO_PRIMARY_KEY"
    PRIMARY_KEY_MISMATCH = "PRIMARY_KEY_MISMATCH"
    MISSING_IN_TARGET = "MISSING_IN_TARGET"
    MISSING_IN_SOURCE = "MISSING_IN_SOURCE"


@dataclass(frozen=True)
class ChecksumOptions:
    """Tuning of the comparison."""

    # Rows per top-level range (sampled from the source).
    range_rows: int = 10_000
    # A mismatching range with at most this many rows on each side is fetched and diffed.
    leaf_rows: int = 1_000
    # Sub-ranges a larger mismatching range is split into.
    fan_out: int = 16
    # Most differing keys reported per table (missing + extra + changed); the rest is truncated.
    max_keys: int = 100
    # Ranges hashed per round trip.
    ranges_per_query: int = 64

    def __post_init__(self) -> None:
        if self.range_rows < 1 or self.leaf_rows < 1 or self.max_keys < 0:
            raise ValueError("range_rows and leaf_rows must be positive, max_keys not negative")
        if self.fan_out < 2 or self.ranges_per_query < 1:
            raise ValueError("fan_out must be at least 2 and ranges_per_query at least 1")


@dataclass(frozen=True)
class TableChecksum:
    """Outcome of comparing one table."""

    table: TableName
    status: TableStatus
    primary_key: tuple[str, ...] = ()
    source_rows: int | None = None
    target_rows: int | None = None
    ranges: int = 0
    mismatched_ranges: int = 0
    missing: tuple[Key, ...] = ()
    extra: tuple[Key, ...] = ()
    changed: tuple[Key, ...] = ()
    truncated: bool = False
    columns_only_in_source: tuple[str, ...] = ()
    columns_only_in_target: tuple[str, ...] = ()
    # For tables without a primary key: whether the row multisets are equal.
    content_matched: bool | None = None
    detail: str = ""

    @property
    def matched(self) -> bool:
        """The table's contents are equal on both sides."""
        if self.status is TableStatus.NO_PRIMARY_KEY:
            return bool(self.content_matched) and not self._columns_differ
        return self.status is TableStatus.MATCH

    @property
    def _columns_differ(self) -> bool:
        return bool(self.columns_only_in_source or self.columns_only_in_target)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form; keys are lists of the key columns' text values."""
        return {
            "table": str(self.table),
            "status": self.status.value,
            "matched": self.matched,
            "primary_key": list(self.primary_key),
            "source_rows": self.source_rows,
            "target_rows": self.target_rows,
            "ranges": self.ranges,
            "mismatched_ranges": self.mismatched_ranges,
            "missing_in_target": [list(key) for key in self.missing],
            "extra_in_target": [list(key) for key in self.extra],
            "changed": [list(key) for key in self.changed],
            "truncated": self.truncated,
            "columns_only_in_source": list(self.columns_only_in_source),
            "columns_only_in_target": list(self.columns_only_in_target),
            "content_matched": self.content_matched,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class ChecksumResult(PerTableResult[TableChecksum]):
    """CHECKSUM outcome: one check per table."""

    kind: ClassVar[str] = "CHECKSUM"


@dataclass
class _Findings:
    """Mutable accumulator of one table's differences while bisecting."""

    limit: int
    missing: list[Key] = field(default_factory=list)
    extra: list[Key] = field(default_factory=list)
    changed: list[Key] = field(default_factory=list)
    truncated: bool = False

    @property
    def full(self) -> bool:
        return len(self.missing) + len(self.extra) + len(self.changed) >= self.limit

    def add(self, bucket: list[Key], key: Key) -> None:
        if self.full:
            self.truncated = True
        else:
            bucket.append(key)


@dataclass(frozen=True)
class _Sides:
    source: Dialect
    target: Dialect
    options: ChecksumOptions


@dataclass(frozen=True)
class _Readers:
    """Both sides reading one table."""

    source: TableReader
    target: TableReader
    options: ChecksumOptions


async def _hash_both(
    sides: _Readers, ranges: Sequence[KeyRange]
) -> tuple[list[RangeHash], list[RangeHash]]:
    per_query = sides.options.ranges_per_query
    source, target = await asyncio.gather(
        sides.source.hash_ranges(ranges, per_query),
        sides.target.hash_ranges(ranges, per_query),
    )
    return source, target


async def _bisect(
    sides: _Readers,
    key_range: KeyRange,
    counts: tuple[int, int],
    findings: _Findings,
    *,
    depth: int = 0,
) -> None:
    source_rows, target_rows = counts
    if findings.full:
        findings.truncated = True
        return
    options = sides.options
    if max(source_rows, target_rows) <= options.leaf_rows or depth >= _MAX_DEPTH:
        source, target = await asyncio.gather(
            sides.source.row_hashes(key_range), sides.target.row_hashes(key_range)
        )
        for key in sorted(source.keys() - target.keys()):
            findings.add(findings.missing, key)
        for key in sorted(target.keys() - source.keys()):
            findings.add(findings.extra, key)
        for key in sorted(k for k in source.keys() & target.keys() if source[k] != target[k]):
            findings.add(findings.changed, key)
        return
    larger = sides.source if source_rows >= target_rows else sides.target
    step = -(-max(source_rows, target_rows) // options.fan_out)
    boundaries = await larger.sample_boundaries(key_range, step)
    sub_ranges = ranges_between(key_range, boundaries)
    source_hashes, target_hashes = await _hash_both(sides, sub_ranges)
    for sub_range, ours, theirs in zip(sub_ranges, source_hashes, target_hashes, strict=True):
        if ours != theirs:
            await _bisect(sides, sub_range, (ours.rows, theirs.rows), findings, depth=depth + 1)


async def _compare_table(sides: _Sides, table: TableName) -> TableChecksum:
    source_columns, target_columns = await asyncio.gather(
        sides.source.table_columns(table), sides.target.table_columns(table)
    )
    shape = TableShape(
        table,
        sides.source.engine,
        sides.target.engine,
        tuple(source_columns),
        tuple(target_columns),
    )
    readers = _Readers(
        sides.source.reader(shape, "source"), sides.target.reader(shape, "target"), sides.options
    )
    source_names = [c.name for c in source_columns]
    target_names = [c.name for c in target_columns]
    only_source = tuple(n for n in source_names if n not in target_names)
    only_target = tuple(n for n in target_names if n not in source_names)
    source_key = tuple(c.name for c in primary_key(source_columns))
    target_key = tuple(c.name for c in primary_key(target_columns))
    if not source_key or not target_key:
        (source_rows, source_hash), (target_rows, target_hash) = await asyncio.gather(
            readers.source.multiset_hash(), readers.target.multiset_hash()
        )
        missing_on = " and ".join(
            side for side, key in (("source", source_key), ("target", target_key)) if not key
        )
        return TableChecksum(
            table=table,
            status=TableStatus.NO_PRIMARY_KEY,
            primary_key=source_key or target_key,
            source_rows=source_rows,
            target_rows=target_rows,
            columns_only_in_source=only_source,
            columns_only_in_target=only_target,
            content_matched=source_rows == target_rows and source_hash == target_hash,
            detail=f"no primary key on the {missing_on}; compared whole-table row multisets",
        )
    if source_key != target_key:
        return TableChecksum(
            table=table,
            status=TableStatus.PRIMARY_KEY_MISMATCH,
            primary_key=source_key,
            columns_only_in_source=only_source,
            columns_only_in_target=only_target,
            detail=f"primary key ({', '.join(source_key)}) on the source,"
            f" ({', '.join(target_key)}) on the target",
        )
    whole = KeyRange(None, None)
    boundaries = await readers.source.sample_boundaries(whole, sides.options.range_rows)
    ranges = ranges_between(whole, boundaries)
    source_hashes, target_hashes = await _hash_both(readers, ranges)
    findings = _Findings(limit=sides.options.max_keys)
    mismatched = 0
    for key_range, ours, theirs in zip(ranges, source_hashes, target_hashes, strict=True):
        if ours != theirs:
            mismatched += 1
            await _bisect(readers, key_range, (ours.rows, theirs.rows), findings)
    contents_equal = mismatched == 0
    return TableChecksum(
        table=table,
        status=(
            TableStatus.MATCH
            if contents_equal and not only_source and not only_target
            else TableStatus.MISMATCH
        ),
        primary_key=source_key,
        source_rows=sum(h.rows for h in source_hashes),
        target_rows=sum(h.rows for h in target_hashes),
        ranges=len(ranges),
        mismatched_ranges=mismatched,
        missing=tuple(findings.missing),
        extra=tuple(findings.extra),
        changed=tuple(findings.changed),
        truncated=findings.truncated,
        columns_only_in_source=only_source,
        columns_only_in_target=only_target,
        detail="" if not (only_source or only_target) else "column sets differ",
    )


async def compare_table(
    source: Dialect | asyncpg.Connection,
    target: Dialect | asyncpg.Connection,
    table: TableName,
    options: ChecksumOptions | None = None,
) -> TableChecksum:
    """Compare one table present on both sides, each side in one read-only snapshot.

    The connections must not be inside a transaction; an asyncpg connection is a PostgreSQL side.
    """
    sides = _Sides(as_dialect(source), as_dialect(target), options or ChecksumOptions())
    async with sides.source.snapshot(), sides.target.snapshot():
        return await _compare_table(sides, table)


async def compare_checksums(
    source: Dialect | asyncpg.Connection,
    target: Dialect | asyncpg.Connection,
    tables: Sequence[str] | None = None,
    options: ChecksumOptions | None = None,
    progress: ProgressCallback | None = None,
) -> ChecksumResult:
    """Compare the contents of `tables` (default: every table of either side).

    Tables missing on one side are reported as MISSING_IN_TARGET / MISSING_IN_SOURCE, tables
    without a primary key as NO_PRIMARY_KEY (with a whole-table comparison). `progress` is awaited
    with (tables_done, tables_total) before the first and after every table.
    """
    source, target = as_dialect(source), as_dialect(target)
    chosen, on_source, on_target = await tables_to_compare(source, target, tables)
    results: list[TableChecksum] = []
    if progress is not None:
        await progress(0, len(chosen))
    for done, table in enumerate(chosen, start=1):
        if table in on_source and table in on_target:
            results.append(await compare_table(source, target, table, options))
        elif table in on_source:
            results.append(
                TableChecksum(table, TableStatus.MISSING_IN_TARGET, detail="not on the target")
            )
        else:
            detail = "not on the source" if table in on_target else "on neither side"
            results.append(TableChecksum(table, TableStatus.MISSING_IN_SOURCE, detail=detail))
        if progress is not None:
            await progress(done, len(chosen))
    return ChecksumResult(tuple(results))
