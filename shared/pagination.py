"""Keyset pagination: page sizes, opaque tamper-evident page tokens, pages, and the SQL
condition that starts a page.

A token carries the sort key of the last row returned and a digest of the query it
belongs to (parent and filters), signed with HMAC-SHA256. A token that was altered, or
reused with other filters, is INVALID_ARGUMENT. Cost stays flat with depth because the
next page starts `WHERE (sort key) > (last key)` (`keyset_after`) on an index.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from shared.errors import InvalidArgument

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


def page_size(requested: int, field_name: str = "page_size") -> int:
    """0 → 50; negative → INVALID_ARGUMENT; above 1000 → 1000."""
    if requested < 0:
        raise InvalidArgument.single(field_name, "must not be negative")
    if requested == 0:
        return DEFAULT_PAGE_SIZE
    return min(requested, MAX_PAGE_SIZE)


@dataclass(frozen=True)
class PageTokens:
    """Encodes and checks page tokens with one secret."""

    secret: bytes

    def encode(self, query: Sequence[Any], last_key: Sequence[Any]) -> str:
        """A token for the page after the row whose sort key is `last_key`."""
        body = json.dumps(
            {"q": _query_digest(query), "k": [_encode_value(v) for v in last_key]},
            separators=(",", ":"),
        ).encode()
        mac = hmac.new(self.secret, body, hashlib.sha256).digest()[:16]
        return _b64(body) + "." + _b64(mac)

    def decode(
        self, token: str, query: Sequence[Any], field_name: str = "page_token"
    ) -> list[Any] | None:
        """The last key of a token, or None for an empty token (first page)."""
        if not token:
            return None
        try:
            body_part, mac_part = token.split(".")
            body, mac = _unb64(body_part), _unb64(mac_part)
        except (ValueError, binascii.Error):
            raise InvalidArgument.single(field_name, "malformed page token") from None
        expected = hmac.new(self.secret, body, hashlib.sha256).digest()[:16]
        if not hmac.compare_digest(mac, expected):
            raise InvalidArgument.single(field_name, "page token was altered or is not ours")
        payload = json.loads(body)
        if payload.get("q") != _query_digest(query):
            raise InvalidArgument.single(
                field_name, "page token belongs to a different query (parent or filters changed)"
            )
        key = payload.get("k")
        if not isinstance(key, list):
            raise InvalidArgument.single(field_name, "malformed page token")
        return [_decode_value(v) for v in key]


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
    """The page of `rows` fetched with LIMIT size + 1 (one extra row shows a next page).

    The next token carries `key_of` the page's last row, for `query`.
    """
    if len(rows) <= size:
        return Page(rows, "")
    items = rows[:size]
    return Page(items, tokens.encode(query, key_of(items[-1])))


def keyset_after(
    columns: Sequence[str],
    last_key: Sequence[Any] | None,
    *,
    first_param: int = 1,
    descending: bool = False,
) -> tuple[str, list[Any]]:
    """The SQL condition for the rows after `last_key` in `columns` order, and its arguments.

    `(created_at, id) > ($1, $2)` for columns `("created_at", "id")`; `<` for a list in
    descending order; parameters numbered from `first_param`. On the first page (no last
    key): `true` and no arguments. One row comparison in the column order of an index (with
    the list's equality filters before it) lets PostgreSQL start the index scan at the key.
    """
    if last_key is None:
        return "true", []
    if len(last_key) != len(columns):
        raise InvalidArgument.single("page_token", "malformed page token")
    params = ", ".join(f"${first_param + i}" for i in range(len(columns)))
    operator = "<" if descending else ">"
    return f"({', '.join(columns)}) {operator} ({params})", list(last_key)


def _encode_value(value: Any) -> Any:
    # Timestamps keep their type through the token so keyset comparisons stay exact.
    if isinstance(value, datetime):
        return {"t": value.isoformat()}
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _decode_value(value: Any) -> Any:
    if isinstance(value, dict) and isinstance(value.get("t"), str):
        return datetime.fromisoformat(value["t"])
    return value


def _query_digest(query: Sequence[Any]) -> str:
    return hashlib.sha256(json.dumps(list(query), default=str).encode()).hexdigest()[:16]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
