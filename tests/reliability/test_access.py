"""Who may call what, for the migration, verification and pattern services (org has its own
matrix in tests/org/test_access.py), and tenant isolation over every org-scoped RPC of all
four servers.

The expected rules are written out here, not read from the protos, so a wrong access
option in a proto fails a test: viewers read; members create and run migrations, schemas,
agent executions and verifications, and report pattern outcomes for their migrations;
platform-wide resources (certificate signing keys, pattern writes) are changed only by
platform principals (SERVICE, the service accounts, and OPERATOR, the platform operator),
never by a tenant role; the operator reaches no tenant data and no LEVEL_SERVICE RPC.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2
from google.protobuf.message import Message

from sensei.migration.v1 import (
    agent_execution_pb2,
    migration_pb2,
    migration_pb2_grpc,
    schema_pb2,
)
from sensei.pattern.v1 import pattern_pb2
from sensei.verification.v1 import verification_pb2, verification_pb2_grpc
from tests.harness import Identity, error_info
from tests.reliability.catalog import Rpc, all_rpcs, call_raw
from tests.reliability.conftest import Stack
from tests.reliability.world import World, make_world, struct

OK = grpc.StatusCode.OK
DENIED = grpc.StatusCode.PERMISSION_DENIED
UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED
NEVER = {grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL}
# Past access control; what the RPC then answers is for its own tests (never INTERNAL).
ADMITTED = "ADMITTED"

ROLES = ("VIEWER", "MEMBER", "ADMIN", "OWNER", "SERVICE", "OPERATOR", "NONE")
VIEWER_UP = {"VIEWER", "MEMBER", "ADMIN", "OWNER", "SERVICE"}
MEMBER_UP = {"MEMBER", "ADMIN", "OWNER", "SERVICE"}
MEMBER_UP_USERS = {"MEMBER", "ADMIN", "OWNER"}
ADMIN_UP = {"ADMIN", "OWNER", "SERVICE"}
EVERYONE = set(ROLES)
SERVICE_ONLY = {"SERVICE"}
# LEVEL_PLATFORM: platform principals, no tenant role.
PLATFORM = {"SERVICE", "OPERATOR"}
# Platform-wide reads (patterns): tenants and both platform principals.
PLATFORM_READ = VIEWER_UP | {"OPERATOR"}


@dataclass(frozen=True)
class Row:
    """One RPC: who may call it, what an admitted call gets, and its request."""

    rpc: str  # Service.Method
    allowed: set[str]
    admitted: grpc.StatusCode | str
    request: Callable[[World], Message]


def _missing(world: World, kind: str) -> str:
    return f"{world.migration}/{kind}/{uuid.uuid4()}"


MIGRATION_MATRIX = [
    Row("MigrationService.CreateMigration", MEMBER_UP_USERS, OK, lambda w: (
        migration_pb2.CreateMigrationRequest(
            parent=w.org, migration=migration_pb2.Migration(display_name="matrix")))),
    Row("MigrationService.GetMigration", VIEWER_UP, OK,
        lambda w: migration_pb2.GetMigrationRequest(name=w.migration)),
    Row("MigrationService.ListMigrations", VIEWER_UP, OK,
        lambda w: migration_pb2.ListMigrationsRequest(parent=w.org)),
    Row("MigrationService.UpdateMigration", MEMBER_UP_USERS, OK, lambda w: (
        migration_pb2.UpdateMigrationRequest(
            migration=migration_pb2.Migration(name=w.migration, description="matrix"),
            update_mask=field_mask_pb2.FieldMask(paths=["description"])))),
    Row("MigrationService.DeleteMigration", MEMBER_UP_USERS, grpc.StatusCode.NOT_FOUND,
        lambda w: migration_pb2.DeleteMigrationRequest(name=f"{w.org}/migrations/{uuid.uuid4()}")),
    Row("MigrationService.StartMigration", MEMBER_UP, ADMITTED,
        lambda w: migration_pb2.StartMigrationRequest(name=w.pending_migration)),
    Row("MigrationService.AdvanceMigration", MEMBER_UP, grpc.StatusCode.NOT_FOUND,
        lambda w: migration_pb2.AdvanceMigrationRequest(name=f"{w.org}/migrations/{uuid.uuid4()}")),
    Row("MigrationService.PauseMigration", MEMBER_UP, ADMITTED,
        lambda w: migration_pb2.PauseMigrationRequest(name=w.migration)),
    Row("MigrationService.ResumeMigration", MEMBER_UP, ADMITTED,
        lambda w: migration_pb2.ResumeMigrationRequest(name=w.migration)),
    Row("MigrationService.CompleteMigration", MEMBER_UP, grpc.StatusCode.NOT_FOUND,
        lambda w: migration_pb2.CompleteMigrationRequest(
            name=f"{w.org}/migrations/{uuid.uuid4()}")),
    Row("MigrationService.FailMigration", MEMBER_UP, grpc.StatusCode.NOT_FOUND,
        lambda w: migration_pb2.FailMigrationRequest(
            name=f"{w.org}/migrations/{uuid.uuid4()}", reason="matrix")),
    Row("MigrationService.CancelMigration", MEMBER_UP, grpc.StatusCode.NOT_FOUND,
        lambda w: migration_pb2.CancelMigrationRequest(
            name=f"{w.org}/migrations/{uuid.uuid4()}")),
    Row("MigrationService.ReportProgress", MEMBER_UP, ADMITTED,
        lambda w: migration_pb2.ReportProgressRequest(name=w.migration, progress=0.1)),
    Row("MigrationService.WatchMigration", VIEWER_UP, OK,
        lambda w: migration_pb2.WatchMigrationRequest(name=w.migration)),
    Row("MigrationService.GetUsage", VIEWER_UP, OK,
        lambda w: migration_pb2.GetUsageRequest(parent=w.org)),
    Row("MigrationService.GetMigrationConnections", SERVICE_ONLY, OK,
        lambda w: migration_pb2.GetMigrationConnectionsRequest(name=w.migration)),
    Row("SchemaService.CreateSchema", MEMBER_UP, OK, lambda w: schema_pb2.CreateSchemaRequest(
        parent=w.migration, schema=schema_pb2.Schema(
            type=schema_pb2.SCHEMA_TYPE_TARGET, definition=struct({"version": 1, "tables": {}})))),
    Row("SchemaService.CaptureSchema", MEMBER_UP, ADMITTED, lambda w: (
        schema_pb2.CaptureSchemaRequest(parent=w.migration, type=schema_pb2.SCHEMA_TYPE_SOURCE))),
    Row("SchemaService.GetSchema", VIEWER_UP, OK,
        lambda w: schema_pb2.GetSchemaRequest(name=w.schema)),
    Row("SchemaService.ListSchemas", VIEWER_UP, OK,
        lambda w: schema_pb2.ListSchemasRequest(parent=w.migration)),
    Row("SchemaService.DiffSchemas", VIEWER_UP, OK,
        lambda w: schema_pb2.DiffSchemasRequest(base_schema=w.schema, target_schema=w.schema)),
    Row("AgentExecutionService.StartAgentExecution", MEMBER_UP, OK, lambda w: (
        agent_execution_pb2.StartAgentExecutionRequest(
            parent=w.migration, agent_execution=agent_execution_pb2.AgentExecution(
                agent_type=agent_execution_pb2.AGENT_TYPE_VALIDATOR)))),
    Row("AgentExecutionService.CompleteAgentExecution", MEMBER_UP, grpc.StatusCode.NOT_FOUND,
        lambda w: agent_execution_pb2.CompleteAgentExecutionRequest(
            name=_missing(w, "agentExecutions"),
            status=agent_execution_pb2.AGENT_EXECUTION_STATUS_SUCCEEDED)),
    Row("AgentExecutionService.GetAgentExecution", VIEWER_UP, OK,
        lambda w: agent_execution_pb2.GetAgentExecutionRequest(name=w.agent_execution)),
    Row("AgentExecutionService.ListAgentExecutions", VIEWER_UP, OK,
        lambda w: agent_execution_pb2.ListAgentExecutionsRequest(parent=w.migration)),
]  # fmt: skip

VERIFICATION_MATRIX = [
    Row("VerificationService.CreateVerification", MEMBER_UP, OK, lambda w: (
        verification_pb2.CreateVerificationRequest(
            parent=w.migration, verification=verification_pb2.Verification(
                type=verification_pb2.VERIFICATION_TYPE_SCHEMA_PARITY)))),
    Row("VerificationService.GetVerification", VIEWER_UP, OK,
        lambda w: verification_pb2.GetVerificationRequest(name=w.verification)),
    Row("VerificationService.ListVerifications", VIEWER_UP, OK,
        lambda w: verification_pb2.ListVerificationsRequest(parent=w.migration)),
    Row("VerificationService.WatchVerification", VIEWER_UP, OK,
        lambda w: verification_pb2.WatchVerificationRequest(name=w.verification)),
    Row("VerificationService.GetCertificate", VIEWER_UP, grpc.StatusCode.NOT_FOUND,
        lambda w: verification_pb2.GetCertificateRequest(
            name=f"{w.org}/certificates/{uuid.uuid4()}")),
    Row("VerificationService.VerifyCertificate", EVERYONE, OK,
        lambda w: verification_pb2.VerifyCertificateRequest(envelope=b"{}")),
    Row("VerificationService.ListSigningKeys", EVERYONE, OK,
        lambda w: verification_pb2.ListSigningKeysRequest()),
    Row("VerificationService.RotateSigningKey", PLATFORM, OK,
        lambda w: verification_pb2.RotateSigningKeyRequest()),
    Row("VerificationService.RevokeSigningKey", PLATFORM, grpc.StatusCode.NOT_FOUND,
        lambda w: verification_pb2.RevokeSigningKeyRequest(
            name=f"signingKeys/{'0' * 64}", reason="matrix")),
]  # fmt: skip

PATTERN_MATRIX = [
    Row("PatternService.UpsertPattern", PLATFORM, OK, lambda w: pattern_pb2.UpsertPatternRequest(
        fingerprint=f"matrix-{uuid.uuid4().hex}", type="matrix", text="ALTER TABLE t ADD c int")),
    Row("PatternService.GetPattern", PLATFORM_READ, OK,
        lambda w: pattern_pb2.GetPatternRequest(name=w.pattern)),
    Row("PatternService.ListPatterns", PLATFORM_READ, OK,
        lambda w: pattern_pb2.ListPatternsRequest(page_size=5)),
    Row("PatternService.DeletePattern", PLATFORM, grpc.StatusCode.NOT_FOUND,
        lambda w: pattern_pb2.DeletePatternRequest(name=f"patterns/{uuid.uuid4()}")),
    # Counted once for the (pattern, migration) pair; every admitted repeat answers OK.
    Row("PatternService.RecordPatternOutcome", MEMBER_UP, OK,
        lambda w: pattern_pb2.RecordPatternOutcomeRequest(
            name=w.pattern, outcome=pattern_pb2.PATTERN_OUTCOME_SUCCESS, migration=w.migration)),
    Row("PatternService.SearchPatterns", PLATFORM_READ, OK,
        lambda w: pattern_pb2.SearchPatternsRequest(text="rename column", top_k=3)),
    Row("PatternService.ReindexPatterns", PLATFORM, OK,
        lambda w: pattern_pb2.ReindexPatternsRequest()),
    Row("PatternService.GetPatternIndex", PLATFORM_READ, OK,
        lambda w: pattern_pb2.GetPatternIndexRequest()),
]  # fmt: skip

MATRICES = {
    "migration": MIGRATION_MATRIX,
    "verification": VERIFICATION_MATRIX,
    "pattern": PATTERN_MATRIX,
}
RPCS = {rpc.id: rpc for rpc in all_rpcs()}


@pytest.mark.parametrize("server", sorted(MATRICES))
def test_the_matrix_covers_every_rpc_of(server: str) -> None:
    served = {rpc_id for rpc_id, rpc in RPCS.items() if rpc.server == server}
    assert {row.rpc for row in MATRICES[server]} == served


async def _people(stack: Stack, world: World) -> dict[str, Identity | None]:
    """Callers of every role in the world's organization."""
    people: dict[str, Identity | None] = {
        role: await stack.suite.user(role, world.owner.org_id)
        for role in ("VIEWER", "MEMBER", "ADMIN")
    }
    people["OWNER"] = world.owner
    people["SERVICE"] = stack.service
    people["OPERATOR"] = await stack.suite.operator()
    people["NONE"] = None
    return people


