"""gRPC servicers of the org service: request → use case → response. No rules, no SQL.

Messages are read and built in messages.py; a servicer only wraps a mapped resource in its
response message.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TypeAlias

import grpc

from sensei.org.v1 import (
    auth_pb2,
    auth_pb2_grpc,
    organization_pb2,
    organization_pb2_grpc,
    user_pb2,
    user_pb2_grpc,
)
from services.org import messages
from services.org.messages import api_key_proto, jwk_proto, organization_proto, user_proto
from services.org.use_cases import ApiKeys, Organizations, RevocationFeed, TokenAuthority, Users

_CONTEXT: TypeAlias = grpc.aio.ServicerContext


class OrganizationServicer(organization_pb2_grpc.OrganizationServiceServicer):
    """sensei.org.v1.OrganizationService."""

    def __init__(self, organizations: Organizations) -> None:
        self._organizations = organizations

    async def CreateOrganization(
        self, request: organization_pb2.CreateOrganizationRequest, context: _CONTEXT
    ) -> organization_pb2.CreateOrganizationResponse:
        draft, violations = messages.organization_draft_of(request)
        return await self._organizations.create_organization(
            draft,
            request,
            organization_pb2.CreateOrganizationResponse,
            messages.create_organization_response,
            violations,
        )

    async def GetOrganization(
        self, request: organization_pb2.GetOrganizationRequest, context: _CONTEXT
    ) -> organization_pb2.GetOrganizationResponse:
        org = await self._organizations.get_organization(request.name)
        return organization_pb2.GetOrganizationResponse(organization=organization_proto(org))

    async def LookupOrganization(
        self, request: organization_pb2.LookupOrganizationRequest, context: _CONTEXT
    ) -> organization_pb2.LookupOrganizationResponse:
        org = await self._organizations.lookup_organization(request.slug)
        return organization_pb2.LookupOrganizationResponse(organization=organization_proto(org))

    async def ListOrganizations(
        self, request: organization_pb2.ListOrganizationsRequest, context: _CONTEXT
    ) -> organization_pb2.ListOrganizationsResponse:
        plan = messages.plan_name(request.plan) or None
        page = await self._organizations.list_organizations(
            request.page_size, request.page_token, plan
        )
        return organization_pb2.ListOrganizationsResponse(
            organizations=[organization_proto(org) for org in page.items],
            next_page_token=page.next_page_token,
        )

    async def UpdateOrganization(
        self, request: organization_pb2.UpdateOrganizationRequest, context: _CONTEXT
    ) -> organization_pb2.UpdateOrganizationResponse:
        patch, violations = messages.organization_patch_of(request)
        updated = await self._organizations.update_organization(
            request.organization.name, patch, violations
        )
        return organization_pb2.UpdateOrganizationResponse(organization=organization_proto(updated))

    async def DeleteOrganization(
        self, request: organization_pb2.DeleteOrganizationRequest, context: _CONTEXT
    ) -> organization_pb2.DeleteOrganizationResponse:
        await self._organizations.delete_organization(request.name, request.etag)
        return organization_pb2.DeleteOrganizationResponse()


class UserServicer(user_pb2_grpc.UserServiceServicer):
    """sensei.org.v1.UserService."""

    def __init__(self, users: Users, api_keys: ApiKeys) -> None:
        self._users = users
        self._api_keys = api_keys

    async def CreateUser(
        self, request: user_pb2.CreateUserRequest, context: _CONTEXT
    ) -> user_pb2.CreateUserResponse:
        return await self._users.create_user(
            request.parent,
            messages.user_draft_of(request),
            request,
            user_pb2.CreateUserResponse,
            messages.create_user_response,
        )

    async def GetUser(
        self, request: user_pb2.GetUserRequest, context: _CONTEXT
    ) -> user_pb2.GetUserResponse:
        return user_pb2.GetUserResponse(user=user_proto(await self._users.get_user(request.name)))

    async def ListUsers(
        self, request: user_pb2.ListUsersRequest, context: _CONTEXT
    ) -> user_pb2.ListUsersResponse:
        role = messages.role_name(request.role) or None
        page = await self._users.list_users(
            request.parent, request.page_size, request.page_token, role
        )
        return user_pb2.ListUsersResponse(
            users=[user_proto(user) for user in page.items],
            next_page_token=page.next_page_token,
        )

    async def UpdateUser(
        self, request: user_pb2.UpdateUserRequest, context: _CONTEXT
    ) -> user_pb2.UpdateUserResponse:
        updated = await self._users.update_user(request.user.name, messages.user_patch_of(request))
        return user_pb2.UpdateUserResponse(user=user_proto(updated))

    async def DeleteUser(
        self, request: user_pb2.DeleteUserRequest, context: _CONTEXT
    ) -> user_pb2.DeleteUserResponse:
        await self._users.delete_user(request.name, request.etag)
        return user_pb2.DeleteUserResponse()

    async def CreateApiKey(
        self, request: user_pb2.CreateApiKeyRequest, context: _CONTEXT
    ) -> user_pb2.CreateApiKeyResponse:
        return await self._api_keys.create_api_key(
            request.parent,
            messages.api_key_draft_of(request),
            request,
            user_pb2.CreateApiKeyResponse,
            messages.create_api_key_response,
        )

    async def ListApiKeys(
        self, request: user_pb2.ListApiKeysRequest, context: _CONTEXT
    ) -> user_pb2.ListApiKeysResponse:
        page = await self._api_keys.list_api_keys(
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
        key = await self._api_keys.revoke_api_key(request.name)
        return user_pb2.RevokeApiKeyResponse(api_key=api_key_proto(key))


class AuthServicer(auth_pb2_grpc.AuthServiceServicer):
    """sensei.org.v1.AuthService."""

    def __init__(self, authority: TokenAuthority, feed: RevocationFeed) -> None:
        self._authority = authority
        self._feed = feed

    async def ExchangeApiKey(
        self, request: auth_pb2.ExchangeApiKeyRequest, context: _CONTEXT
    ) -> auth_pb2.ExchangeApiKeyResponse:
        return messages.exchange_response(await self._authority.exchange(request.api_key))

    async def GetJwks(
        self, request: auth_pb2.GetJwksRequest, context: _CONTEXT
    ) -> auth_pb2.GetJwksResponse:
        return messages.jwks_response(await self._authority.published_keys())

    async def RotateTokenSigningKey(
        self, request: auth_pb2.RotateTokenSigningKeyRequest, context: _CONTEXT
    ) -> auth_pb2.RotateTokenSigningKeyResponse:
        return auth_pb2.RotateTokenSigningKeyResponse(key=jwk_proto(await self._authority.rotate()))

    async def CreateServiceAccount(
        self, request: auth_pb2.CreateServiceAccountRequest, context: _CONTEXT
    ) -> auth_pb2.CreateServiceAccountResponse:
        created = await self._authority.create_service_account(request.service_account.display_name)
        return messages.create_service_account_response(created)

    async def WatchTokenRevocations(
        self, request: auth_pb2.WatchTokenRevocationsRequest, context: _CONTEXT
    ) -> AsyncIterator[auth_pb2.WatchTokenRevocationsResponse]:
        async for batch in self._feed.batches(request.after_sequence):
            yield messages.revocations_response(batch, self._feed.heartbeat_seconds)
