"""Transaction helpers shared by the use cases: keyset pages."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from shared.pagination import PageTokens

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a List and the token of the next one ("" on the last page)."""

    items: list[T]
    next_page_token: str


def page_of(
    tokens: PageTokens,
    rows: list[T],
    size: int,
    query: Sequence[Any],
    key_of: Callable[[T], Sequence[Any]],
) -> Page[T]:
    """The page of `rows` fetched with LIMIT size + 1 (one extra row shows a next page)."""
    if len(rows) <= size:
        return Page(rows, "")
    items = rows[:size]
    return Page(items, tokens.encode(query, key_of(items[-1])))
