"""Fixtures of the org service tests: a running org service and typed stubs on it."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC
from typing import Any, TypeVar

import asyncpg
import grpc
import pytest
import rfc8785
from google.protobuf import json_format, timestamp_pb2

from sensei.org.v1 import (
    audit_pb2,
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

    async def audit_settled(self) -> None:
        """Waits until the org service's outbox has drained into the audit log."""
        relay = self.suite.running["org"].context.relay
        assert relay is not None
        for _ in range(400):
            if await relay.pending() == 0:
                return
            await asyncio.sleep(0.05)
        raise AssertionError("the org service's audit outbox did not drain")

    async def audit_count(self, where: str, *args: Any) -> int:
        """How many stored audit entries match `where`, once the outbox has drained."""
        await self.audit_settled()
        return await self.count(f"SELECT count(*) FROM audit_logs WHERE {where}", *args)


async def started_org(suite: Suite) -> Org:
    """Starts the org service (settings from `suite.env`) and returns stubs on it."""
    await suite.start("org")
    channel = suite.channel("org")
    return Org(
        suite=suite,
        orgs=organization_pb2_grpc.OrganizationServiceStub(channel),
        users=user_pb2_grpc.UserServiceStub(channel),
        auth=auth_pb2_grpc.AuthServiceStub(channel),
        audit=audit_pb2_grpc.AuditServiceStub(channel),
    )


@pytest.fixture
async def org(suite: Suite) -> Org:
    """The org service, started with its bootstrap organization."""
    return await started_org(suite)


def audit_event(org_id: str, **fields: Any) -> audit_pb2.AuditEvent:
    """A valid event in `org_id` with a fresh event id; `fields` override."""
    occurred = timestamp_pb2.Timestamp()
    occurred.GetCurrentTime()
    values: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "org_id": org_id,
        "user_id": str(uuid.uuid4()),
        "actor": "users/test",
        "action": "thing.update",
        "resource_type": "thing",
        "resource_id": str(uuid.uuid4()),
        "ip_address": "10.1.2.3",
        "service": "test",
        "occur_time": occurred,
    }
    values.update(fields)
    return audit_pb2.AuditEvent(**values)


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


def time_text(ts: timestamp_pb2.Timestamp) -> str:
    """A time as the audit chain hashes it: `YYYY-MM-DDTHH:MM:SS.ffffffZ`."""
    return ts.ToDatetime(tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def documented_hash(log: audit_pb2.AuditLog) -> str:
    """An entry's hash as `AuditLog.entry_hash` documents it (not from the implementation)."""
    document: dict[str, Any] = {
        "v": 1,
        "id": log.id,
        "org_id": log.org_id,
        "seq": log.seq,
        "event_id": log.event_id,
        "user_id": log.user_id or None,
        "actor": log.actor,
        "action": log.action,
        "resource_type": log.resource_type,
        "resource_id": log.resource_id,
        "ip_address": log.ip_address,
        "service": log.service,
        "details": json_format.MessageToDict(log.details),
        "occurred_at": time_text(log.occur_time),
        "created_at": time_text(log.create_time),
        "prev_hash": log.prev_hash,
    }
    return hashlib.sha256(rfc8785.dumps(document)).hexdigest()