async def call(stack: Stack, rpc: Rpc, request: Message, who: Identity | None) -> grpc.StatusCode:
    """The status `who` gets for `request` (a stream: OK once its first message came)."""
    outcome = await call_raw(
        stack.channel(rpc.server),
        rpc,
        request.SerializeToString(),
        who.metadata if who else (),
        stream_seconds=5,
        until_first=True,
    )
    return outcome.code


@pytest.mark.parametrize("server", sorted(MATRICES))
async def test_every_role_against_every_rpc_of(stack: Stack, server: str) -> None:
    world = await make_world(stack)
    people = await _people(stack, world)
    mismatches = []
    for row in MATRICES[server]:
        rpc = RPCS[row.rpc]
        for role in ROLES:
            got = await call(stack, rpc, row.request(world), people[role])
            if role in row.allowed:
                if row.admitted == ADMITTED:
                    fine = got not in {DENIED, UNAUTHENTICATED, *NEVER}
                else:
                    fine = got == row.admitted
                expected = str(row.admitted)
            else:
                expected_code = UNAUTHENTICATED if role == "NONE" else DENIED
                fine = got == expected_code
                expected = str(expected_code)
            if not fine:
                mismatches.append(f"{row.rpc} as {role}: got {got}, expected {expected}")
    assert not mismatches, "\n".join(mismatches)


