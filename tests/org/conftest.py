"""Fixtures of the org service tests: a running org service and typed stubs on it."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, TypeVar

import asyncpg
import grpc
import pytest

from sensei.org.v1 import (
    audit_pb2_grpc,
    auth_pb2_grpc,
    organization_pb2_grpc,
    user_pb2_grpc,
)
from tests.harness import Suite

T = TypeVar("T")


@dataclass
class Org:
    """The running org service of a test and stubs for its four services."""

    suite: Suite
    orgs: organization_pb2_grpc.OrganizationServiceStub
    users: user_pb2_grpc.UserServiceStub
    auth: auth_pb2_grpc.AuthServiceStub
    audit: audit_pb2_grpc.AuditServiceStub

    async def db(self) -> asyncpg.Connection:
        """A connection to the test database with the org schema first on the path."""
        return await asyncpg.connect(
            self.suite.database_url, server_settings={"search_path": "org"}
        )

    async def count(self, sql: str, *args: Any) -> int:
        """The single integer a query returns."""
        conn = await self.db()
        try:
            return int(await conn.fetchval(sql, *args))
        finally:
            await conn.close()


@pytest.fixture
async def org(suite: Suite) -> Org:
    """The org service, started with its bootstrap organization."""
    await suite.start("org")
    channel = suite.channel("org")
    return Org(
        suite=suite,
        orgs=organization_pb2_grpc.OrganizationServiceStub(channel),
        users=user_pb2_grpc.UserServiceStub(channel),
        auth=auth_pb2_grpc.AuthServiceStub(channel),
        audit=audit_pb2_grpc.AuditServiceStub(channel),
    )


async def rpc_error(call: Awaitable[Any]) -> grpc.aio.AioRpcError:
    """The error an RPC fails with (fails the test if it succeeds)."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


async def code_of(call: Awaitable[Any]) -> grpc.StatusCode:
    """The status code an RPC ends with (OK when it succeeds)."""
    try:
        await call
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK
