"""The API contract, checked on the descriptors every client is generated from."""

from __future__ import annotations

import importlib
import pkgutil

import pytest
from google.protobuf import descriptor, descriptor_pool

import sensei
from sensei.access.v1 import access_pb2
from tests.harness.suite import ALL_SERVICES, definition_of


def _load_all_generated_modules() -> None:
    for module in pkgutil.walk_packages(sensei.__path__, "sensei."):
        if module.name.endswith("_pb2"):
            importlib.import_module(module.name)


def _our_services() -> list[descriptor.ServiceDescriptor]:
    _load_all_generated_modules()
    pool = descriptor_pool.Default()
    services = []
    for service in ALL_SERVICES:
        for name in definition_of(service).service_names:
            services.append(pool.FindServiceByName(name))
    return services


def _our_messages_and_enums() -> tuple[
    list[descriptor.Descriptor], list[descriptor.EnumDescriptor]
]:
    _load_all_generated_modules()
    pool = descriptor_pool.Default()
    messages: list[descriptor.Descriptor] = []
    enums: list[descriptor.EnumDescriptor] = []
    for module in pkgutil.walk_packages(sensei.__path__, "sensei."):
        if not module.name.endswith("_pb2"):
            continue
        file = pool.FindFileByName(importlib.import_module(module.name).DESCRIPTOR.name)
        stack = list(file.message_types_by_name.values())
        enums.extend(file.enum_types_by_name.values())
        while stack:
            message = stack.pop()
            messages.append(message)
            stack.extend(message.nested_types)
            enums.extend(message.enum_types)
    return messages, enums


METHODS = [method for service in _our_services() for method in service.methods]


def test_the_design_services_are_all_defined() -> None:
    names = {service.full_name for service in _our_services()}
    assert names == {
        "sensei.org.v1.OrganizationService",
        "sensei.org.v1.UserService",
        "sensei.org.v1.AuthService",
        "sensei.org.v1.AuditService",
        "sensei.migration.v1.MigrationService",
        "sensei.migration.v1.SchemaService",
        "sensei.migration.v1.AgentExecutionService",
        "sensei.verification.v1.VerificationService",
        "sensei.pattern.v1.PatternService",
    }


@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.full_name)
def test_every_rpc_declares_an_access_rule(method: descriptor.MethodDescriptor) -> None:
    options = method.GetOptions()
    assert options.HasExtension(access_pb2.access), f"{method.full_name} has no access rule"
    rule = options.Extensions[access_pb2.access]
    assert rule.min_level != access_pb2.LEVEL_UNSPECIFIED
    if rule.org_field:
        message = method.input_type
        for part in rule.org_field.split("."):
            field = message.fields_by_name.get(part)
            assert field is not None, f"{method.full_name}: no field {rule.org_field}"
            message = field.message_type
        assert field.type == field.TYPE_STRING


# Platform-wide resources: changed by platform principals only (LEVEL_PLATFORM).
PLATFORM_ONLY = {
    "sensei.org.v1.OrganizationService.CreateOrganization",
    "sensei.org.v1.AuthService.RotateTokenSigningKey",
    "sensei.org.v1.AuthService.CreateServiceAccount",
    "sensei.verification.v1.VerificationService.RotateSigningKey",
    "sensei.verification.v1.VerificationService.RevokeSigningKey",
    "sensei.pattern.v1.PatternService.UpsertPattern",
    "sensei.pattern.v1.PatternService.DeletePattern",
    "sensei.pattern.v1.PatternService.ReindexPatterns",
}
# What the platform operator may read besides: platform data only (patterns, and on the
# audit RPCs only the platform chain, which the interceptor enforces). Never tenant data.
OPERATOR_READS = {
    "sensei.pattern.v1.PatternService.GetPattern",
    "sensei.pattern.v1.PatternService.ListPatterns",
    "sensei.pattern.v1.PatternService.SearchPatterns",
    "sensei.pattern.v1.PatternService.GetPatternIndex",
    "sensei.org.v1.AuditService.ListAuditLogs",
    "sensei.org.v1.AuditService.VerifyAuditChain",
    "sensei.org.v1.AuditService.GetAuditCheckpoint",
}