# --- tenant isolation -------------------------------------------------------------------

# RPCs that are not org-scoped, and why. A new RPC without an org field fails the test
# below until it is listed here with its reason.
GLOBAL_BY_DESIGN = {
    "OrganizationService.CreateOrganization": "platform principals only",
    "OrganizationService.LookupOrganization": "by slug; the handler refuses other orgs",
    "OrganizationService.ListOrganizations": "lists the caller's own organization only",
    "AuthService.ExchangeApiKey": "public: the API key is the credential",
    "AuthService.GetJwks": "public keys",
    "AuthService.RotateTokenSigningKey": "platform principals only",
    "AuthService.CreateServiceAccount": "platform principals only",
    "AuthService.WatchTokenRevocations": "service principals only: the revocation feed",
    "AuditService.AppendAuditEvents": "service principals only",
    "VerificationService.VerifyCertificate": "public: checks bytes the caller sends",
    "VerificationService.ListSigningKeys": "public keys",
    "VerificationService.RotateSigningKey": "platform-wide key: platform principals only",
    "VerificationService.RevokeSigningKey": "platform-wide key: platform principals only",
    **{
        rpc_id: "patterns are global to the platform; writes are platform principals' only"
        for rpc_id in RPCS
        # An outcome names a migration of the caller's organization: org-scoped.
        if rpc_id.startswith("PatternService.") and rpc_id != "PatternService.RecordPatternOutcome"
    },
}


