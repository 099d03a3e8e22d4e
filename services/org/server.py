"""Wiring of the org service: its servicers, its token authority and its own key source.

The org service verifies access tokens with the public keys in its own database
(`LocalKeySource`), so it never calls itself; the other services fetch the same keys
over `AuthService.GetJwks`. Likewise its own audit events go from its outbox straight
into the audit trail (`in_process_delivery`), not over AppendAuditEvents.

Settings (besides the suite-wide ones of shared/config.py):
`SENSEI_ORG_KEY_ENCRYPTION_KEY` and `SENSEI_ORG_TOKEN_TTL_SECONDS` (see tokens.py),
`SENSEI_ORG_AUDIT_CHECKPOINT_EVERY` (sign a chain's head once it grew by this many
entries, default 100) and `SENSEI_ORG_AUDIT_CHECKPOINT_SECONDS` (also sign every chain
that grew, this often, default 60).
"""

from __future__ import annotations

import logging
from pathlib import Path

from sensei.org.v1 import (
    audit_pb2,
    audit_pb2_grpc,
    auth_pb2_grpc,
    organization_pb2_grpc,
    user_pb2_grpc,
)
from services.org.audit import store as audit_store
from services.org.audit.servicer import AuditServicer, in_process_delivery
from services.org.audit.use_cases import (
    DEFAULT_CHECKPOINT_EVERY,
    DEFAULT_CHECKPOINT_SECONDS,
    AuditTrail,
)
from services.org.servicer import AuthServicer, OrganizationServicer, UserServicer
from services.org.tokens import KeyVault, TokenSigner, token_ttl
from services.org.use_cases import (
    ApiKeys,
    DatabaseFreshness,
    LocalKeySource,
    Organizations,
    RevocationFeed,
    TokenAuthority,
    Users,
)
from services.org.use_cases.revocations import DEFAULT_HEARTBEAT_SECONDS
from shared.config import ConfigError, ServiceConfig
from shared.pagination import PageTokens
from shared.server import ServiceContext, ServiceDefinition

log = logging.getLogger(__name__)

SERVICE_NAMES = (
    "sensei.org.v1.OrganizationService",
    "sensei.org.v1.UserService",
    "sensei.org.v1.AuthService",
    audit_pb2.DESCRIPTOR.services_by_name["AuditService"].full_name,
)


async def setup(ctx: ServiceContext) -> None:
    """Registers the servicers; makes sure a token signing key exists."""
    ttl = token_ttl(ctx.config.setting("TOKEN_TTL_SECONDS"))
    signer = TokenSigner(KeyVault.from_setting(ctx.config.setting("KEY_ENCRYPTION_KEY")), ttl)
    authority = TokenAuthority(ctx.pool, signer)
    await authority.ensure_signing_key()
    page_tokens = PageTokens(ctx.config.page_token_secret)
    organizations = Organizations(ctx.pool, page_tokens)
    users = Users(ctx.pool, page_tokens)
    api_keys = ApiKeys(ctx.pool, page_tokens)
    trail = AuditTrail(
        ctx.pool,
        signer,
        page_tokens,
        checkpoint_every=checkpoint_every(ctx.config),
        run_as_service_role=await _may_run_as_service_role(ctx),
    )
    ctx.key_source = LocalKeySource(ctx.pool)
    ctx.freshness = DatabaseFreshness(ctx.pool)
    feed = RevocationFeed(
        ctx.pool, ctx.config.database_url, ttl, heartbeat_seconds=heartbeat_seconds(ctx.config)
    )
    ctx.run_in_background(feed.listen_forever(), name="org-revocation-listener")
    ctx.audit_delivery = in_process_delivery(trail)
    ctx.add_servicer(
        organization_pb2_grpc.add_OrganizationServiceServicer_to_server,
        OrganizationServicer(organizations),
    )
    ctx.add_servicer(user_pb2_grpc.add_UserServiceServicer_to_server, UserServicer(users, api_keys))
    ctx.add_servicer(auth_pb2_grpc.add_AuthServiceServicer_to_server, AuthServicer(authority, feed))
    ctx.add_servicer(audit_pb2_grpc.add_AuditServiceServicer_to_server, AuditServicer(trail))
    ctx.run_in_background(
        trail.checkpoint_forever(checkpoint_seconds(ctx.config)), name="org-audit-checkpoints"
    )


def checkpoint_every(config: ServiceConfig) -> int:
    """SENSEI_ORG_AUDIT_CHECKPOINT_EVERY: a positive integer, default 100."""
    raw = config.setting("AUDIT_CHECKPOINT_EVERY")
    if not raw:
        return DEFAULT_CHECKPOINT_EVERY
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError(f"SENSEI_ORG_AUDIT_CHECKPOINT_EVERY must be a positive integer: {raw!r}")
    return value


def heartbeat_seconds(config: ServiceConfig) -> float:
    """SENSEI_ORG_REVOCATION_HEARTBEAT_SECONDS: how often the revocation feed says it is
    alive, a positive number, default 1 (followers fail closed after their own staleness
    bound, SENSEI_REVOCATION_MAX_STALENESS_SECONDS)."""
    raw = config.setting("REVOCATION_HEARTBEAT_SECONDS")
    if not raw:
        return DEFAULT_HEARTBEAT_SECONDS
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not 0 < value <= 60:
        raise ConfigError(
            f"SENSEI_ORG_REVOCATION_HEARTBEAT_SECONDS must be a number in (0, 60]: {raw!r}"
        )
    return value


def checkpoint_seconds(config: ServiceConfig) -> float:
    """SENSEI_ORG_AUDIT_CHECKPOINT_SECONDS: a positive number, default 60."""
    raw = config.setting("AUDIT_CHECKPOINT_SECONDS")
    if not raw:
        return DEFAULT_CHECKPOINT_SECONDS
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise ConfigError(f"SENSEI_ORG_AUDIT_CHECKPOINT_SECONDS must be a positive number: {raw!r}")
    return value


async def _may_run_as_service_role(ctx: ServiceContext) -> bool:
    async with ctx.pool.acquire() as conn:
        allowed = await audit_store.may_assume_service_role(conn)
    if not allowed:
        log.warning(
            "the database user may not assume %s: audit writes run with the connecting"
            " user's privileges (the append-only trigger still applies)",
            audit_store.SERVICE_ROLE,
        )
    return allowed


DEFINITION = ServiceDefinition(
    name="org",
    service_names=SERVICE_NAMES,
    package_dir=Path(__file__).parent,
    setup=setup,
)
