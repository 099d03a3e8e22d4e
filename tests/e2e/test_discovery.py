"""Every server lists its services through reflection alone, for grpcurl and for code."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from sensei.third_party.grpc.reflection.v1 import reflection_pb2 as v1_pb2
from tests.harness import ALL_SERVICES, Suite
from tests.harness.suite import definition_of

GRPCURL = Path(sys.executable).parent / "grpcurl"
BUF = Path(sys.executable).parent / "buf"
INFRA = {
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
}


async def _grpcurl(*args: str) -> str:
    return await _run(GRPCURL, *args)


async def _run(program: Path, *args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        str(program),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, err.decode()
    return out.decode()


async def test_reflection_lists_each_servers_services_plus_health_and_reflection(
    suite: Suite,
) -> None:
    await suite.start(*ALL_SERVICES)
    for service in ALL_SERVICES:
        stub = reflection_pb2_grpc.ServerReflectionStub(suite.channel(service))
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        responses = [response async for response in stub.ServerReflectionInfo(iter([request]))]
        listed = {s.name for s in responses[0].list_services_response.service}
        assert listed == set(definition_of(service).service_names) | INFRA, service


async def test_real_grpcurl_lists_describes_and_calls_without_proto_files(suite: Suite) -> None:
    await suite.start("org")
    address = suite.address("org")
    listed = set((await _grpcurl("-plaintext", address, "list")).split())
    assert {"sensei.org.v1.OrganizationService", "grpc.health.v1.Health"} <= listed
    described = await _grpcurl(
        "-plaintext", address, "describe", "sensei.org.v1.OrganizationService.GetOrganization"
    )
    assert "rpc GetOrganization" in described
    owner = await suite.owner()
    body = json.dumps({"name": owner.org_name})
    out = await _grpcurl(
        "-plaintext",
        "-H",
        f"authorization: Bearer {owner.token}",
        "-d",
        body,
        address,
        "sensei.org.v1.OrganizationService/GetOrganization",
    )
    assert json.loads(out)["organization"]["id"] == owner.org_id


async def test_reflection_v1_describes_a_method_like_v1alpha(suite: Suite) -> None:
    await suite.start("org")
    call = suite.channel("org").stream_stream(
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        request_serializer=v1_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=v1_pb2.ServerReflectionResponse.FromString,
    )
    symbol = "sensei.org.v1.OrganizationService.GetOrganization"
    requests = [
        v1_pb2.ServerReflectionRequest(file_containing_symbol=symbol),
        v1_pb2.ServerReflectionRequest(file_containing_symbol="sensei.org.v1.NoSuchThing"),
    ]
    found, missing = [response async for response in call(iter(requests))]
    assert found.file_descriptor_response.file_descriptor_proto
    assert found.original_request.file_containing_symbol == symbol
    assert missing.error_response.error_code == 5  # NOT_FOUND


@pytest.mark.parametrize("protocol", ["grpc-v1", "grpc-v1alpha"])
async def test_buf_curl_lists_and_calls_with_each_reflection_protocol(
    suite: Suite, protocol: str
) -> None:
    await suite.start("org")
    base = f"http://{suite.address('org')}"
    common = ("--protocol", "grpc", "--http2-prior-knowledge", "--reflect-protocol", protocol)
    listed = set((await _run(BUF, "curl", *common, "--list-services", base)).split())
    assert {"sensei.org.v1.OrganizationService", "grpc.health.v1.Health"} <= listed
    owner = await suite.owner()
    out = await _run(
        BUF,
        "curl",
        *common,
        "-H",
        f"authorization: Bearer {owner.token}",
        "-d",
        json.dumps({"name": owner.org_name}),
        f"{base}/sensei.org.v1.OrganizationService/GetOrganization",
    )
    assert json.loads(out)["organization"]["id"] == owner.org_id
