"""Deadlines and retries over real gRPC: downstream calls never outlive their caller's
deadline, internal channels retry UNAVAILABLE (only, and boundedly), and retryable errors
carry `google.rpc.RetryInfo`."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from sensei.org.v1 import organization_pb2, organization_pb2_grpc
from shared import client
from shared.errors import Aborted, Unavailable
from tests.shared.conftest import ProbeServer

ORG = "a0000000-0000-4000-8000-000000005678"
RECORD = "/sensei.test.Recorder/Record"
# What the downstream code asks for; the caller's deadline must win when shorter.
DOWNSTREAM_CAP_SECONDS = 30.0
CALLER_DEADLINE_SECONDS = 5.0
# gRPC rounds a deadline up when it encodes `grpc-timeout` (to 100 ms here).
ROUNDING = 0.5


@dataclass
class Recorder:
    """A bare gRPC server whose one method records each attempt's remaining time and
    fails the first `failures` attempts with `code`."""

    failures: int = 0
    code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE
    remaining: list[float | None] = field(default_factory=list)
    address: str = ""

    async def record(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        self.remaining.append(context.time_remaining())
        if len(self.remaining) <= self.failures:
            await context.abort(self.code, "recorder says no")
        return b""


@pytest.fixture
async def recorder() -> AsyncIterator[Recorder]:
    recorder = Recorder()
    server = grpc.aio.server()
    handler = grpc.unary_unary_rpc_method_handler(recorder.record)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("sensei.test.Recorder", {"Record": handler}),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    recorder.address = f"127.0.0.1:{port}"
    try:
        yield recorder
    finally:
        await server.stop(0)


async def _record(channel: grpc.aio.Channel, seconds: float | None = None) -> None:
    await channel.unary_unary(RECORD)(b"", timeout=seconds)


async def _get_org(probe: ProbeServer, seconds: float | None) -> None:
    async with grpc.aio.insecure_channel(probe.address) as channel:
        stub = organization_pb2_grpc.OrganizationServiceStub(channel)
        await stub.GetOrganization(
            organization_pb2.GetOrganizationRequest(name=f"organizations/{ORG}"),
            metadata=(("authorization", f"Bearer {probe.keys.token(org=ORG)}"),),
            timeout=seconds,
        )


async def test_a_downstream_call_gets_the_callers_remaining_time_when_shorter(
    probe_server: ProbeServer, recorder: Recorder
) -> None:
    async with client.channel(recorder.address) as downstream:
        probe_server.servicer.downstream = lambda: _record(downstream, DOWNSTREAM_CAP_SECONDS)
        await _get_org(probe_server, seconds=CALLER_DEADLINE_SECONDS)
        await _get_org(probe_server, seconds=None)
    bounded, capped = recorder.remaining
    assert bounded is not None and 0 < bounded <= CALLER_DEADLINE_SECONDS + ROUNDING
    # Without a caller deadline the code's own cap applies.
    assert (
        capped is not None
        and CALLER_DEADLINE_SECONDS + ROUNDING < capped <= DOWNSTREAM_CAP_SECONDS + ROUNDING
    )


async def test_outside_a_call_the_codes_own_timeout_applies(recorder: Recorder) -> None:
    async with client.channel(recorder.address) as downstream:
        await _record(downstream, DOWNSTREAM_CAP_SECONDS)
        await _record(downstream)
    capped, unbounded = recorder.remaining
    assert (
        capped is not None
        and CALLER_DEADLINE_SECONDS + ROUNDING < capped <= DOWNSTREAM_CAP_SECONDS + ROUNDING
    )
    assert unbounded is None


async def test_internal_channels_retry_unavailable_up_to_three_attempts(
    recorder: Recorder,
) -> None:
    recorder.failures = 2
    async with client.channel(recorder.address) as downstream:
        await _record(downstream, DOWNSTREAM_CAP_SECONDS)
    assert len(recorder.remaining) == 3


async def test_retries_stop_after_three_attempts(recorder: Recorder) -> None:
    recorder.failures = 10
    async with client.channel(recorder.address) as downstream:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await _record(downstream, DOWNSTREAM_CAP_SECONDS)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert len(recorder.remaining) == 3


@pytest.mark.parametrize(
    "code", [grpc.StatusCode.INTERNAL, grpc.StatusCode.ABORTED, grpc.StatusCode.DEADLINE_EXCEEDED]
)
async def test_other_codes_are_not_retried(recorder: Recorder, code: grpc.StatusCode) -> None:
    recorder.failures, recorder.code = 10, code
    async with client.channel(recorder.address) as downstream:
        with pytest.raises(grpc.aio.AioRpcError):
            await _record(downstream, DOWNSTREAM_CAP_SECONDS)
    assert len(recorder.remaining) == 1


def test_the_published_service_config_is_the_one_internal_channels_use() -> None:
    policy = json.loads(client.SERVICE_CONFIG)["methodConfig"][0]["retryPolicy"]
    assert policy["retryableStatusCodes"] == ["UNAVAILABLE"]
    assert policy["maxAttempts"] == 3


@pytest.mark.parametrize(
    ("error", "code", "delay_ms"),
    [
        (Unavailable("the database is down", reason="DATABASE_UNAVAILABLE"), "UNAVAILABLE", 1000),
        (Aborted("stale etag", reason="ETAG_MISMATCH"), "ABORTED", 100),
    ],
)
async def test_retryable_errors_carry_retry_info(
    probe_server: ProbeServer, error: Exception, code: str, delay_ms: int
) -> None:
    probe_server.servicer.error = error
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _get_org(probe_server, seconds=CALLER_DEADLINE_SECONDS)
    assert caught.value.code().name == code
    status = rpc_status.from_call(caught.value)
    assert status is not None
    retry = error_details_pb2.RetryInfo()
    assert any(d.Unpack(retry) for d in status.details)
    assert retry.retry_delay.ToMilliseconds() == delay_ms
