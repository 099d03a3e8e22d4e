"""Wiring of the org service: its servicers, its token authority and its own key source.

The org service verifies access tokens with the public keys in its own database
(`LocalKeySource`), so it never calls itself; the other services fetch the same keys
over `AuthService.GetJwks`.
"""

from __future__ import annotations

from pathlib import Path

from sensei.org.v1 import audit_pb2, auth_pb2_grpc, organization_pb2_grpc, user_pb2_grpc
from services.org.authority import LocalKeySource, TokenAuthority
from services.org.servicer import AuthServicer, OrganizationServicer, UserServicer
from services.org.tenancy import Tenancy
from services.org.tokens import KeyVault, TokenSigner, token_ttl
from shared.pagination import PageTokens
from shared.server import ServiceContext, ServiceDefinition

SERVICE_NAMES = (
    "sensei.org.v1.OrganizationService",
    "sensei.org.v1.UserService",
    "sensei.org.v1.AuthService",
    audit_pb2.DESCRIPTOR.services_by_name["AuditService"].full_name,
)


async def setup(ctx: ServiceContext) -> None:
    """Registers the servicers; makes sure a token signing key exists."""
    signer = TokenSigner(
        KeyVault.from_setting(ctx.config.setting("KEY_ENCRYPTION_KEY")),
        token_ttl(ctx.config.setting("TOKEN_TTL_SECONDS")),
    )
    authority = TokenAuthority(ctx.pool, signer)
    await authority.ensure_signing_key()
    tenancy = Tenancy(ctx.pool, PageTokens(ctx.config.page_token_secret))
    ctx.key_source = LocalKeySource(ctx.pool)
    ctx.add_servicer(
        organization_pb2_grpc.add_OrganizationServiceServicer_to_server,
        OrganizationServicer(tenancy),
    )
    ctx.add_servicer(user_pb2_grpc.add_UserServiceServicer_to_server, UserServicer(tenancy))
    ctx.add_servicer(auth_pb2_grpc.add_AuthServiceServicer_to_server, AuthServicer(authority))


DEFINITION = ServiceDefinition(
    name="org",
    service_names=SERVICE_NAMES,
    package_dir=Path(__file__).parent,
    setup=setup,
)
