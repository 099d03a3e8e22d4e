"""Every RPC of every Sensei service, read from the descriptors, and a raw way to call it."""

from __future__ import annotations

import asyncio
import importlib
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import descriptor, descriptor_pool

from sensei.access.v1 import access_pb2
from shared.auth import access_rules
from tests.harness import ALL_SERVICES


@dataclass(frozen=True)
class Rpc:
    """One RPC: which server serves it, its path, its descriptor and its access rule."""

    server: str  # org, migration, verification, pattern
    service: str  # e.g. sensei.migration.v1.MigrationService
    method: descriptor.MethodDescriptor
    rule: access_pb2.AccessRule

    @property
    def path(self) -> str:
        """`/sensei.x.v1.Service/Method`."""
        return f"/{self.service}/{self.method.name}"

    @property
    def id(self) -> str:
        """`Service.Method`, for test ids."""
        return f"{self.service.rsplit('.', 1)[1]}.{self.method.name}"

    @property
    def streaming(self) -> bool:
        """Whether the server streams its response."""
        return bool(self.method.server_streaming)

    @property
    def org_scoped(self) -> bool:
        """Whether the rule names an organization field."""
        return bool(self.rule.org_field)


def service_names(server: str) -> tuple[str, ...]:
    """The proto services one server serves."""
    module = importlib.import_module(f"services.{server}.server")
    names: tuple[str, ...] = module.DEFINITION.service_names
    return names


def all_rpcs() -> list[Rpc]:
    """Every RPC of the four servers (nine services), in declaration order."""
    pool = descriptor_pool.Default()  # type: ignore[no-untyped-call]
    rpcs = []
    for server in ALL_SERVICES:
        names = service_names(server)
        rules = access_rules(names)
        for name in names:
            for method in pool.FindServiceByName(name).methods:
                rpcs.append(Rpc(server, name, method, rules[f"/{name}/{method.name}"]))
    return rpcs


@dataclass(frozen=True)
class Outcome:
    """How a raw call ended."""

    code: grpc.StatusCode
    details: str
    trailing: tuple[tuple[str, Any], ...]
    messages: int = 0


async def call_raw(
    channel: grpc.aio.Channel,
    rpc: Rpc,
    payload: bytes,
    metadata: tuple[tuple[str, str], ...] = (),
    *,
    deadline_seconds: float = 15.0,
    stream_seconds: float = 1.0,
    until_first: bool = False,
) -> Outcome:
    """Sends `payload` as the request bytes of `rpc`; a stream is read for `stream_seconds`
    (or until its first message, with `until_first`).

    A stream still open after that is cancelled by us, which counts as OK.
    """
    if not rpc.streaming:
        unary = channel.unary_unary(
            rpc.path, request_serializer=_identity, response_deserializer=_identity
        )
        try:
            await unary(payload, metadata=metadata, timeout=deadline_seconds)
        except grpc.aio.AioRpcError as exc:
            return Outcome(exc.code(), exc.details() or "", tuple(exc.trailing_metadata() or ()))
        return Outcome(grpc.StatusCode.OK, "", ())
    streamed = channel.unary_stream(
        rpc.path, request_serializer=_identity, response_deserializer=_identity
    )
    call = streamed(payload, metadata=metadata, timeout=deadline_seconds)
    received = 0
    try:
        async with asyncio.timeout(stream_seconds):
            async for _ in call:
                received += 1
                if until_first:
                    call.cancel()
                    return Outcome(grpc.StatusCode.OK, "first message", (), received)
    except TimeoutError:
        call.cancel()
        return Outcome(grpc.StatusCode.OK, "still streaming", (), received)
    except grpc.aio.AioRpcError as exc:
        return Outcome(
            exc.code(), exc.details() or "", tuple(exc.trailing_metadata() or ()), received
        )
    return Outcome(grpc.StatusCode.OK, "", (), received)


def _identity(data: bytes) -> bytes:
    return data
