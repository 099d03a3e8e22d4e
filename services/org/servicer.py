"""gRPC servicers of the org service: protos in, domain calls, protos out. No rules here."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import TypeAlias

import grpc
from google.protobuf import duration_pb2

from sensei.org.v1 import (
    auth_pb2,
    auth_pb2_grpc,
    organization_pb2,
    organization_pb2_grpc,
    user_pb2,
    user_pb2_grpc,
)
from services.org.authority import TokenAuthority
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
from services.org.revocations import RevocationFeed
from services.org.tenancy import CreatedApiKey, Tenancy
from services.org.tokens import Jwk, jwks_json
from shared import protoconv
from shared.errors import FieldViolation, InvalidArgument

_CONTEXT: TypeAlias = grpc.aio.ServicerContext


# --- mapping --------------------------------------------------------------------------


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


def _expire_time(key: user_pb2.ApiKey) -> datetime | None:
    return protoconv.to_datetime(key.expire_time) if key.HasField("expire_time") else None


# --- servicers ------------------------------------------------------------------------


class OrganizationServicer(organization_pb2_grpc.OrganizationServiceServicer):
    """sensei.org.v1.OrganizationService."""

    def __init__(self, tenancy: Tenancy) -> None:
        self._tenancy = tenancy

    async def CreateOrganization(
        self, request: organization_pb2.CreateOrganizationRequest, context: _CONTEXT
    ) -> organization_pb2.CreateOrganizationResponse:
        violations: list[FieldViolation] = []
        org = request.organization
        draft = OrganizationDraft(
            display_name=org.display_name,
            slug=org.slug,
            plan=plan_name(org.plan),
            settings=settings_of(org, violations),
        )
        return await self._tenancy.create_organization(
            draft,
            request,
            organization_pb2.CreateOrganizationResponse,
            lambda created: organization_pb2.CreateOrganizationResponse(
                organization=organization_proto(created)
            ),
            violations,
        )

    async def GetOrganization(
        self, request: organization_pb2.GetOrganizationRequest, context: _CONTEXT
    ) -> organization_pb2.GetOrganizationResponse:
        org = await self._tenancy.get_organization(request.name)
        return organization_pb2.GetOrganizationResponse(organization=organization_proto(org))

    async def LookupOrganization(
        self, request: organization_pb2.LookupOrganizationRequest, context: _CONTEXT
    ) -> organization_pb2.LookupOrganizationResponse:
        org = await self._tenancy.lookup_organization(request.slug)
        return organization_pb2.LookupOrganizationResponse(organization=organization_proto(org))

    async def ListOrganizations(
        self, request: organization_pb2.ListOrganizationsRequest, context: _CONTEXT
    ) -> organization_pb2.ListOrganizationsResponse:
        plan = plan_name(request.plan) or None
        page = await self._tenancy.list_organizations(request.page_size, request.page_token, plan)
        return organization_pb2.ListOrganizationsResponse(
            organizations=[organization_proto(org) for org in page.items],
            next_page_token=page.next_page_token,
        )

    async def UpdateOrganization(
        self, request: organization_pb2.UpdateOrganizationRequest, context: _CONTEXT
    ) -> organization_pb2.UpdateOrganizationResponse:
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
        extra = violations if "settings" in patch.paths else []
        updated = await self._tenancy.update_organization(org.name, patch, extra)
        return organization_pb2.UpdateOrganizationResponse(organization=organization_proto(updated))

    async def DeleteOrganization(
        self, request: organization_pb2.DeleteOrganizationRequest, context: _CONTEXT
    ) -> organization_pb2.DeleteOrganizationResponse:
        await self._tenancy.delete_organization(request.name, request.etag)
        return organization_pb2.DeleteOrganizationResponse()


class UserServicer(user_pb2_grpc.UserServiceServicer):
    """sensei.org.v1.UserService."""

    def __init__(self, tenancy: Tenancy) -> None:
        self._tenancy = tenancy

    async def CreateUser(
        self, request: user_pb2.CreateUserRequest, context: _CONTEXT
    ) -> user_pb2.CreateUserResponse:
        user = request.user
        draft = UserDraft(
            email=user.email,
            display_name=user.display_name,
            role=role_name(user.role),
            avatar_url=user.avatar_url,
        )
        return await self._tenancy.create_user(
            request.parent,
            draft,
            request,
            user_pb2.CreateUserResponse,
            lambda created: user_pb2.CreateUserResponse(user=user_proto(created)),
        )

    async def GetUser(
        self, request: user_pb2.GetUserRequest, context: _CONTEXT
    ) -> user_pb2.GetUserResponse:
        return user_pb2.GetUserResponse(user=user_proto(await self._tenancy.get_user(request.name)))

    async def ListUsers(
        self, request: user_pb2.ListUsersRequest, context: _CONTEXT
    ) -> user_pb2.ListUsersResponse:
        page = await self._tenancy.list_users(
            request.parent, request.page_size, request.page_token, role_name(request.role) or None
        )
        return user_pb2.ListUsersResponse(
            users=[user_proto(user) for user in page.items],
            next_page_token=page.next_page_token,
        )

    async def UpdateUser(
        self, request: user_pb2.UpdateUserRequest, context: _CONTEXT
    ) -> user_pb2.UpdateUserResponse:
        user = request.user
        patch = UserPatch(
            paths=list(request.update_mask.paths),
            email=user.email,
            display_name=user.display_name,
            role=role_name(user.role),
            avatar_url=user.avatar_url,
            etag=user.etag,
        )
        updated = await self._tenancy.update_user(user.name, patch)
        return user_pb2.UpdateUserResponse(user=user_proto(updated))

    async def DeleteUser(
        self, request: user_pb2.DeleteUserRequest, context: _CONTEXT
    ) -> user_pb2.DeleteUserResponse:
        await self._tenancy.delete_user(request.name, request.etag)
        return user_pb2.DeleteUserResponse()

    async def CreateApiKey(
        self, request: user_pb2.CreateApiKeyRequest, context: _CONTEXT
    ) -> user_pb2.CreateApiKeyResponse:
        key = request.api_key
        draft = ApiKeyDraft(
            user_name=key.user, display_name=key.display_name, expires_at=_expire_time(key)
        )

        def respond(created: CreatedApiKey) -> user_pb2.CreateApiKeyResponse:
            return user_pb2.CreateApiKeyResponse(
                api_key=api_key_proto(created.key), secret=created.secret or ""
            )

        return await self._tenancy.create_api_key(
            request.parent,
            draft,
            request,
            user_pb2.CreateApiKeyResponse,
            respond,
        )

    async def ListApiKeys(
        self, request: user_pb2.ListApiKeysRequest, context: _CONTEXT
    ) -> user_pb2.ListApiKeysResponse:
        page = await self._tenancy.list_api_keys(
            request.parent,
            request.page_size,
            request.page_token,
            request.user,
            request.show_revoked,
        )
        return user_pb2.ListApiKeysResponse(
            api_keys=[api_key_proto(key) for key in page.items],
            next_page_token=page.next_page_token,
        )

    async def RevokeApiKey(
        self, request: user_pb2.RevokeApiKeyRequest, context: _CONTEXT
    ) -> user_pb2.RevokeApiKeyResponse:
        key = await self._tenancy.revoke_api_key(request.name)
        return user_pb2.RevokeApiKeyResponse(api_key=api_key_proto(key))


class AuthServicer(auth_pb2_grpc.AuthServiceServicer):
    """sensei.org.v1.AuthService."""

    def __init__(self, authority: TokenAuthority, feed: RevocationFeed) -> None:
        self._authority = authority
        self._feed = feed

    async def ExchangeApiKey(
        self, request: auth_pb2.ExchangeApiKeyRequest, context: _CONTEXT
    ) -> auth_pb2.ExchangeApiKeyResponse:
        token = await self._authority.exchange(request.api_key)
        return auth_pb2.ExchangeApiKeyResponse(
            access_token=token.token,
            token_type="Bearer",
            expire_time=protoconv.timestamp(token.expires_at),
        )

    async def GetJwks(
        self, request: auth_pb2.GetJwksRequest, context: _CONTEXT
    ) -> auth_pb2.GetJwksResponse:
        keys = await self._authority.published_keys()
        return auth_pb2.GetJwksResponse(
            keys=[jwk_proto(key) for key in keys], jwks_json=jwks_json(keys)
        )

    async def RotateTokenSigningKey(
        self, request: auth_pb2.RotateTokenSigningKeyRequest, context: _CONTEXT
    ) -> auth_pb2.RotateTokenSigningKeyResponse:
        return auth_pb2.RotateTokenSigningKeyResponse(key=jwk_proto(await self._authority.rotate()))

    async def CreateServiceAccount(
        self, request: auth_pb2.CreateServiceAccountRequest, context: _CONTEXT
    ) -> auth_pb2.CreateServiceAccountResponse:
        created = await self._authority.create_service_account(request.service_account.display_name)
        return auth_pb2.CreateServiceAccountResponse(
            service_account=service_account_proto(created.account), api_key=created.secret
        )

    async def WatchTokenRevocations(
        self, request: auth_pb2.WatchTokenRevocationsRequest, context: _CONTEXT
    ) -> AsyncIterator[auth_pb2.WatchTokenRevocationsResponse]:
        if request.after_sequence < 0:
            raise InvalidArgument.single("after_sequence", "must not be negative")
        heartbeat = duration_pb2.Duration()
        heartbeat.FromTimedelta(timedelta(seconds=self._feed.heartbeat_seconds))
        async for batch in self._feed.batches(request.after_sequence):
            yield auth_pb2.WatchTokenRevocationsResponse(
                revocations=[revocation.to_proto() for revocation in batch.revocations],
                sequence=batch.sequence,
                caught_up=batch.caught_up,
                send_time=protoconv.timestamp(batch.sent_at),
                heartbeat_interval=heartbeat,
            )
