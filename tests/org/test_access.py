"""Who may call what: a role × RPC matrix over every org RPC, and tenant isolation.

Roles include the platform principals: SERVICE (service accounts) and OPERATOR (the
platform operator, who changes platform-wide resources and reaches no tenant data).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
import jwt
import pytest
from google.protobuf import field_mask_pb2

from sensei.org.v1 import audit_pb2, auth_pb2, organization_pb2, user_pb2
from services.org.server import SERVICE_NAMES
from tests.harness import Identity
from tests.org.conftest import Org

OK = grpc.StatusCode.OK
DENIED = grpc.StatusCode.PERMISSION_DENIED
UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED
# The call got past access control (its outcome belongs to the RPC's own tests).
ADMITTED = "ADMITTED"

ROLES = ("VIEWER", "MEMBER", "ADMIN", "OWNER", "SERVICE", "OPERATOR", "NONE")
VIEWER_UP = {"VIEWER", "MEMBER", "ADMIN", "OWNER", "SERVICE"}
ADMIN_UP = {"ADMIN", "OWNER", "SERVICE"}
# LEVEL_PLATFORM: platform principals only, no tenant role.
PLATFORM = {"SERVICE", "OPERATOR"}
EVERYONE = set(ROLES)
PLATFORM_CHAIN = "organizations/00000000-0000-0000-0000-000000000000"


@dataclass(frozen=True)
class Target:
    """Names in the organization under test."""

    org_id: str
    slug: str
    owner_api_key: str

    @property
    def org(self) -> str:
        return f"organizations/{self.org_id}"

    def user(self, user_id: str | None = None) -> str:
        return f"{self.org}/users/{user_id or uuid.uuid4()}"

    def key(self) -> str:
        return f"{self.org}/apiKeys/{uuid.uuid4()}"


def _tag() -> str:
    return uuid.uuid4().hex[:10]


@dataclass(frozen=True)
class Row:
    """One RPC: who may call it, what an admitted call returns, how to build the request."""

    service: str
    method: str
    allowed: set[str]
    admitted: grpc.StatusCode | str
    request: Callable[[Target], Any]


MATRIX: list[Row] = [
    Row("OrganizationService", "CreateOrganization", PLATFORM, OK, lambda t: (
        organization_pb2.CreateOrganizationRequest(
            organization=organization_pb2.Organization(display_name="New", slug=f"o-{_tag()}")
        ))),
    Row("OrganizationService", "GetOrganization", VIEWER_UP, OK,
        lambda t: organization_pb2.GetOrganizationRequest(name=t.org)),
    Row("OrganizationService", "LookupOrganization", VIEWER_UP, OK,
        lambda t: organization_pb2.LookupOrganizationRequest(slug=t.slug)),
    Row("OrganizationService", "ListOrganizations", VIEWER_UP, OK,
        lambda t: organization_pb2.ListOrganizationsRequest()),
    Row("OrganizationService", "UpdateOrganization", ADMIN_UP, OK, lambda t: (
        organization_pb2.UpdateOrganizationRequest(
            organization=organization_pb2.Organization(name=t.org, display_name=f"Acme {_tag()}"),
            update_mask=field_mask_pb2.FieldMask(paths=["display_name"]),
        ))),
    # Stale etag: an admitted caller gets ABORTED and the organization survives the test.
    Row("OrganizationService", "DeleteOrganization", {"OWNER"}, grpc.StatusCode.ABORTED,
        lambda t: organization_pb2.DeleteOrganizationRequest(name=t.org, etag="stale")),
    Row("UserService", "CreateUser", ADMIN_UP, OK, lambda t: user_pb2.CreateUserRequest(
        parent=t.org,
        user=user_pb2.User(email=f"m-{_tag()}@example.test", display_name="M",
                           role=user_pb2.ROLE_VIEWER),
    )),
    Row("UserService", "GetUser", VIEWER_UP, grpc.StatusCode.NOT_FOUND,
        lambda t: user_pb2.GetUserRequest(name=t.user())),
    Row("UserService", "ListUsers", VIEWER_UP, OK,
        lambda t: user_pb2.ListUsersRequest(parent=t.org)),
    Row("UserService", "UpdateUser", ADMIN_UP, grpc.StatusCode.NOT_FOUND,
        lambda t: user_pb2.UpdateUserRequest(
            user=user_pb2.User(name=t.user(), display_name="X"),
            update_mask=field_mask_pb2.FieldMask(paths=["display_name"]),
        )),
    Row("UserService", "DeleteUser", ADMIN_UP, grpc.StatusCode.NOT_FOUND,
        lambda t: user_pb2.DeleteUserRequest(name=t.user())),
    Row("UserService", "CreateApiKey", ADMIN_UP, grpc.StatusCode.NOT_FOUND,
        lambda t: user_pb2.CreateApiKeyRequest(
            parent=t.org, api_key=user_pb2.ApiKey(user=t.user(), display_name="k")
        )),
    Row("UserService", "ListApiKeys", ADMIN_UP, OK,
        lambda t: user_pb2.ListApiKeysRequest(parent=t.org)),
    Row("UserService", "RevokeApiKey", ADMIN_UP, grpc.StatusCode.NOT_FOUND,
        lambda t: user_pb2.RevokeApiKeyRequest(name=t.key())),
    Row("AuthService", "ExchangeApiKey", EVERYONE, OK,
        lambda t: auth_pb2.ExchangeApiKeyRequest(api_key=t.owner_api_key)),
    Row("AuthService", "GetJwks", EVERYONE, OK, lambda t: auth_pb2.GetJwksRequest()),
    Row("AuthService", "RotateTokenSigningKey", PLATFORM, OK,
        lambda t: auth_pb2.RotateTokenSigningKeyRequest()),
    Row("AuthService", "CreateServiceAccount", PLATFORM, OK,
        lambda t: auth_pb2.CreateServiceAccountRequest(
            service_account=auth_pb2.ServiceAccount(display_name="svc")
        )),
    # A stream: an admitted caller reads its first batch (the replay).
    Row("AuthService", "WatchTokenRevocations", {"SERVICE"}, OK,
        lambda t: auth_pb2.WatchTokenRevocationsRequest()),
    Row("AuditService", "AppendAuditEvents", {"SERVICE"}, ADMITTED,
        lambda t: audit_pb2.AppendAuditEventsRequest()),
    Row("AuditService", "ListAuditLogs", ADMIN_UP, ADMITTED,
        lambda t: audit_pb2.ListAuditLogsRequest(parent=t.org)),
    Row("AuditService", "VerifyAuditChain", ADMIN_UP, ADMITTED,
        lambda t: audit_pb2.VerifyAuditChainRequest(parent=t.org)),
    Row("AuditService", "GetAuditCheckpoint", ADMIN_UP, ADMITTED,
        lambda t: audit_pb2.GetAuditCheckpointRequest(parent=t.org)),
]  # fmt: skip


def _stub_method(org: Org, row: Row) -> Any:
    stub = {
        "OrganizationService": org.orgs,
        "UserService": org.users,
        "AuthService": org.auth,
        "AuditService": org.audit,
    }[row.service]
    return getattr(stub, row.method)


async def _identities(org: Org) -> dict[str, Identity | None]:
    people: dict[str, Identity | None] = {
        role: await org.suite.user(role) for role in ("VIEWER", "MEMBER", "ADMIN")
    }
    people["OWNER"] = await org.suite.owner()
    people["SERVICE"] = await org.suite.service()
    people["OPERATOR"] = await org.suite.operator()
    people["NONE"] = None
    return people


async def _call(org: Org, row: Row, who: Identity | None, request: Any) -> grpc.StatusCode:
    call = _stub_method(org, row)(request, metadata=who.metadata if who else ())
    try:
        if isinstance(call, grpc.aio.UnaryStreamCall):
            await call.read()
            call.cancel()
        else:
            await call
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return OK


def test_the_matrix_covers_every_org_rpc() -> None:
    from google.protobuf import descriptor_pool

    pool = descriptor_pool.Default()
    declared = {
        (service.split(".")[-1], method.name)
        for service in SERVICE_NAMES
        for method in pool.FindServiceByName(service).methods
    }
    assert {(row.service, row.method) for row in MATRIX} == declared


@pytest.mark.parametrize(
    "service", ["OrganizationService", "UserService", "AuthService", "AuditService"]
)
async def test_every_role_against_every_rpc_of(org: Org, service: str) -> None:
    people = await _identities(org)
    target = Target(org.suite.org_id, "acme", org.suite.owner_api_key)
    mismatches = []
    for row in (row for row in MATRIX if row.service == service):
        for role in ROLES:
            got = await _call(org, row, people[role], row.request(target))
            if role in row.allowed:
                fine = (
                    got not in (DENIED, UNAUTHENTICATED)
                    if row.admitted == ADMITTED
                    else (got == row.admitted)
                )
                expected = str(row.admitted)
            else:
                expected_code = UNAUTHENTICATED if role == "NONE" else DENIED
                fine = got == expected_code
                expected = str(expected_code)
            if not fine:
                mismatches.append(f"{row.method} as {role}: got {got}, expected {expected}")
    assert not mismatches, "\n".join(mismatches)


@pytest.mark.parametrize("service", ["OrganizationService", "UserService", "AuditService"])
async def test_another_organizations_caller_is_denied_on_every_org_scoped_rpc_of(
    org: Org, service: str
) -> None:
    victim = Target(org.suite.org_id, "acme", "")
    victim_user = victim.user(org.suite.owner_user_id)
    _, intruder_owner = await org.suite.new_org()
    intruder_admin = await org.suite.user("ADMIN", intruder_owner.org_id)
    before = await org.count("SELECT count(*) FROM users")
    calls: list[tuple[Any, Any]] = [
        (org.orgs.GetOrganization, organization_pb2.GetOrganizationRequest(name=victim.org)),
        (org.orgs.LookupOrganization, organization_pb2.LookupOrganizationRequest(slug="acme")),
        (org.orgs.UpdateOrganization, organization_pb2.UpdateOrganizationRequest(
            organization=organization_pb2.Organization(name=victim.org, display_name="pwned"),
            update_mask=field_mask_pb2.FieldMask(paths=["display_name"]))),
        (org.orgs.DeleteOrganization, organization_pb2.DeleteOrganizationRequest(name=victim.org)),
        (org.users.CreateUser, user_pb2.CreateUserRequest(
            parent=victim.org, user=user_pb2.User(email="x@evil.test", display_name="X"))),
        (org.users.GetUser, user_pb2.GetUserRequest(name=victim_user)),
        (org.users.ListUsers, user_pb2.ListUsersRequest(parent=victim.org)),
        (org.users.UpdateUser, user_pb2.UpdateUserRequest(
            user=user_pb2.User(name=victim_user, display_name="pwned"),
            update_mask=field_mask_pb2.FieldMask(paths=["display_name"]))),
        (org.users.DeleteUser, user_pb2.DeleteUserRequest(name=victim_user)),
        (org.users.CreateApiKey, user_pb2.CreateApiKeyRequest(
            parent=victim.org, api_key=user_pb2.ApiKey(user=victim_user, display_name="k"))),
        (org.users.ListApiKeys, user_pb2.ListApiKeysRequest(parent=victim.org)),
        (org.users.RevokeApiKey, user_pb2.RevokeApiKeyRequest(name=victim.key())),
        (org.audit.ListAuditLogs, audit_pb2.ListAuditLogsRequest(parent=victim.org)),
        (org.audit.VerifyAuditChain, audit_pb2.VerifyAuditChainRequest(parent=victim.org)),
        (org.audit.GetAuditCheckpoint, audit_pb2.GetAuditCheckpointRequest(parent=victim.org)),
    ]  # fmt: skip
    failures = []
    # The operator is outside every tenant: it is refused exactly like another tenant.
    for intruder in (intruder_owner, intruder_admin, await org.suite.operator()):
        for method, request in calls:
            if f"/sensei.org.v1.{service}/" not in method._method.decode():
                continue
            try:
                await method(request, metadata=intruder.metadata)
                got = OK
            except grpc.aio.AioRpcError as exc:
                got = exc.code()
            if got != DENIED:
                failures.append(f"{method._method.decode()} as {intruder.role}: {got}")
    assert not failures, "\n".join(failures)
    assert await org.count("SELECT count(*) FROM users") == before
    listed = await org.orgs.ListOrganizations(
        organization_pb2.ListOrganizationsRequest(), metadata=intruder_owner.metadata
    )
    assert [o.id for o in listed.organizations] == [intruder_owner.org_id]
    owner = await org.suite.owner()
    still = await org.orgs.GetOrganization(
        organization_pb2.GetOrganizationRequest(name=victim.org), metadata=owner.metadata
    )
    assert still.organization.display_name == "Acme Corp"


async def test_operator_reads_the_platform_chain_and_finds_its_own_events(org: Org) -> None:
    operator = await org.suite.operator()
    created = await org.auth.CreateServiceAccount(
        auth_pb2.CreateServiceAccountRequest(
            service_account=auth_pb2.ServiceAccount(display_name=f"worker-{_tag()}")
        ),
        metadata=operator.metadata,
    )
    await org.audit_settled()
    logs = await org.audit.ListAuditLogs(
        audit_pb2.ListAuditLogsRequest(parent=PLATFORM_CHAIN, page_size=1000),
        metadata=operator.metadata,
    )
    mine = [
        log
        for log in logs.audit_logs
        if log.action == "service_account.create" and log.resource_id == created.service_account.id
    ]
    assert len(mine) == 1
    assert mine[0].actor.startswith("operators/") and not mine[0].user_id
    verified = await org.audit.VerifyAuditChain(
        audit_pb2.VerifyAuditChainRequest(parent=PLATFORM_CHAIN), metadata=operator.metadata
    )
    assert verified.valid


async def test_no_tenant_role_reads_the_platform_chain(org: Org) -> None:
    for role in ("ADMIN", "OWNER"):
        caller = await org.suite.user(role)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await org.audit.ListAuditLogs(
                audit_pb2.ListAuditLogsRequest(parent=PLATFORM_CHAIN), metadata=caller.metadata
            )
        assert caught.value.code() == DENIED


async def test_operator_token_has_no_organization(org: Org) -> None:
    response = await org.auth.ExchangeApiKey(
        auth_pb2.ExchangeApiKeyRequest(api_key=org.suite.operator_api_key)
    )
    claims = jwt.decode(response.access_token, options={"verify_signature": False})
    assert claims["role"] == "OPERATOR"
    assert claims["sub"].startswith("operators/")
    assert "org" not in claims
