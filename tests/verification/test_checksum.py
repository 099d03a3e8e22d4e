"""CHECKSUM: range hashing and bisection on two live databases."""

from __future__ import annotations

import asyncpg
import pytest

from services.verification.checksum import (
    ChecksumOptions,
    TableStatus,
    compare_checksums,
)
from tests.verification.conftest import run_on_both

Pair = tuple[asyncpg.Connection, asyncpg.Connection]

ORDERS = """
CREATE TABLE orders (
    id bigint PRIMARY KEY,
    customer text NOT NULL,
    amount numeric(12, 2),
    placed timestamptz NOT NULL,
    note text
);
INSERT INTO orders
SELECT i, 'customer-' || (i % 997), (i % 10000) / 100.0,
       timestamptz '2024-01-01 00:00:00+00' + i * interval '1 minute',
       CASE WHEN i % 7 = 0 THEN NULL ELSE md5(i::text) END
FROM generate_series(1, 100000) AS i;
"""


async def test_identical_tables_match(source_and_target: Pair) -> None:
    source, target = source_and_target
    await run_on_both(source, target, ORDERS)
    result = await compare_checksums(source, target)
    table = result.tables[0]
    assert table.status is TableStatus.MATCH
    assert (table.source_rows, table.target_rows) == (100_000, 100_000)
    assert table.ranges == 10
    assert result.score == 1.0


async def test_changed_missing_and_extra_rows_are_reported_by_key(source_and_target: Pair) -> None:
    source, target = source_and_target
    await run_on_both(source, target, ORDERS)
    await target.execute("UPDATE orders SET note = 'edited' WHERE id = 45678")
    await target.execute("DELETE FROM orders WHERE id = 777")
    await target.execute(
        "INSERT INTO orders VALUES (100001, 'new', 1.00, '2025-01-01 00:00:00+00', NULL)"
    )
    table = (await compare_checksums(source, target)).tables[0]
    assert table.status is TableStatus.MISMATCH
    assert table.changed == (("45678",),)
    assert table.missing == (("777",),)
    assert table.extra == (("100001",),)
    assert not table.truncated


async def test_a_changed_row_inside_a_large_range_is_found(source_and_target: Pair) -> None:
    # One range of 100,000 rows: a one-cent change must still move its order-free sum.
    source, target = source_and_target
    await run_on_both(source, target, ORDERS)
    await target.execute("UPDATE orders SET amount = amount + 0.01 WHERE id = 61803")
    options = ChecksumOptions(range_rows=100_000)
    table = (await compare_checksums(source, target, options=options)).tables[0]
    assert (table.ranges, table.mismatched_ranges) == (1, 1)
    assert table.changed == (("61803",),)
    assert (table.missing, table.extra) == ((), ())


async def test_values_swapped_between_two_rows_are_two_changes(source_and_target: Pair) -> None:
    # The same multiset of values, on other keys: each row's hash covers its key.
    source, target = source_and_target
    await run_on_both(source, target, ORDERS)
    await target.execute(
        "UPDATE orders SET note = CASE id WHEN 500 THEN (SELECT note FROM orders WHERE id = 501)"
        " ELSE (SELECT note FROM orders WHERE id = 500) END WHERE id IN (500, 501)"
    )
    table = (await compare_checksums(source, target)).tables[0]
    assert table.changed == (("500",), ("501",))


async def test_rows_stored_in_another_order_match(source_and_target: Pair) -> None:
    source, target = source_and_target
    await run_on_both(source, target, "CREATE TABLE t (id int PRIMARY KEY, v text)")
    await source.execute("INSERT INTO t SELECT i, md5(i::text) FROM generate_series(1, 5000) i")
    await target.execute("INSERT INTO t SELECT i, md5(i::text) FROM generate_series(5000, 1, -1) i")
    table = (await compare_checksums(source, target)).tables[0]
    assert table.status is TableStatus.MATCH


async def test_a_null_turned_empty_string_is_a_change(source_and_target: Pair) -> None:
    source, target = source_and_target
    await run_on_both(
        source,
        target,
        "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, NULL)",
    )
    await target.execute("UPDATE t SET v = '' WHERE id = 1")
    table = (await compare_checksums(source, target)).tables[0]
    assert table.changed == (("1",),)


async def test_composite_primary_key_differences_are_reported_as_key_tuples(
    source_and_target: Pair,
) -> None:
    source, target = source_and_target
    await run_on_both(
        source,
        target,
        "CREATE TABLE stock (warehouse int, sku text, quantity int,"
        " PRIMARY KEY (warehouse, sku));"
        " INSERT INTO stock SELECT w, 'sku-' || s, w * s"
        " FROM generate_series(1, 20) w, generate_series(1, 2000) s",
    )
    await target.execute("UPDATE stock SET quantity = -1 WHERE warehouse = 7 AND sku = 'sku-1234'")
    await target.execute("DELETE FROM stock WHERE warehouse = 19 AND sku = 'sku-5'")
    table = (await compare_checksums(source, target)).tables[0]
    assert table.primary_key == ("warehouse", "sku")
    assert table.changed == (("7", "sku-1234"),)
    assert table.missing == (("19", "sku-5"),)
    assert table.extra == ()


