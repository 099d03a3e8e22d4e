"""Proto ⇄ domain mapping of the org service: requests into drafts, domain objects into protos.

Enums travel by name without their prefix (`PLAN_PRO` → `PRO`, unset → ""), so the domain
validates them like any other text. The servicers call these; nothing here decides.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from google.protobuf import duration_pb2

from sensei.org.v1 import auth_pb2, organization_pb2, user_pb2
from services.org.domain import (
    ApiKey,
    ApiKeyDraft,
    Organization,
    OrganizationDraft,
    OrganizationPatch,
    ServiceAccount,
    User,
    UserDraft,
    UserPatch,
)
from services.org.tokens import AccessToken, Jwk, jwks_json
from services.org.use_cases import CreatedApiKey, CreatedServiceAccount, RevocationBatch
from shared import protoconv
from shared.errors import FieldViolation, InvalidArgument

# --- enums and fields -----------------------------------------------------------------


def plan_name(value: int) -> str:
    """`PLAN_PRO` → `PRO`; unset → ""; unknown numbers stay visible for the error."""
    if value == organization_pb2.PLAN_UNSPECIFIED:
        return ""
    try:
        return organization_pb2.Plan.Name(value).removeprefix("PLAN_")  # type: ignore[arg-type]
    except ValueError:
        return f"UNKNOWN({value})"


def role_name(value: int) -> str:
    """`ROLE_ADMIN` → `ADMIN`; unset → ""."""
    if value == user_pb2.ROLE_UNSPECIFIED:
        return ""
    try:
        return user_pb2.Role.Name(value).removeprefix("ROLE_")  # type: ignore[arg-type]
    except ValueError:
        return f"UNKNOWN({value})"


def settings_of(
    organization: organization_pb2.Organization, violations: list[FieldViolation]
) -> dict[str, object]:
    """The settings Struct as a dict; problems go to `violations`."""
    try:
        return protoconv.dict_of(organization.settings, "organization.settings")
    except InvalidArgument as exc:
        violations.extend(exc.violations)
        return {}


def organization_proto(org: Organization) -> organization_pb2.Organization:
    """The API form of an organization."""
    return organization_pb2.Organization(
        name=f"organizations/{org.id}",
        id=org.id,
        display_name=org.display_name,
        slug=org.slug,
        plan=organization_pb2.Plan.Value(f"PLAN_{org.plan.value}"),
        settings=protoconv.struct_of(dict(org.settings)),
        create_time=protoconv.timestamp(org.created_at),
        update_time=protoconv.timestamp(org.updated_at),
        etag=org.etag,
    )


def user_proto(user: User) -> user_pb2.User:
    """The API form of a user."""
    return user_pb2.User(
        name=f"organizations/{user.org_id}/users/{user.id}",
        id=user.id,
        org_id=user.org_id,
        email=user.email,
        display_name=user.display_name,
        role=user_pb2.Role.Value(f"ROLE_{user.role.value}"),
        avatar_url=user.avatar_url,
        create_time=protoconv.timestamp(user.created_at),
        update_time=protoconv.timestamp(user.updated_at),
        etag=user.etag,
    )


def api_key_proto(key: ApiKey) -> user_pb2.ApiKey:
    """The API form of a key: metadata only."""
    return user_pb2.ApiKey(
        name=f"organizations/{key.org_id}/apiKeys/{key.id}",
        id=key.id,
        org_id=key.org_id or "",
        user=f"organizations/{key.org_id}/users/{key.user_id}",
        display_name=key.display_name,
        prefix=key.prefix,
        create_time=protoconv.timestamp(key.created_at),
        expire_time=protoconv.timestamp(key.expires_at),
        revoke_time=protoconv.timestamp(key.revoked_at),
        last_use_time=protoconv.timestamp(key.last_used_at),
    )


def service_account_proto(account: ServiceAccount) -> auth_pb2.ServiceAccount:
    """The API form of a service account."""
    return auth_pb2.ServiceAccount(
        name=f"serviceAccounts/{account.id}",
        id=account.id,
        display_name=account.display_name,
        create_time=protoconv.timestamp(account.created_at),
    )


def jwk_proto(jwk: Jwk) -> auth_pb2.Jwk:
    """The API form of a public key."""
    return auth_pb2.Jwk(**jwk.as_dict())


def expire_time(key: user_pb2.ApiKey) -> datetime | None:
    """A key's requested expiry (None: never)."""
    return protoconv.to_datetime(key.expire_time) if key.HasField("expire_time") else None


