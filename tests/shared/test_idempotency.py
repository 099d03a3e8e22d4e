"""Request-id idempotency of creates (shared.idempotency.create_once), over a real server."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import asyncpg
import grpc
import pytest

from sensei.org.v1 import organization_pb2, organization_pb2_grpc
from shared.db import SHARED_MIGRATIONS, migrate, migrations_in
from shared.idempotency import create_once
from tests.harness import error_info
from tests.shared.conftest import ProbeServer

CREATE_ORGANIZATION = "/sensei.org.v1.OrganizationService/CreateOrganization"


def _request(slug: str, request_id: str) -> organization_pb2.CreateOrganizationRequest:
    return organization_pb2.CreateOrganizationRequest(
        organization=organization_pb2.Organization(slug=slug), request_id=request_id
    )


async def _create(
    probe: ProbeServer, request: organization_pb2.CreateOrganizationRequest, token: str
) -> organization_pb2.CreateOrganizationResponse:
    async with grpc.aio.insecure_channel(probe.address) as channel:
        stub = organization_pb2_grpc.OrganizationServiceStub(channel)
        response: organization_pb2.CreateOrganizationResponse = await stub.CreateOrganization(
            request, metadata=(("authorization", f"Bearer {token}"),)
        )
        return response


async def _rows(probe: ProbeServer, sql: str) -> list[asyncpg.Record]:
    async with probe.running.context.pool.acquire() as conn:
        return list(await conn.fetch(sql))


async def test_repeat_returns_first_response_and_writes_nothing(
    probe_server: ProbeServer,
) -> None:
    token = probe_server.keys.token(role="SERVICE", sub="serviceAccounts/s1")
    first = await _create(probe_server, _request("acme", "r-1"), token)
    again = await _create(probe_server, _request("acme", "r-1"), token)
    assert again == first
    assert len(await _rows(probe_server, "SELECT * FROM probe_created")) == 1


async def test_concurrent_repeats_create_once(probe_server: ProbeServer) -> None:
    token = probe_server.keys.token(role="SERVICE", sub="serviceAccounts/s1")
    results = await asyncio.gather(
        *(_create(probe_server, _request("acme", "r-2"), token) for _ in range(5))
    )
    assert all(result == results[0] for result in results)
    assert len(await _rows(probe_server, "SELECT * FROM probe_created")) == 1


async def test_reused_request_id_with_another_request_is_invalid(
    probe_server: ProbeServer,
) -> None:
    token = probe_server.keys.token(role="SERVICE", sub="serviceAccounts/s1")
    await _create(probe_server, _request("acme", "r-3"), token)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _create(probe_server, _request("other", "r-3"), token)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(caught.value).reason == "REQUEST_ID_REUSED"
    assert len(await _rows(probe_server, "SELECT * FROM probe_created")) == 1


async def test_request_ids_are_per_caller(probe_server: ProbeServer) -> None:
    one = probe_server.keys.token(role="SERVICE", sub="serviceAccounts/s1")
    other = probe_server.keys.token(role="SERVICE", sub="serviceAccounts/s2")
    first = await _create(probe_server, _request("acme", "r-4"), one)
    second = await _create(probe_server, _request("acme", "r-4"), other)
    assert first.organization.id != second.organization.id


async def test_without_request_id_every_call_creates(probe_server: ProbeServer) -> None:
    token = probe_server.keys.token(role="SERVICE", sub="serviceAccounts/s1")
    await _create(probe_server, _request("acme", ""), token)
    await _create(probe_server, _request("acme", ""), token)
    assert len(await _rows(probe_server, "SELECT * FROM probe_created")) == 2


async def test_the_key_is_the_caller_and_the_full_method_path_of_the_call(
    probe_server: ProbeServer,
) -> None:
    token = probe_server.keys.token(role="SERVICE", sub="serviceAccounts/s1")
    await _create(probe_server, _request("acme", "r-5"), token)
    stored = await _rows(probe_server, "SELECT caller, method, request_id FROM request_ids")
    assert [tuple(row) for row in stored] == [("serviceAccounts/s1", CREATE_ORGANIZATION, "r-5")]


async def test_outside_a_call_there_is_no_method_to_key_on(probe_server: ProbeServer) -> None:
    async def create(conn: object) -> organization_pb2.CreateOrganizationResponse:
        raise AssertionError("must not run")

    with pytest.raises(RuntimeError, match="no current method"):
        await create_once(
            probe_server.running.context.pool,
            _request("acme", "r-6"),
            organization_pb2.CreateOrganizationResponse,
            create,
        )


async def test_request_ids_stored_under_bare_method_names_are_found_again(
    make_database: Callable[[], Awaitable[str]],
) -> None:
    shared = migrations_in(SHARED_MIGRATIONS, "shared/")
    before = [m for m in shared if m.version < "shared/0004"]
    conn = await asyncpg.connect(await make_database())
    try:
        await migrate(conn, "svc", before)
        await conn.execute(
            "INSERT INTO svc.request_ids (caller, method, request_id, request_hash)"
            " VALUES ('users/1', 'CreateUser', 'r-7', 'h'), ('users/1', 'Other', 'r-7', 'h')"
        )
        await migrate(conn, "svc", shared)
        methods = await conn.fetch("SELECT method FROM svc.request_ids ORDER BY method")
    finally:
        await conn.close()
    assert [row["method"] for row in methods] == ["/sensei.org.v1.UserService/CreateUser", "Other"]
