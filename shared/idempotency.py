"""Request-id idempotency for every Create.

`create_once` runs a create in one transaction and, when the request carries a
`request_id`, first claims (caller, method, request_id) in the service's `request_ids`
table. The caller is the authenticated principal and the method the full path of the RPC
being served (`/sensei.org.v1.OrganizationService/CreateOrganization`, from
`shared.context`), so servicers and use cases name neither. The first call runs `create`
and stores its response; a repeat waits for the first to commit and gets the stored
response back, writing nothing. A repeat whose request differs from the first is
INVALID_ARGUMENT (REQUEST_ID_REUSED).
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg
from google.protobuf.message import Message

from shared.context import current_method
from shared.db import Connection
from shared.errors import InvalidArgument
from shared.principals import current_principal

ResponseT = TypeVar("ResponseT", bound=Message)

MAX_REQUEST_ID_LENGTH = 128
REQUEST_ID_FIELD = "request_id"


async def create_once(
    pool: asyncpg.Pool,
    request: Message,
    response_type: type[ResponseT],
    create: Callable[[Connection], Awaitable[ResponseT]],
) -> ResponseT:
    """Runs `create(conn)` in one transaction, once per (caller, method, request_id).

    Without a request id every call creates. Must run inside an RPC (it needs its method).
    """
    method = current_method()
    if not method:
        raise RuntimeError("create_once runs only while serving an RPC (no current method)")
    caller = current_principal().subject
    request_id: str = getattr(request, REQUEST_ID_FIELD)
    if request_id and (len(request_id) > MAX_REQUEST_ID_LENGTH or not request_id.isprintable()):
        raise InvalidArgument.single(
            REQUEST_ID_FIELD, f"must be at most {MAX_REQUEST_ID_LENGTH} printable characters"
        )
    async with pool.acquire() as conn, conn.transaction():
        if not request_id:
            return await create(conn)
        key = (caller, method, request_id)
        request_hash = _hash_without_request_id(request)
        first = await _claim(conn, key, request_hash, response_type)
        if first is not None:
            return first
        response = await create(conn)
        await conn.execute(
            "UPDATE request_ids SET response = $4"
            " WHERE caller = $1 AND method = $2 AND request_id = $3",
            *key,
            response.SerializeToString(deterministic=True),
        )
        return response


async def _claim(
    conn: Connection,
    key: tuple[str, str, str],
    request_hash: str,
    response_type: type[ResponseT],
) -> ResponseT | None:
    """Claims the key for this call (None), or the response of the call that claimed it."""
    claimed = await conn.fetchval(
        "INSERT INTO request_ids (caller, method, request_id, request_hash) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT DO NOTHING RETURNING true",
        *key,
        request_hash,
    )
    if claimed:
        return None
    row = await conn.fetchrow(
        "SELECT request_hash, response FROM request_ids"
        " WHERE caller = $1 AND method = $2 AND request_id = $3",
        *key,
    )
    assert row is not None  # the conflicting row committed before ON CONFLICT saw it
    if row["request_hash"] != request_hash:
        raise InvalidArgument.single(
            REQUEST_ID_FIELD, "was already used for a different request", reason="REQUEST_ID_REUSED"
        )
    return response_type.FromString(row["response"])


def _hash_without_request_id(request: Message) -> str:
    body = type(request)()
    body.CopyFrom(request)
    body.ClearField(REQUEST_ID_FIELD)  # type: ignore[arg-type]
    return hashlib.sha256(body.SerializeToString(deterministic=True)).hexdigest()