# --- requests in ----------------------------------------------------------------------


def organization_draft_of(
    request: organization_pb2.CreateOrganizationRequest,
) -> tuple[OrganizationDraft, list[FieldViolation]]:
    """A CreateOrganization request as a draft, and what could not even be read."""
    violations: list[FieldViolation] = []
    org = request.organization
    draft = OrganizationDraft(
        display_name=org.display_name,
        slug=org.slug,
        plan=plan_name(org.plan),
        settings=settings_of(org, violations),
    )
    return draft, violations


def organization_patch_of(
    request: organization_pb2.UpdateOrganizationRequest,
) -> tuple[OrganizationPatch, list[FieldViolation]]:
    """An UpdateOrganization request as a patch, and the unreadable fields it changes."""
    violations: list[FieldViolation] = []
    org = request.organization
    patch = OrganizationPatch(
        paths=list(request.update_mask.paths),
        display_name=org.display_name,
        slug=org.slug,
        plan=plan_name(org.plan),
        settings=settings_of(org, violations),
        etag=org.etag,
    )
    return patch, violations if "settings" in patch.paths else []


def user_draft_of(request: user_pb2.CreateUserRequest) -> UserDraft:
    """A CreateUser request as a draft."""
    user = request.user
    return UserDraft(
        email=user.email,
        display_name=user.display_name,
        role=role_name(user.role),
        avatar_url=user.avatar_url,
    )


def user_patch_of(request: user_pb2.UpdateUserRequest) -> UserPatch:
    """An UpdateUser request as a patch."""
    user = request.user
    return UserPatch(
        paths=list(request.update_mask.paths),
        email=user.email,
        display_name=user.display_name,
        role=role_name(user.role),
        avatar_url=user.avatar_url,
        etag=user.etag,
    )


def api_key_draft_of(request: user_pb2.CreateApiKeyRequest) -> ApiKeyDraft:
    """A CreateApiKey request as a draft."""
    key = request.api_key
    return ApiKeyDraft(
        user_name=key.user, display_name=key.display_name, expires_at=expire_time(key)
    )


# --- responses out --------------------------------------------------------------------


def create_organization_response(
    org: Organization,
) -> organization_pb2.CreateOrganizationResponse:
    """The (replayable) answer to CreateOrganization."""
    return organization_pb2.CreateOrganizationResponse(organization=organization_proto(org))


def create_user_response(user: User) -> user_pb2.CreateUserResponse:
    """The (replayable) answer to CreateUser."""
    return user_pb2.CreateUserResponse(user=user_proto(user))


def create_api_key_response(created: CreatedApiKey) -> user_pb2.CreateApiKeyResponse:
    """The answer to CreateApiKey (the stored one holds no secret)."""
    return user_pb2.CreateApiKeyResponse(
        api_key=api_key_proto(created.key), secret=created.secret or ""
    )


def exchange_response(token: AccessToken) -> auth_pb2.ExchangeApiKeyResponse:
    """The answer to ExchangeApiKey."""
    return auth_pb2.ExchangeApiKeyResponse(
        access_token=token.token,
        token_type="Bearer",
        expire_time=protoconv.timestamp(token.expires_at),
    )


def jwks_response(keys: list[Jwk]) -> auth_pb2.GetJwksResponse:
    """The answer to GetJwks: the keys as messages and as a JWKS document."""
    return auth_pb2.GetJwksResponse(
        keys=[jwk_proto(key) for key in keys], jwks_json=jwks_json(keys)
    )


def create_service_account_response(
    created: CreatedServiceAccount,
) -> auth_pb2.CreateServiceAccountResponse:
    """The answer to CreateServiceAccount, with the account's first API key."""
    return auth_pb2.CreateServiceAccountResponse(
        service_account=service_account_proto(created.account), api_key=created.secret
    )


def revocations_response(
    batch: RevocationBatch, heartbeat_seconds: float
) -> auth_pb2.WatchTokenRevocationsResponse:
    """One message of WatchTokenRevocations."""
    heartbeat = duration_pb2.Duration()
    heartbeat.FromTimedelta(timedelta(seconds=heartbeat_seconds))
    return auth_pb2.WatchTokenRevocationsResponse(
        revocations=[revocation.to_proto() for revocation in batch.revocations],
        sequence=batch.sequence,
        caught_up=batch.caught_up,
        send_time=protoconv.timestamp(batch.sent_at),
        heartbeat_interval=heartbeat,
    )