async def test_table_without_primary_key_is_reported(source_and_target: Pair) -> None:
    source, target = source_and_target
    await run_on_both(
        source, target, "CREATE TABLE log (line text); INSERT INTO log VALUES ('a'), ('b')"
    )
    table = (await compare_checksums(source, target)).tables[0]
    assert table.status is TableStatus.NO_PRIMARY_KEY
    assert table.content_matched is True
    assert "no primary key" in table.detail


async def test_table_without_primary_key_with_different_rows_does_not_match(
    source_and_target: Pair,
) -> None:
    source, target = source_and_target
    await run_on_both(source, target, "CREATE TABLE log (line text); INSERT INTO log VALUES ('a')")
    await target.execute("INSERT INTO log VALUES ('a')")
    result = await compare_checksums(source, target)
    assert result.tables[0].content_matched is False
    assert result.score == 0.0


async def test_differing_keys_are_capped(source_and_target: Pair) -> None:
    source, target = source_and_target
    await run_on_both(
        source,
        target,
        "CREATE TABLE t (id int PRIMARY KEY, v int);"
        " INSERT INTO t SELECT i, i FROM generate_series(1, 5000) i",
    )
    await target.execute("UPDATE t SET v = -v WHERE id % 100 = 0")
    options = ChecksumOptions(range_rows=1000, leaf_rows=50, max_keys=5)
    table = (await compare_checksums(source, target, options=options)).tables[0]
    assert len(table.changed) == 5
    assert table.truncated


async def test_table_missing_on_the_target_is_reported(source_and_target: Pair) -> None:
    source, target = source_and_target
    await source.execute("CREATE TABLE gone (id int PRIMARY KEY)")
    table = (await compare_checksums(source, target)).tables[0]
    assert table.status is TableStatus.MISSING_IN_TARGET
    assert not table.matched


async def test_different_primary_keys_are_reported(source_and_target: Pair) -> None:
    source, target = source_and_target
    await source.execute("CREATE TABLE t (a int PRIMARY KEY, b int)")
    await target.execute("CREATE TABLE t (a int, b int PRIMARY KEY)")
    table = (await compare_checksums(source, target)).tables[0]
    assert table.status is TableStatus.PRIMARY_KEY_MISMATCH


async def test_extra_column_on_the_target_is_a_mismatch(source_and_target: Pair) -> None:
    source, target = source_and_target
    await source.execute("CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t VALUES (1, 1)")
    await target.execute(
        "CREATE TABLE t (id int PRIMARY KEY, v int, w int); INSERT INTO t VALUES (1, 1, 9)"
    )
    table = (await compare_checksums(source, target)).tables[0]
    assert table.status is TableStatus.MISMATCH
    assert table.columns_only_in_target == ("w",)
    assert table.changed == ()


async def test_rows_clustered_between_two_source_keys_are_found(source_and_target: Pair) -> None:
    source, target = source_and_target
    await run_on_both(
        source,
        target,
        "CREATE TABLE t (id numeric PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 3000)",
    )
    await target.execute("INSERT INTO t SELECT 1500 + i / 10000.0 FROM generate_series(1, 2000) i")
    options = ChecksumOptions(range_rows=1000, leaf_rows=100, max_keys=5000)
    table = (await compare_checksums(source, target, options=options)).tables[0]
    assert len(table.extra) == 2000
    assert table.missing == () and table.changed == ()


async def test_text_keys_under_different_collations_compare_equal(source_and_target: Pair) -> None:
    source, target = source_and_target
    rows = (
        "INSERT INTO t SELECT chr(CASE WHEN i % 2 = 0 THEN 65 ELSE 97 END + i % 26) || i"
        " FROM generate_series(0, 2000) i"
    )
    await source.execute(f'CREATE TABLE t (k text COLLATE "C" PRIMARY KEY); {rows}')
    # ICU orders case-insensitively first ("a" < "B"), "C" by byte ("B" < "a").
    icu = await target.fetchval(
        "SELECT collname FROM pg_collation WHERE collprovider = 'i' ORDER BY collname LIMIT 1"
    )
    try:
        await target.execute(f'CREATE TABLE t (k text COLLATE "{icu}" PRIMARY KEY); {rows}')
    except asyncpg.FeatureNotSupportedError:
        pytest.skip("the server is built without ICU")
    options = ChecksumOptions(range_rows=100, leaf_rows=10)
    table = (await compare_checksums(source, target, options=options)).tables[0]
    assert table.status is TableStatus.MATCH


async def test_progress_is_reported_per_table(source_and_target: Pair) -> None:
    source, target = source_and_target
    await run_on_both(
        source, target, "CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int)"
    )
    seen: list[tuple[int, int]] = []

    async def record(done: int, total: int) -> None:
        seen.append((done, total))

    await compare_checksums(source, target, progress=record)
    assert seen == [(0, 2), (1, 2), (2, 2)]


async def test_result_is_json_able(source_and_target: Pair) -> None:
    source, target = source_and_target
    await run_on_both(
        source, target, "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)"
    )
    await target.execute("DELETE FROM t")
    result = (await compare_checksums(source, target)).to_dict()
    assert result["tables"][0]["missing_in_target"] == [["1"]]
    assert result["checks_passed"] == 0
