"""The migration protos: they compile, and every RPC declares its access rule
(docs/architecture.md#access-rules)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2
from grpc_tools import protoc

from sensei.access.v1 import access_pb2

PROTOS = Path(__file__).resolve().parents[2] / "protos"
PACKAGE = "sensei.migration.v1"

SERVICE_ONLY = {"GetMigrationConnections"}
READS = {
    "GetMigration",
    "ListMigrations",
    "WatchMigration",
    "GetUsage",
    "GetSchema",
    "ListSchemas",
    "DiffSchemas",
    "GetAgentExecution",
    "ListAgentExecutions",
}
# Read by the verification service or driven by agent workers.
SERVICE_ALLOWED = READS | {
    "StartMigration",
    "AdvanceMigration",
    "PauseMigration",
    "ResumeMigration",
    "CompleteMigration",
    "FailMigration",
    "CancelMigration",
    "ReportProgress",
    "CreateSchema",
    "CaptureSchema",
    "StartAgentExecution",
    "CompleteAgentExecution",
}
EXPECTED_SERVICES = {
    "MigrationService": {
        "CreateMigration",
        "GetMigration",
        "ListMigrations",
        "UpdateMigration",
        "DeleteMigration",
        "StartMigration",
        "AdvanceMigration",
        "PauseMigration",
        "ResumeMigration",
        "CompleteMigration",
        "FailMigration",
        "CancelMigration",
        "ReportProgress",
        "WatchMigration",
        "GetUsage",
        "GetMigrationConnections",
    },
    "SchemaService": {
        "CreateSchema",
        "CaptureSchema",
        "GetSchema",
        "ListSchemas",
        "DiffSchemas",
    },
    "AgentExecutionService": {
        "StartAgentExecution",
        "CompleteAgentExecution",
        "GetAgentExecution",
        "ListAgentExecutions",
    },
}


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> list[descriptor_pb2.FileDescriptorProto]:
    """The compiled migration protos (protoc's descriptor set, without imports)."""
    out = tmp_path_factory.mktemp("migration-protos") / "set.pb"
    well_known = resources.files("grpc_tools") / "_proto"
    sources = sorted(
        str(p.relative_to(PROTOS)) for p in (PROTOS / "sensei/migration/v1").glob("*.proto")
    )
    status = protoc.main(
        ["protoc", f"-I{PROTOS}", f"-I{well_known}", f"--descriptor_set_out={out}", *sources]
    )
    assert status == 0
    return list(descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file)


def methods(
    files: list[descriptor_pb2.FileDescriptorProto],
) -> dict[str, descriptor_pb2.MethodDescriptorProto]:
    return {m.name: m for f in files for s in f.service for m in s.method}


def test_services_have_every_rpc_of_the_design(
    files: list[descriptor_pb2.FileDescriptorProto],
) -> None:
    found = {s.name: {m.name for m in s.method} for f in files for s in f.service}
    assert {f.package for f in files} == {PACKAGE}
    for service, rpcs in EXPECTED_SERVICES.items():
        assert rpcs <= found[service]


def test_every_rpc_declares_an_access_level(
    files: list[descriptor_pb2.FileDescriptorProto],
) -> None:
    missing = [
        name
        for name, m in methods(files).items()
        if m.options.Extensions[access_pb2.access].min_level == access_pb2.LEVEL_UNSPECIFIED
    ]
    assert missing == []


def test_levels_follow_the_roles(files: list[descriptor_pb2.FileDescriptorProto]) -> None:
    levels = {
        n: m.options.Extensions[access_pb2.access].min_level for n, m in methods(files).items()
    }
    for name, level in levels.items():
        expected = (
            access_pb2.LEVEL_SERVICE
            if name in SERVICE_ONLY
            else access_pb2.LEVEL_VIEWER
            if name in READS
            else access_pb2.LEVEL_MEMBER
        )
        assert (name, level) == (name, expected)


def test_services_may_call_what_workers_and_verification_need(
    files: list[descriptor_pb2.FileDescriptorProto],
) -> None:
    allowed = {
        n
        for n, m in methods(files).items()
        if m.options.Extensions[access_pb2.access].allow_service
    }
    assert allowed - SERVICE_ONLY == SERVICE_ALLOWED


def test_org_field_names_a_string_field_of_the_request(
    files: list[descriptor_pb2.FileDescriptorProto],
) -> None:
    messages = {f".{PACKAGE}.{m.name}": m for f in files for m in f.message_type}
    for name, method in methods(files).items():
        path = method.options.Extensions[access_pb2.access].org_field
        assert path, name
        message = messages[method.input_type]
        *parents, leaf = path.split(".")
        for part in parents:
            message = messages[next(f for f in message.field if f.name == part).type_name]
        field = next(f for f in message.field if f.name == leaf)
        assert field.type == descriptor_pb2.FieldDescriptorProto.TYPE_STRING, name


def test_watch_migration_is_a_server_stream(
    files: list[descriptor_pb2.FileDescriptorProto],
) -> None:
    watch = methods(files)["WatchMigration"]
    assert (watch.server_streaming, watch.client_streaming) == (True, False)
