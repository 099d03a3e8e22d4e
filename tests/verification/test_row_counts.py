"""ROW_COUNT: exact per-table counts on two live databases."""

from __future__ import annotations

import asyncpg

from services.verification.row_counts import TableName, compare_row_counts
from tests.verification.conftest import run_on_both

Pair = tuple[asyncpg.Connection, asyncpg.Connection]


async def test_equal_counts_match(source_and_target: Pair) -> None:
    source, target = source_and_target
    await run_on_both(
        source,
        target,
        "CREATE TABLE items (id int PRIMARY KEY);"
        " INSERT INTO items SELECT generate_series(1, 1234)",
    )
    result = await compare_row_counts(source, target)
    assert [t.to_dict() for t in result.tables] == [
        {"table": "public.items", "source_rows": 1234, "target_rows": 1234, "matched": True}
    ]
    assert result.score == 1.0


async def test_different_counts_do_not_match(source_and_target: Pair) -> None:
    source, target = source_and_target
    await run_on_both(source, target, "CREATE TABLE items (id int PRIMARY KEY)")
    await source.execute("INSERT INTO items SELECT generate_series(1, 10)")
    await target.execute("INSERT INTO items SELECT generate_series(1, 9)")
    result = await compare_row_counts(source, target)
    assert (result.tables[0].source_rows, result.tables[0].target_rows) == (10, 9)
    assert not result.tables[0].matched
    assert result.score == 0.0


async def test_table_missing_on_the_target_has_no_target_count(source_and_target: Pair) -> None:
    source, target = source_and_target
    await run_on_both(source, target, "CREATE TABLE kept (id int)")
    await source.execute("CREATE TABLE dropped (id int); INSERT INTO dropped VALUES (1)")
    result = await compare_row_counts(source, target)
    by_table = {str(t.table): t for t in result.tables}
    assert by_table["public.dropped"].target_rows is None
    assert by_table["public.dropped"].source_rows == 1
    assert result.checks_passed == 1 and result.checks_total == 2


async def test_only_the_requested_tables_are_counted(source_and_target: Pair) -> None:
    source, target = source_and_target
    await run_on_both(
        source, target, "CREATE SCHEMA app; CREATE TABLE app.a (id int); CREATE TABLE b (id int)"
    )
    result = await compare_row_counts(source, target, tables=["app.a"])
    assert [t.table for t in result.tables] == [TableName("app", "a")]


async def test_progress_is_reported_per_table(source_and_target: Pair) -> None:
    source, target = source_and_target
    await run_on_both(source, target, "CREATE TABLE a (id int); CREATE TABLE b (id int)")
    seen: list[tuple[int, int]] = []

    async def record(done: int, total: int) -> None:
        seen.append((done, total))

    await compare_row_counts(source, target, progress=record)
    assert seen == [(0, 2), (1, 2), (2, 2)]


def test_unqualified_table_names_are_in_schema_public() -> None:
    assert TableName.parse("orders") == TableName("public", "orders")
