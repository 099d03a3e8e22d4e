"""Server bootstrap and the shared interceptor, on a real server over a real channel."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from sensei.org.v1 import organization_pb2, organization_pb2_grpc
from tests.harness import error_info
from tests.shared.conftest import ProbeServer

ORG = "a0000000-0000-4000-8000-000000001234"


def _metadata(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


async def _health(address: str, service: str) -> int:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        response = await stub.Check(health_pb2.HealthCheckRequest(service=service))
        return int(response.status)


async def test_health_reports_serving_overall_and_per_service(probe_server: ProbeServer) -> None:
    assert await _health(probe_server.address, "") == health_pb2.HealthCheckResponse.SERVING
    assert (
        await _health(probe_server.address, "sensei.org.v1.OrganizationService")
        == health_pb2.HealthCheckResponse.SERVING
    )


async def test_graceful_shutdown_finishes_in_flight_call_and_reports_not_serving(
    probe_server: ProbeServer,
) -> None:
    probe_server.servicer.hold = True
    token = probe_server.keys.token(org=ORG)
    async with grpc.aio.insecure_channel(probe_server.address) as channel:
        stub = organization_pb2_grpc.OrganizationServiceStub(channel)
        health = health_pb2_grpc.HealthStub(channel)
        call = asyncio.ensure_future(
            stub.GetOrganization(
                organization_pb2.GetOrganizationRequest(name=f"organizations/{ORG}"),
                metadata=_metadata(token),
            )
        )
        await probe_server.servicer.entered.wait()
        watch = health.Watch(health_pb2.HealthCheckRequest(service=""))
        updates = watch.__aiter__()
        assert (await updates.__anext__()).status == health_pb2.HealthCheckResponse.SERVING
        stopping = asyncio.ensure_future(probe_server.running.stop(grace=30))
        # Health flips before the server stops, so balancers drain first.
        assert (await updates.__anext__()).status == health_pb2.HealthCheckResponse.NOT_SERVING
        watch.cancel()
        assert not call.done()
        probe_server.servicer.release.set()
        response = await call
        await stopping
    assert response.organization.id == ORG


async def test_missing_token_is_unauthenticated(probe_server: ProbeServer) -> None:
    async with grpc.aio.insecure_channel(probe_server.address) as channel:
        stub = organization_pb2_grpc.OrganizationServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.GetOrganization(
                organization_pb2.GetOrganizationRequest(name=f"organizations/{ORG}")
            )
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error_info(caught.value).reason == "TOKEN_MISSING"


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"exp": 1}, "TOKEN_EXPIRED"),
        ({"aud": "someone-else"}, "TOKEN_INVALID"),
        ({"iss": "not-sensei"}, "TOKEN_INVALID"),
        ({"role": "SUPERUSER"}, "TOKEN_INVALID"),
    ],
)
async def test_bad_token_claims_are_unauthenticated(
    probe_server: ProbeServer, claims: dict[str, object], reason: str
) -> None:
    token = probe_server.keys.token(org=ORG, **claims)
    async with grpc.aio.insecure_channel(probe_server.address) as channel:
        stub = organization_pb2_grpc.OrganizationServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.GetOrganization(
                organization_pb2.GetOrganizationRequest(name=f"organizations/{ORG}"),
                metadata=_metadata(token),
            )
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error_info(caught.value).reason == reason


async def test_token_of_other_organization_is_denied_before_lookup(
    probe_server: ProbeServer,
) -> None:
    other = str(uuid.uuid4())
    token = probe_server.keys.token(org=other)
    async with grpc.aio.insecure_channel(probe_server.address) as channel:
        stub = organization_pb2_grpc.OrganizationServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            # A name that would be NOT_FOUND: denial must come first, so ids do not leak.
            await stub.GetOrganization(
                organization_pb2.GetOrganizationRequest(name=f"organizations/0{ORG[1:]}"),
                metadata=_metadata(token),
            )
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error_info(caught.value).reason == "OTHER_ORGANIZATION"


async def test_role_below_the_rule_is_denied(probe_server: ProbeServer) -> None:
    token = probe_server.keys.token(role="ADMIN", org=ORG)
    async with grpc.aio.insecure_channel(probe_server.address) as channel:
        stub = organization_pb2_grpc.OrganizationServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.DeleteOrganization(
                organization_pb2.DeleteOrganizationRequest(name=f"organizations/{ORG}"),
                metadata=_metadata(token),
            )
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error_info(caught.value).reason == "ROLE_TOO_LOW"


async def test_user_principal_cannot_call_a_platform_method(probe_server: ProbeServer) -> None:
    token = probe_server.keys.token(role="OWNER", org=ORG)
    async with grpc.aio.insecure_channel(probe_server.address) as channel:
        stub = organization_pb2_grpc.OrganizationServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.CreateOrganization(
                organization_pb2.CreateOrganizationRequest(), metadata=_metadata(token)
            )
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error_info(caught.value).reason == "PLATFORM_ONLY"


@pytest.mark.parametrize("role", ["SERVICE", "OPERATOR"])
async def test_platform_principals_pass_a_platform_method(
    probe_server: ProbeServer, role: str
) -> None:
    token = probe_server.keys.token(role=role, sub=f"operators/{uuid.uuid4()}")
    async with grpc.aio.insecure_channel(probe_server.address) as channel:
        stub = organization_pb2_grpc.OrganizationServiceStub(channel)
        response = await stub.CreateOrganization(
            organization_pb2.CreateOrganizationRequest(), metadata=_metadata(token)
        )
    # Past access control: the probe's create ran.
    assert response.organization.id


async def test_an_operator_token_naming_an_organization_reaches_no_tenant_data(
    probe_server: ProbeServer,
) -> None:
    # Platform principals belong to no organization, whatever an `org` claim says.
    token = probe_server.keys.token(role="OPERATOR", org=ORG, sub=f"operators/{uuid.uuid4()}")
    async with grpc.aio.insecure_channel(probe_server.address) as channel:
        stub = organization_pb2_grpc.OrganizationServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.GetOrganization(
                organization_pb2.GetOrganizationRequest(name=f"organizations/{ORG}"),
                metadata=_metadata(token),
            )
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error_info(caught.value).reason == "OPERATOR_NOT_ALLOWED"


async def test_domain_error_becomes_rich_status(probe_server: ProbeServer) -> None:
    missing = "0" + ORG[1:]
    token = probe_server.keys.token(org=missing)
    async with grpc.aio.insecure_channel(probe_server.address) as channel:
        stub = organization_pb2_grpc.OrganizationServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.GetOrganization(
                organization_pb2.GetOrganizationRequest(name=f"organizations/{missing}"),
                metadata=_metadata(token),
            )
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    info = error_info(caught.value)
    assert (info.reason, info.domain) == ("ORGANIZATION_NOT_FOUND", "org.sensei.dev")


async def test_unexpected_exception_is_internal_with_trace_id(probe_server: ProbeServer) -> None:
    probe_server.servicer.raise_unexpected = True
    token = probe_server.keys.token(org=ORG)
    async with grpc.aio.insecure_channel(probe_server.address) as channel:
        stub = organization_pb2_grpc.OrganizationServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.GetOrganization(
                organization_pb2.GetOrganizationRequest(name=f"organizations/{ORG}"),
                metadata=_metadata(token),
            )
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    info = error_info(caught.value)
    assert info.reason == "INTERNAL" and len(info.metadata["trace_id"]) == 32
    assert "a bug" not in (caught.value.details() or "")


async def test_unimplemented_method_says_so(probe_server: ProbeServer) -> None:
    token = probe_server.keys.token(org=ORG, role="OWNER")
    async with grpc.aio.insecure_channel(probe_server.address) as channel:
        stub = organization_pb2_grpc.OrganizationServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.UpdateOrganization(
                organization_pb2.UpdateOrganizationRequest(
                    organization=organization_pb2.Organization(name=f"organizations/{ORG}")
                ),
                metadata=_metadata(token),
            )
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
