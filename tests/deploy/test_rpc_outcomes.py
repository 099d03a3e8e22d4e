"""The RPC metrics record the status a call really ended with, whatever ended it."""

from __future__ import annotations

import grpc
import pytest

from sensei.org.v1 import organization_pb2, organization_pb2_grpc
from tests.deploy.test_metrics import handled, scrape
from tests.shared.conftest import ProbeServer, probe_server  # noqa: F401 (fixture)

ORG = "a0000000-0000-4000-8000-000000001234"
SERVICE = "sensei.org.v1.OrganizationService"


async def _get(server: ProbeServer, org: str) -> grpc.StatusCode:
    token = server.keys.token(org=org)
    async with grpc.aio.insecure_channel(server.address) as channel:
        stub = organization_pb2_grpc.OrganizationServiceStub(channel)
        try:
            await stub.GetOrganization(
                organization_pb2.GetOrganizationRequest(name=f"organizations/{org}"),
                metadata=(("authorization", f"Bearer {token}"),),
            )
        except grpc.aio.AioRpcError as exc:
            code: grpc.StatusCode = exc.code()
            return code
    return grpc.StatusCode.OK


@pytest.mark.parametrize(
    ("org", "unexpected", "code"),
    [
        (ORG, False, "OK"),
        (f"0{ORG[1:]}", False, "NOT_FOUND"),  # a domain error, mapped by the interceptor
        (ORG, True, "INTERNAL"),  # a bug in the handler
    ],
)
async def test_outcome_is_counted_with_the_code_the_caller_got(
    probe_server: ProbeServer,  # noqa: F811
    org: str,
    unexpected: bool,
    code: str,
) -> None:
    probe_server.servicer.raise_unexpected = unexpected
    assert (await _get(probe_server, org)).name == code
    text = await scrape(probe_server.running.metrics_port)
    assert handled(text, SERVICE, "GetOrganization", code) == 1
