"""Page sizes, page tokens and pages."""

from datetime import UTC, datetime

import pytest

from shared.errors import InvalidArgument
from shared.pagination import Page, PageTokens, page_of, page_size

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
