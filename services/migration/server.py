"""Wiring of the migration service: config key, org directory, change hub, servicers.

Settings (besides the suite-wide ones of shared/config.py):
`SENSEI_MIGRATION_CONFIG_KEY` (required: base64url of 32 bytes, or several separated by
commas for rotation; see config_cipher.py) and `SENSEI_MIGRATION_PLAN_CACHE_SECONDS`
(how long an organization's plan is cached, default 30). CaptureSchema connects under the
destination policy of shared/destinations.py (`SENSEI_ALLOWED_DESTINATIONS`, `SENSEI_ENV`,
`SENSEI_DESTINATION_CA_FILE`).
"""

from __future__ import annotations

from pathlib import Path

from sensei.migration.v1 import agent_execution_pb2_grpc, migration_pb2_grpc, schema_pb2_grpc
from services.migration import store
from services.migration.config_cipher import ConfigCipher
from services.migration.org_directory import DEFAULT_TTL_SECONDS, OrgDirectory
from services.migration.servicer import (
    AgentExecutionServicer,
    MigrationServicer,
    SchemaServicer,
)
from services.migration.use_cases import AgentExecutions, Migrations, Schemas
from services.migration.watch import ChangeHub, prune_changes_forever
from shared.config import ConfigError
from shared.destinations import DestinationPolicy
from shared.pagination import PageTokens
from shared.server import ServiceContext, ServiceDefinition

SERVICE_NAMES = (
    "sensei.migration.v1.MigrationService",
    "sensei.migration.v1.SchemaService",
    "sensei.migration.v1.AgentExecutionService",
)


async def setup(ctx: ServiceContext) -> None:
    """Registers the servicers and starts the change listener and its pruner."""
    cipher = ConfigCipher.from_setting(ctx.config.setting("CONFIG_KEY"))
    org_address = ctx.config.address_of("org")
    credentials = ctx.credentials
    assert credentials is not None
    orgs = OrgDirectory(org_address, credentials, ttl_seconds=_plan_cache_seconds(ctx))
    ctx.on_close(orgs.close)
    hub = ChangeHub(ctx.config.database_url, store.change_channel(ctx.config.db_schema))
    await hub.start()
    ctx.on_close(hub.close)
    ctx.run_in_background(hub.run(), name="migration-change-listener")
    ctx.run_in_background(prune_changes_forever(ctx.pool), name="migration-change-pruner")
    tokens = PageTokens(ctx.config.page_token_secret)
    destinations = DestinationPolicy.from_env(ctx.config.env, ctx.config.database_url)
    migrations = Migrations(ctx.pool, cipher, orgs, hub, tokens)
    assert ctx.revocations is not None
    ctx.revocations.on_organization_deleted(migrations.organization_deleted)
    ctx.add_servicer(
        migration_pb2_grpc.add_MigrationServiceServicer_to_server, MigrationServicer(migrations)
    )
    ctx.add_servicer(
        schema_pb2_grpc.add_SchemaServiceServicer_to_server,
        SchemaServicer(Schemas(ctx.pool, cipher, tokens, destinations)),
    )
    ctx.add_servicer(
        agent_execution_pb2_grpc.add_AgentExecutionServiceServicer_to_server,
        AgentExecutionServicer(AgentExecutions(ctx.pool, orgs, tokens)),
    )


def _plan_cache_seconds(ctx: ServiceContext) -> float:
    raw = ctx.config.setting("PLAN_CACHE_SECONDS")
    if not raw:
        return DEFAULT_TTL_SECONDS
    try:
        return max(0.0, float(raw))
    except ValueError:
        raise ConfigError(
            f"SENSEI_MIGRATION_PLAN_CACHE_SECONDS must be a number, got {raw!r}"
        ) from None


DEFINITION = ServiceDefinition(
    name="migration",
    service_names=SERVICE_NAMES,
    package_dir=Path(__file__).parent,
    setup=setup,
)
