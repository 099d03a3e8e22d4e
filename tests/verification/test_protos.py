"""The verification API: it compiles and every RPC declares an access rule."""

from __future__ import annotations

import tempfile
from pathlib import Path

import grpc_tools
import pytest
from google.protobuf import descriptor_pb2
from grpc_tools import protoc

from sensei.access.v1 import access_pb2

PROTOS = Path(__file__).resolve().parents[2] / "protos"


@pytest.fixture(scope="module")
def service() -> descriptor_pb2.ServiceDescriptorProto:
    with tempfile.TemporaryDirectory() as directory:
        descriptor_set = Path(directory) / "verification.binpb"
        include = Path(grpc_tools.__file__).parent / "_proto"
        status = protoc.main(
            [
                "protoc",
                f"-I{PROTOS}",
                f"-I{include}",
                f"--descriptor_set_out={descriptor_set}",
                "sensei/verification/v1/verification.proto",
            ]
        )
        assert status == 0
        files = descriptor_pb2.FileDescriptorSet.FromString(descriptor_set.read_bytes())
    (proto,) = files.file
    (service,) = proto.service
    return service


def test_service_name_and_rpcs_are_as_designed(
    service: descriptor_pb2.ServiceDescriptorProto,
) -> None:
    assert service.name == "VerificationService"
    assert {method.name for method in service.method} >= {
        "CreateVerification",
        "GetVerification",
        "ListVerifications",
        "WatchVerification",
        "GetCertificate",
        "VerifyCertificate",
        "ListSigningKeys",
        "RotateSigningKey",
        "RevokeSigningKey",
    }


def test_every_rpc_declares_an_access_level(
    service: descriptor_pb2.ServiceDescriptorProto,
) -> None:
    missing = [
        method.name
        for method in service.method
        if method.options.Extensions[access_pb2.access].min_level == access_pb2.LEVEL_UNSPECIFIED
    ]
    assert missing == []


def test_signing_key_management_is_platform_only_and_not_org_scoped(
    service: descriptor_pb2.ServiceDescriptorProto,
) -> None:
    rules = {m.name: m.options.Extensions[access_pb2.access] for m in service.method}
    for name in ("RotateSigningKey", "RevokeSigningKey"):
        assert rules[name].min_level == access_pb2.LEVEL_PLATFORM
        assert rules[name].org_field == ""


def test_watch_verification_is_server_streaming(
    service: descriptor_pb2.ServiceDescriptorProto,
) -> None:
    (watch,) = [m for m in service.method if m.name == "WatchVerification"]
    assert watch.server_streaming and not watch.client_streaming