def test_every_rpc_is_org_scoped_unless_global_by_design() -> None:
    unscoped = {rpc_id for rpc_id, rpc in RPCS.items() if not rpc.org_scoped}
    assert unscoped == set(GLOBAL_BY_DESIGN)


def _victim_name(world: World, rpc: Rpc) -> str:
    """The victim's resource that the RPC's org field would name."""
    field = rpc.rule.org_field.rsplit(".", 1)[-1]
    method = rpc.method.name
    if method in {"GetMigrationConnections", "WatchMigration", "ReportProgress"}:
        return world.migration
    if field == "parent":
        if method.endswith(("Schema", "Schemas", "AgentExecution", "AgentExecutions")):
            return world.migration
        if method.endswith(("Verification", "Verifications")):
            return world.migration
        return world.org
    by_suffix = {
        "AgentExecution": world.agent_execution,
        "Schema": world.schema,
        "Schemas": world.schema,
        "Verification": world.verification,
        "Certificate": f"{world.org}/certificates/{uuid.uuid4()}",
        "User": world.user,
        "ApiKey": world.api_key,
        "Organization": world.org,
    }
    for suffix, name in by_suffix.items():
        if method.endswith(suffix):
            return name
    return world.migration


def _request_naming(rpc: Rpc, name: str) -> Message:
    """A request of `rpc` whose org field (a dotted path) holds `name`, nothing else set."""
    from google.protobuf import message_factory

    request = message_factory.GetMessageClass(rpc.method.input_type)()
    target: Any = request
    *parents, last = rpc.rule.org_field.split(".")
    for part in parents:
        target = getattr(target, part)
    setattr(target, last, name)
    return request


