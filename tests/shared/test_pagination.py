"""Page sizes, page tokens, pages and the keyset condition."""

import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from shared.errors import InvalidArgument
from shared.pagination import Page, PageTokens, keyset_after, page_of, page_size

TOKENS = PageTokens(b"secret")
QUERY = ["organizations/1", "ACTIVE"]


def test_page_size_defaults_clamps_and_rejects_negative() -> None:
    assert page_size(0) == 50
    assert page_size(7) == 7
    assert page_size(5000) == 1000
    with pytest.raises(InvalidArgument) as caught:
        page_size(-1)
    assert caught.value.violations[0].field == "page_size"


def test_token_round_trips_keyset_values_with_their_types() -> None:
    moment = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    token = TOKENS.encode(QUERY, [moment, "id-1"])
    assert TOKENS.decode(token, QUERY) == [moment, "id-1"]


def test_empty_token_means_first_page() -> None:
    assert TOKENS.decode("", QUERY) is None


@pytest.mark.parametrize(
    "mutate", [lambda t: t[:-2] + "AA", lambda t: "x" + t[1:], lambda t: t + "."]
)
def test_tampered_token_is_invalid_argument(mutate: object) -> None:
    token = TOKENS.encode(QUERY, [1, "a"])
    tampered = mutate(token)  # type: ignore[operator]
    assert tampered != token
    with pytest.raises(InvalidArgument) as caught:
        TOKENS.decode(tampered, QUERY)
    assert caught.value.violations[0].field == "page_token"


def test_token_from_another_query_is_refused() -> None:
    token = TOKENS.encode(QUERY, [1, "a"])
    with pytest.raises(InvalidArgument):
        TOKENS.decode(token, ["organizations/1", "FAILED"])


def test_token_signed_with_another_secret_is_refused() -> None:
    token = PageTokens(b"other").encode(QUERY, [1, "a"])
    with pytest.raises(InvalidArgument):
        TOKENS.decode(token, QUERY)


def test_a_page_with_a_row_beyond_it_carries_the_key_of_its_last_row() -> None:
    page = page_of(TOKENS, [10, 20, 30], 2, QUERY, lambda row: [row])
    assert page.items == [10, 20]
    assert TOKENS.decode(page.next_page_token, QUERY) == [20]


def test_the_last_page_has_no_next_token() -> None:
    assert page_of(TOKENS, [10, 20], 2, QUERY, lambda row: [row]) == Page([10, 20], "")


def test_keyset_condition_compares_the_row_of_sort_columns_with_the_last_key() -> None:
    assert keyset_after(("created_at", "id"), ["t", "i"], first_param=3) == (
        "(created_at, id) > ($3, $4)",
        ["t", "i"],
    )
    assert keyset_after(("seq",), [7], descending=True) == ("(seq) < ($1)", [7])


def test_first_page_has_no_keyset_condition() -> None:
    assert keyset_after(("created_at", "id"), None) == ("true", [])


def test_key_of_another_shape_is_a_malformed_token() -> None:
    with pytest.raises(InvalidArgument) as caught:
        keyset_after(("created_at", "id"), ["t"])
    assert caught.value.violations[0].field == "page_token"


async def _rows_table(conn: asyncpg.Connection) -> list[tuple[datetime, str]]:
    await conn.execute(
        "CREATE TABLE rows (grp text, created_at timestamptz, id uuid);"
        " CREATE INDEX rows_grp_created ON rows (grp, created_at, id);"
        " CREATE INDEX rows_newest_first ON rows (created_at DESC, id DESC)"
    )
    start = datetime(2026, 1, 1, tzinfo=UTC)
    # Ties on created_at: the id decides, as in every List.
    keys = sorted((start + timedelta(seconds=n // 3), str(uuid.uuid4())) for n in range(9))
    await conn.executemany("INSERT INTO rows VALUES ('a', $1, $2)", keys)
    await conn.execute("INSERT INTO rows VALUES ('b', $1, gen_random_uuid())", start)
    return keys


async def _pages(conn: asyncpg.Connection, *, descending: bool) -> list[tuple[datetime, str]]:
    order = "created_at DESC, id DESC" if descending else "created_at, id"
    seen: list[tuple[datetime, str]] = []
    after: list[Any] | None = None
    while True:
        keyset, args = keyset_after(
            ("created_at", "id"), after, first_param=2, descending=descending
        )
        rows = await conn.fetch(
            f"SELECT created_at, id::text FROM rows WHERE grp = $1 AND {keyset}"
            f" ORDER BY {order} LIMIT 2",
            "a",
            *args,
        )
        if not rows:
            return seen
        seen += [(row["created_at"], row["id"]) for row in rows]
        # As a page token returns it: the id as text.
        after = [rows[-1]["created_at"], rows[-1]["id"]]


async def test_keyset_pages_visit_every_row_once_in_order(
    make_database: Callable[[], Awaitable[str]],
) -> None:
    conn = await asyncpg.connect(await make_database())
    try:
        keys = await _rows_table(conn)
        forward = await _pages(conn, descending=False)
        backward = await _pages(conn, descending=True)
    finally:
        await conn.close()
    assert forward == keys
    assert backward == keys[::-1]


async def test_keyset_condition_starts_the_index_scan_at_the_key(
    make_database: Callable[[], Awaitable[str]],
) -> None:
    conn = await asyncpg.connect(await make_database())
    try:
        keys = await _rows_table(conn)
        await conn.execute("SET enable_seqscan = off")
        keyset, args = keyset_after(("created_at", "id"), list(keys[4]), first_param=2)
        plan = await conn.fetchval(
            f"EXPLAIN (FORMAT JSON) SELECT * FROM rows WHERE grp = $1 AND {keyset}"
            " ORDER BY created_at, id LIMIT 2",
            "a",
            *args,
        )
    finally:
        await conn.close()
    index_conditions = _index_conditions(json.loads(plan)[0]["Plan"])
    assert any(
        "grp = " in condition and "ROW(created_at, id) > ROW(" in condition
        for condition in index_conditions
    ), index_conditions


def _index_conditions(node: dict[str, Any]) -> list[str]:
    found = [node["Index Cond"]] if "Index Cond" in node else []
    for child in node.get("Plans", ()):
        found += _index_conditions(child)
    return found
