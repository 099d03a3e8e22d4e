"""Request ids: taken from `x-request-id`, logged, and carried to the next service."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import pytest

from sensei.migration.v1 import migration_pb2, migration_pb2_grpc
from sensei.org.v1 import organization_pb2, organization_pb2_grpc
from shared import client
from shared.context import REQUEST_ID_HEADER, request_id_scope
from shared.logs import JsonFormatter
from tests.harness import Suite


class JsonRecords(logging.Handler):
    """Keeps each record as the JSON line a service would log (formatted when emitted)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter("test"))
        self.entries: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.entries.append(json.loads(self.format(record)))

    def about(self, text: str) -> list[dict[str, Any]]:
        return [entry for entry in self.entries if text in entry["message"]]


@pytest.fixture
def interceptor_logs() -> Iterator[JsonRecords]:
    """JSON records of the shared interceptor, DEBUG included (one line per call)."""
    logger = logging.getLogger("shared.interceptor")
    handler = JsonRecords()
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


class EchoServer:
    """A bare gRPC server that records the metadata of every call it gets."""

    def __init__(self) -> None:
        self.seen: list[dict[str, str]] = []
        self.server = grpc.aio.server()
        self.port = 0

    def _record(self, context: grpc.aio.ServicerContext) -> None:
        self.seen.append({k: v for k, v in context.invocation_metadata() or ()})

    async def start(self) -> str:
        async def unary(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
            self._record(context)
            return request

        async def stream(request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
            self._record(context)
            yield request
            yield request

        async def bidi(
            requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext
        ) -> AsyncIterator[bytes]:
            self._record(context)
            async for request in requests:
                yield request

        handler = grpc.method_handlers_generic_handler(
            "test.Echo",
            {
                "Unary": grpc.unary_unary_rpc_method_handler(unary),
                "Stream": grpc.unary_stream_rpc_method_handler(stream),
                "Bidi": grpc.stream_stream_rpc_method_handler(bidi),
            },
        )
        self.server.add_generic_rpc_handlers((handler,))
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        await self.server.start()
        return f"127.0.0.1:{self.port}"


@pytest.fixture
async def echo() -> AsyncIterator[tuple[EchoServer, grpc.aio.Channel]]:
    server = EchoServer()
    address = await server.start()
    channel = client.channel(address)
    try:
        yield server, channel
    finally:
        await channel.close()
        await server.server.stop(0)


async def test_outgoing_calls_of_every_kind_carry_the_current_request_id(
    echo: tuple[EchoServer, grpc.aio.Channel],
) -> None:
    server, channel = echo
    with request_id_scope("abc"):
        assert await channel.unary_unary("/test.Echo/Unary")(b"x") == b"x"
        assert [r async for r in channel.unary_stream("/test.Echo/Stream")(b"y")] == [b"y", b"y"]

        async def requests() -> AsyncIterator[bytes]:
            yield b"z"

        assert [r async for r in channel.stream_stream("/test.Echo/Bidi")(requests())] == [b"z"]
    assert [seen.get(REQUEST_ID_HEADER) for seen in server.seen] == ["abc", "abc", "abc"]


async def test_outgoing_calls_keep_their_own_request_id_and_add_none_outside_a_request(
    echo: tuple[EchoServer, grpc.aio.Channel],
) -> None:
    server, channel = echo
    with request_id_scope("abc"):
        await channel.unary_unary("/test.Echo/Unary")(b"x", metadata=((REQUEST_ID_HEADER, "own"),))
    await channel.unary_unary("/test.Echo/Unary")(b"x", metadata=(("other", "1"),))
    assert server.seen[0][REQUEST_ID_HEADER] == "own"
    assert REQUEST_ID_HEADER not in server.seen[1]
    assert server.seen[1]["other"] == "1"


async def test_a_call_is_logged_with_the_request_id_it_came_with(
    suite: Suite, interceptor_logs: JsonRecords
) -> None:
    await suite.start("org")
    owner = await suite.owner()
    orgs = suite.stub("org", organization_pb2_grpc.OrganizationServiceStub)
    request_id = f"abc-{uuid.uuid4().hex}"
    await orgs.GetOrganization(
        organization_pb2.GetOrganizationRequest(name=owner.org_name),
        metadata=(*owner.metadata, (REQUEST_ID_HEADER, request_id)),
    )
    (entry,) = interceptor_logs.about("/sensei.org.v1.OrganizationService/GetOrganization")
    assert entry["request_id"] == request_id
    assert "OK" in entry["message"]


async def test_the_request_id_follows_the_call_into_the_next_service(
    suite: Suite, interceptor_logs: JsonRecords
) -> None:
    await suite.start("migration")
    owner = await suite.owner()
    migrations = suite.stub("migration", migration_pb2_grpc.MigrationServiceStub)
    request_id = f"abc-{uuid.uuid4().hex}"
    # The migration service has not seen the org's token keys yet: verifying the token
    # makes it call AuthService.GetJwks on the org service, within this request.
    await migrations.ListMigrations(
        migration_pb2.ListMigrationsRequest(parent=owner.org_name),
        metadata=(*owner.metadata, (REQUEST_ID_HEADER, request_id)),
    )
    in_org = interceptor_logs.about("/sensei.org.v1.AuthService/GetJwks")
    assert [entry["request_id"] for entry in in_org] == [request_id]
    in_migration = interceptor_logs.about("/sensei.migration.v1.MigrationService/ListMigrations")
    assert [entry["request_id"] for entry in in_migration] == [request_id]