async def test_another_organizations_callers_are_denied_on_every_org_scoped_rpc(
    stack: Stack,
) -> None:
    victim = await make_world(stack)
    before = await _snapshot(stack, victim)
    intruder_world = await make_world(stack)
    # The operator is outside every tenant, so it is refused like another tenant's callers.
    # Service accounts are platform code and pass org-scoped rules by design (allow_service);
    # the matrix above pins exactly which RPCs admit them.
    intruders = [
        intruder_world.owner,
        await stack.suite.user("ADMIN", intruder_world.owner.org_id),
        await stack.suite.operator(),
    ]
    scoped = [rpc for rpc in RPCS.values() if rpc.org_scoped]
    assert len(scoped) == len(RPCS) - len(GLOBAL_BY_DESIGN)
    failures = []
    for rpc in scoped:
        request = _request_naming(rpc, _victim_name(victim, rpc))
        for intruder in intruders:
            got = await call(stack, rpc, request, intruder)
            if got != DENIED:
                failures.append(f"{rpc.id} as {intruder.role} of another org: {got}")
    assert not failures, "\n".join(failures)
    assert await _snapshot(stack, victim) == before


async def test_a_reference_to_another_organizations_resource_is_refused(stack: Stack) -> None:
    victim = await make_world(stack)
    me = await make_world(stack)
    cases = [
        # My API key for their user.
        (
            RPCS["UserService.CreateApiKey"],
            _api_key_request(me.org, victim.user),
        ),
        # My schema diffed against theirs.
        (
            RPCS["SchemaService.DiffSchemas"],
            schema_pb2.DiffSchemasRequest(base_schema=me.schema, target_schema=victim.schema),
        ),
    ]
    for rpc, request in cases:
        got = await call(stack, rpc, request, me.owner)
        assert got in {DENIED, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT}, (
            f"{rpc.id}: {got}"
        )


def _api_key_request(org: str, user: str) -> Message:
    from sensei.org.v1 import user_pb2

    return user_pb2.CreateApiKeyRequest(
        parent=org, api_key=user_pb2.ApiKey(user=user, display_name="intruder")
    )


async def _snapshot(stack: Stack, world: World) -> dict[str, Any]:
    """What the victim organization holds, as the database has it."""
    org_id = uuid.UUID(world.owner.org_id)
    return {
        "migrations": await stack.fetchval(
            "migration",
            "SELECT string_agg(id::text || status || display_name || description"
            " || progress, ',' ORDER BY id) FROM migrations WHERE org_id = $1",
            org_id,
        ),
        "schemas": await stack.fetchval(
            "migration",
            "SELECT count(*) FROM schemas s JOIN migrations m ON m.id = s.migration_id"
            " WHERE m.org_id = $1",
            org_id,
        ),
        "verifications": await stack.fetchval(
            "verification", "SELECT count(*) FROM verifications WHERE org_id = $1", org_id
        ),
        "users": await stack.fetchval(
            "org",
            "SELECT string_agg(id::text || role || display_name || version, ',' ORDER BY id)"
            " FROM users WHERE org_id = $1",
            org_id,
        ),
        "api_keys": await stack.fetchval(
            "org",
            "SELECT count(*) FILTER (WHERE revoked_at IS NULL) FROM api_keys k"
            " JOIN users u ON u.id = k.user_id WHERE u.org_id = $1",
            org_id,
        ),
        "organization": await stack.fetchval(
            "org",
            "SELECT display_name || plan || version::text FROM organizations WHERE id = $1",
            org_id,
        ),
    }


