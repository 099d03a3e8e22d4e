"""Transaction helpers shared by the use cases: idempotent creates and keyset pages."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import asyncpg
from google.protobuf.message import Message

from shared.auth import current_principal
from shared.db import Connection
from shared.idempotency import run_once
from shared.pagination import PageTokens

ResponseT = TypeVar("ResponseT", bound=Message)
T = TypeVar("T")


@dataclass(frozen=True)
class Replay(Generic[ResponseT]):
    """What request-id idempotency needs of a Create call: the method, request and response."""

    method: str
    request: Message
    response_type: type[ResponseT]


async def create_once(
    pool: asyncpg.Pool,
    replay: Replay[ResponseT],
    create: Callable[[Connection], Awaitable[ResponseT]],
) -> ResponseT:
    """Runs `create` in one transaction, once per (caller, method, request_id)."""
    caller = current_principal().subject
    async with pool.acquire() as conn, conn.transaction():
        return await run_once(
            conn,
            caller=caller,
            method=replay.method,
            request=replay.request,
            response_type=replay.response_type,
            create=lambda: create(conn),
        )


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
