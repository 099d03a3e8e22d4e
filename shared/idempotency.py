"""Request-id idempotency for every Create.

Inside the transaction of a create, `run_once` claims (caller, method, request_id) in the
service's `request_ids` table. The first call runs `create` and stores its response; a
repeat waits for the first to commit and gets the stored response back, writing nothing.
A repeat whose request differs from the first is INVALID_ARGUMENT.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import TypeVar

from google.protobuf.message import Message

from shared.db import Connection
from shared.errors import InvalidArgument

ResponseT = TypeVar("ResponseT", bound=Message)

MAX_REQUEST_ID_LENGTH = 128


async def run_once(
    conn: Connection,
    *,
    caller: str,
    method: str,
    request: Message,
    response_type: type[ResponseT],
    create: Callable[[], Awaitable[ResponseT]],
    request_id_field: str = "request_id",
) -> ResponseT:
    """Runs `create` once per request id; must be called inside a transaction."""
    request_id: str = getattr(request, request_id_field)
    if not request_id:
        return await create()
    if len(request_id) > MAX_REQUEST_ID_LENGTH or not request_id.isprintable():
        raise InvalidArgument.single(
            request_id_field, f"must be at most {MAX_REQUEST_ID_LENGTH} printable characters"
        )
    body = type(request)()
    body.CopyFrom(request)
    body.ClearField(request_id_field)  # type: ignore[arg-type]
    request_hash = hashlib.sha256(body.SerializeToString(deterministic=True)).hexdigest()
    claimed = await conn.fetchval(
        "INSERT INTO request_ids (caller, method, request_id, request_hash) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT DO NOTHING RETURNING true",
        caller,
        method,
        request_id,
        request_hash,
    )
    if not claimed:
        row = await conn.fetchrow(
            "SELECT request_hash, response FROM request_ids"
            " WHERE caller = $1 AND method = $2 AND request_id = $3",
            caller,
            method,
            request_id,
        )
        assert row is not None  # the conflicting row committed before ON CONFLICT saw it
        if row["request_hash"] != request_hash:
            raise InvalidArgument.single(
                request_id_field,
                "was already used for a different request",
                reason="REQUEST_ID_REUSED",
            )
        return response_type.FromString(row["response"])
    response = await create()
    await conn.execute(
        "UPDATE request_ids SET response = $4"
        " WHERE caller = $1 AND method = $2 AND request_id = $3",
        caller,
        method,
        request_id,
        response.SerializeToString(deterministic=True),
    )
    return response