async def test_one_organizations_admin_cannot_invalidate_anothers_certificates(
    stack: Stack, make_sample_database: Callable[[], Awaitable[str]]
) -> None:
    from tests.verification.conftest import connection_config

    migrations = stack.stub("migration", migration_pb2_grpc.MigrationServiceStub)
    verifications = stack.stub("verification", verification_pb2_grpc.VerificationServiceStub)
    _, victim = await stack.suite.new_org("ENTERPRISE")
    source, target = await make_sample_database(), await make_sample_database()
    migration = await migrations.CreateMigration(
        migration_pb2.CreateMigrationRequest(
            parent=victim.org_name,
            migration=migration_pb2.Migration(
                display_name="certified",
                source_config=struct(connection_config(source)),
                target_config=struct(connection_config(target)),
            ),
        ),
        metadata=victim.metadata,
    )
    created = await verifications.CreateVerification(
        verification_pb2.CreateVerificationRequest(
            parent=migration.migration.name,
            verification=verification_pb2.Verification(
                type=verification_pb2.VERIFICATION_TYPE_ROW_COUNT
            ),
        ),
        metadata=victim.metadata,
    )
    finished = None
    async for change in verifications.WatchVerification(
        verification_pb2.WatchVerificationRequest(name=created.verification.name),
        metadata=victim.metadata,
        timeout=30,
    ):
        finished = change.verification
    assert finished is not None and finished.certificate
    certificate = await verifications.GetCertificate(
        verification_pb2.GetCertificateRequest(name=finished.certificate),
        metadata=victim.metadata,
    )

    # Signing keys are platform-wide: no tenant role, not even another org's OWNER, may
    # rotate or revoke them (LEVEL_PLATFORM).
    _, intruder_owner = await stack.suite.new_org("FREE")
    intruder_admin = await stack.suite.user("ADMIN", intruder_owner.org_id)
    key = f"signingKeys/{certificate.certificate.key_id}"
    for intruder in (intruder_admin, intruder_owner):
        for attempt in (
            verifications.RevokeSigningKey(
                verification_pb2.RevokeSigningKeyRequest(name=key, reason="sabotage"),
                metadata=intruder.metadata,
            ),
            verifications.RotateSigningKey(
                verification_pb2.RotateSigningKeyRequest(), metadata=intruder.metadata
            ),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await attempt
            assert caught.value.code() == DENIED
    verdict = await verifications.VerifyCertificate(
        verification_pb2.VerifyCertificateRequest(envelope=certificate.certificate.envelope)
    )
    assert verdict.validity == verification_pb2.CERTIFICATE_VALIDITY_VALID


async def test_the_operator_reaches_no_tenant_data_and_no_service_rpc(stack: Stack) -> None:
    from sensei.org.v1 import audit_pb2, audit_pb2_grpc, user_pb2, user_pb2_grpc

    world = await make_world(stack)
    operator = await stack.suite.operator()
    migrations = stack.stub("migration", migration_pb2_grpc.MigrationServiceStub)
    users = stack.stub("org", user_pb2_grpc.UserServiceStub)
    audit = stack.stub("org", audit_pb2_grpc.AuditServiceStub)
    calls: list[Awaitable[Any]] = [
        # Tenant data.
        migrations.GetMigration(
            migration_pb2.GetMigrationRequest(name=world.migration), metadata=operator.metadata
        ),
        users.ListUsers(user_pb2.ListUsersRequest(parent=world.org), metadata=operator.metadata),
        # LEVEL_SERVICE: connection secrets in clear, audit delivery.
        migrations.GetMigrationConnections(
            migration_pb2.GetMigrationConnectionsRequest(name=world.migration),
            metadata=operator.metadata,
        ),
        audit.AppendAuditEvents(audit_pb2.AppendAuditEventsRequest(), metadata=operator.metadata),
    ]
    for attempt in calls:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await attempt
        assert caught.value.code() == DENIED
        assert error_info(caught.value).reason == "OPERATOR_NOT_ALLOWED"