def test_platform_wide_resources_change_only_at_the_platform_level() -> None:
    platform = {
        m.full_name
        for m in METHODS
        if m.GetOptions().Extensions[access_pb2.access].min_level == access_pb2.LEVEL_PLATFORM
    }
    assert platform == PLATFORM_ONLY


def test_the_operator_is_admitted_only_to_platform_data() -> None:
    opened = {
        m.full_name for m in METHODS if m.GetOptions().Extensions[access_pb2.access].allow_operator
    }
    assert opened == OPERATOR_READS
    for method in METHODS:
        rule = method.GetOptions().Extensions[access_pb2.access]
        assert not (rule.allow_operator and rule.min_level == access_pb2.LEVEL_SERVICE)


@pytest.mark.parametrize(
    "method", [m for m in METHODS if m.name.startswith("List")], ids=lambda m: m.full_name
)
def test_every_list_is_paginated(method: descriptor.MethodDescriptor) -> None:
    assert {"page_size", "page_token"} <= set(method.input_type.fields_by_name)
    assert (
        method.input_type.fields_by_name["page_size"].type == descriptor.FieldDescriptor.TYPE_INT32
    )
    assert "next_page_token" in method.output_type.fields_by_name


@pytest.mark.parametrize(
    "method", [m for m in METHODS if m.name.startswith("Update")], ids=lambda m: m.full_name
)
def test_every_update_takes_a_field_mask(method: descriptor.MethodDescriptor) -> None:
    mask = method.input_type.fields_by_name.get("update_mask")
    assert mask is not None and mask.message_type.full_name == "google.protobuf.FieldMask"


@pytest.mark.parametrize(
    "method", [m for m in METHODS if m.name.startswith("Create")], ids=lambda m: m.full_name
)
def test_every_create_of_a_stored_resource_takes_a_request_id(
    method: descriptor.MethodDescriptor,
) -> None:
    assert "request_id" in method.input_type.fields_by_name


@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.full_name)
def test_every_rpc_has_its_own_request_and_response(method: descriptor.MethodDescriptor) -> None:
    assert method.input_type.name == f"{method.name}Request"
    assert method.output_type.name == f"{method.name}Response"


def test_every_enum_starts_with_its_unspecified_zero() -> None:
    _, enums = _our_messages_and_enums()
    assert enums
    for enum in enums:
        zero = enum.values_by_number.get(0)
        assert zero is not None and zero.name.endswith("_UNSPECIFIED"), enum.full_name


def test_design_model_fields_all_exist() -> None:
    messages, _ = _our_messages_and_enums()
    by_name = {message.full_name: set(message.fields_by_name) for message in messages}
    expected = {
        "sensei.org.v1.Organization": {
            "id",
            "display_name",
            "slug",
            "plan",
            "settings",
            "create_time",
            "update_time",
        },
        "sensei.org.v1.User": {
            "id",
            "org_id",
            "email",
            "display_name",
            "role",
            "avatar_url",
            "create_time",
            "update_time",
        },
        "sensei.org.v1.AuditLog": {
            "id",
            "org_id",
            "user_id",
            "action",
            "resource_type",
            "resource_id",
            "ip_address",
            "create_time",
        },
        "sensei.migration.v1.Migration": {
            "id",
            "org_id",
            "description",
            "status",
            "source_config",
            "target_config",
            "progress",
            "start_time",
            "complete_time",
        },
        "sensei.migration.v1.Schema": {
            "id",
            "migration_id",
            "type",
            "definition",
            "fingerprint",
            "metadata",
        },
        "sensei.migration.v1.AgentExecution": {
            "id",
            "migration_id",
            "agent_type",
            "status",
            "tokens_used",
            "duration_ms",
            "input",
            "output",
        },
        "sensei.verification.v1.Verification": {
            "id",
            "migration_id",
            "type",
            "status",
            "score",
            "certificate_id",
            "result",
        },
        "sensei.pattern.v1.Pattern": {
            "id",
            "type",
            "fingerprint",
            "embedding_id",
            "success_count",
            "failure_count",
            "metadata",
        },
    }
    for message, fields in expected.items():
        assert message in by_name, message
        assert fields <= by_name[message], (message, fields - by_name[message])
