"""Request-id idempotency of creates."""

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import pytest

from sensei.org.v1 import organization_pb2
from shared.db import migrate, service_migrations
from shared.errors import InvalidArgument
from shared.idempotency import run_once

SVC = {"search_path": "svc"}


async def _database(make_database: Callable[[], Awaitable[str]]) -> str:
    dsn = await make_database()
    conn = await asyncpg.connect(dsn, server_settings={"search_path": "svc"})
    try:
        await migrate(conn, "svc", service_migrations(Path("/nonexistent")))
        await conn.execute("CREATE TABLE svc.created (slug text)")
    finally:
        await conn.close()
    return dsn


def _request(slug: str, request_id: str) -> organization_pb2.CreateOrganizationRequest:
    return organization_pb2.CreateOrganizationRequest(
        organization=organization_pb2.Organization(slug=slug), request_id=request_id
    )


async def _create(
    conn: asyncpg.Connection, request: organization_pb2.CreateOrganizationRequest
) -> organization_pb2.CreateOrganizationResponse:
    async def create() -> organization_pb2.CreateOrganizationResponse:
        await conn.execute("INSERT INTO svc.created VALUES ($1)", request.organization.slug)
        return organization_pb2.CreateOrganizationResponse(organization=request.organization)

    async with conn.transaction():
        return await run_once(
            conn,
            caller="users/1",
            method="CreateOrganization",
            request=request,
            response_type=organization_pb2.CreateOrganizationResponse,
            create=create,
        )


async def test_repeat_returns_first_result_and_writes_nothing(
    make_database: Callable[[], Awaitable[str]],
) -> None:
    conn = await asyncpg.connect(await _database(make_database), server_settings=SVC)
    try:
        first = await _create(conn, _request("acme", "r-1"))
        again = await _create(conn, _request("acme", "r-1"))
        rows = await conn.fetchval("SELECT count(*) FROM svc.created")
    finally:
        await conn.close()
    assert again == first
    assert rows == 1


async def test_concurrent_repeats_create_once(make_database: Callable[[], Awaitable[str]]) -> None:
    dsn = await _database(make_database)
    conns = [await asyncpg.connect(dsn, server_settings=SVC) for _ in range(5)]
    try:
        results = await asyncio.gather(*(_create(c, _request("acme", "r-2")) for c in conns))
        rows = await conns[0].fetchval("SELECT count(*) FROM svc.created")
    finally:
        for conn in conns:
            await conn.close()
    assert rows == 1
    assert all(result == results[0] for result in results)


async def test_reused_request_id_with_other_body_is_invalid(
    make_database: Callable[[], Awaitable[str]],
) -> None:
    conn = await asyncpg.connect(await _database(make_database), server_settings=SVC)
    try:
        await _create(conn, _request("acme", "r-3"))
        with pytest.raises(InvalidArgument) as caught:
            await _create(conn, _request("other", "r-3"))
    finally:
        await conn.close()
    assert caught.value.reason == "REQUEST_ID_REUSED"


async def test_without_request_id_every_call_creates(
    make_database: Callable[[], Awaitable[str]],
) -> None:
    conn = await asyncpg.connect(await _database(make_database), server_settings=SVC)
    try:
        await _create(conn, _request("acme", ""))
        await _create(conn, _request("acme", ""))
        rows = await conn.fetchval("SELECT count(*) FROM svc.created")
    finally:
        await conn.close()
    assert rows == 2
