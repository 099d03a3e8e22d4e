"""A small organization with one resource of every kind, for tests that need real names."""

from __future__ import annotations

import uuid

from google.protobuf import struct_pb2

from sensei.migration.v1 import (
    agent_execution_pb2,
    agent_execution_pb2_grpc,
    migration_pb2,
    migration_pb2_grpc,
    schema_pb2,
    schema_pb2_grpc,
)
from sensei.org.v1 import user_pb2, user_pb2_grpc
from sensei.pattern.v1 import pattern_pb2, pattern_pb2_grpc
from sensei.verification.v1 import verification_pb2, verification_pb2_grpc
from tests.harness import Identity
from tests.reliability.conftest import Stack
from tests.reliability.messages import CONNECTION_CONFIG, SCHEMA_DEFINITION


def struct(value: dict[str, object]) -> struct_pb2.Struct:
    """A Struct of a dict."""
    out = struct_pb2.Struct()
    out.update(value)
    return out


class World:
    """An organization (ENTERPRISE) with its owner and one resource of each kind.

    A plain class, not a dataclass, so hypothesis prints it short (no tokens).
    """

    def __init__(
        self,
        owner: Identity,
        *,
        slug: str,
        migration: str,  # started (ANALYZING)
        pending_migration: str,
        schema: str,
        agent_execution: str,
        verification: str,
        api_key: str,
        user: str,
        pattern: str,
        fingerprint: str,
        signing_key: str,
        api_key_secret: str,
        email: str,
        etags: list[str],
    ) -> None:
        self.owner = owner
        self.slug = slug
        self.migration = migration
        self.pending_migration = pending_migration
        self.schema = schema
        self.agent_execution = agent_execution
        self.verification = verification
        self.api_key = api_key
        self.user = user
        self.pattern = pattern
        self.fingerprint = fingerprint
        self.signing_key = signing_key
        self.api_key_secret = api_key_secret
        self.email = email
        self.etags = etags

    def __repr__(self) -> str:
        return f"World({self.org})"

    @property
    def org(self) -> str:
        """`organizations/{id}`."""
        return self.owner.org_name

    def names(self) -> list[str]:
        """Every name, id and key of the world, plus names that are near misses."""
        ids = [
            value.rsplit("/", 1)[-1]
            for value in (self.migration, self.schema, self.verification, self.pattern)
        ]
        return [
            self.org,
            self.owner.org_id,
            self.slug,
            self.migration,
            self.pending_migration,
            self.schema,
            self.agent_execution,
            self.verification,
            self.api_key,
            self.user,
            self.pattern,
            self.fingerprint,
            self.signing_key,
            f"{self.org}/migrations/-",
            f"{self.migration}/verifications/-",
            f"{self.org}/certificates/{uuid.uuid4()}",
            f"{self.org}/migrations/{uuid.uuid4()}",
            f"users/{self.owner.user_id}",
            "column_rename",
            "owner@acme.test",
            *ids,
            *self.etags,
        ]

    def by_field(self) -> dict[str, list[str]]:
        """Real values for string fields of these names."""
        return {
            "fingerprint": [self.fingerprint],
            "slug": [self.slug],
            "etag": self.etags,
            "api_key": [self.api_key_secret],
            "email": [self.email],
            "type": ["column_rename"],
            "text": ["ALTER TABLE a RENAME b TO c", "rename column"],
            "org_id": [self.owner.org_id],
            "user": [self.user],
            "user_id": [self.owner.user_id or "", self.user.rsplit("/", 1)[-1]],
        }


async def make_world(stack: Stack) -> World:
    """A new organization holding a migration, schema, agent run, verification and more."""
    _, owner = await stack.suite.new_org("ENTERPRISE")
    md = owner.metadata
    migrations = stack.stub("migration", migration_pb2_grpc.MigrationServiceStub)
    schemas = stack.stub("migration", schema_pb2_grpc.SchemaServiceStub)
    agents = stack.stub("migration", agent_execution_pb2_grpc.AgentExecutionServiceStub)
    verifications = stack.stub("verification", verification_pb2_grpc.VerificationServiceStub)
    patterns = stack.stub("pattern", pattern_pb2_grpc.PatternServiceStub)
    users = stack.stub("org", user_pb2_grpc.UserServiceStub)

    def new_migration(label: str) -> migration_pb2.CreateMigrationRequest:
        return migration_pb2.CreateMigrationRequest(
            parent=owner.org_name,
            migration=migration_pb2.Migration(
                display_name=label,
                source_config=struct(CONNECTION_CONFIG),
                target_config=struct(CONNECTION_CONFIG),
            ),
        )

    started = (await migrations.CreateMigration(new_migration("fuzz"), metadata=md)).migration
    await migrations.StartMigration(
        migration_pb2.StartMigrationRequest(name=started.name), metadata=md
    )
    pending = (await migrations.CreateMigration(new_migration("pending"), metadata=md)).migration
    schema = await schemas.CreateSchema(
        schema_pb2.CreateSchemaRequest(
            parent=started.name,
            schema=schema_pb2.Schema(
                type=schema_pb2.SCHEMA_TYPE_SOURCE, definition=struct(SCHEMA_DEFINITION)
            ),
        ),
        metadata=md,
    )
    execution = await agents.StartAgentExecution(
        agent_execution_pb2.StartAgentExecutionRequest(
            parent=started.name,
            agent_execution=agent_execution_pb2.AgentExecution(
                agent_type=agent_execution_pb2.AGENT_TYPE_SCHEMA_ANALYZER
            ),
        ),
        metadata=md,
    )
    verification = await verifications.CreateVerification(
        verification_pb2.CreateVerificationRequest(
            parent=started.name,
            verification=verification_pb2.Verification(
                type=verification_pb2.VERIFICATION_TYPE_ROW_COUNT
            ),
        ),
        metadata=md,
    )
    member = await users.CreateUser(
        user_pb2.CreateUserRequest(
            parent=owner.org_name,
            user=user_pb2.User(
                email=f"fuzz-{uuid.uuid4().hex[:8]}@example.test",
                display_name="Fuzz",
                role=user_pb2.ROLE_MEMBER,
            ),
        ),
        metadata=md,
    )
    key = await users.CreateApiKey(
        user_pb2.CreateApiKeyRequest(
            parent=owner.org_name,
            api_key=user_pb2.ApiKey(user=member.user.name, display_name="fuzz"),
        ),
        metadata=md,
    )
    fingerprint = f"fuzz-{uuid.uuid4().hex}"
    pattern = await patterns.UpsertPattern(
        pattern_pb2.UpsertPatternRequest(
            fingerprint=fingerprint, type="column_rename", text="ALTER TABLE a RENAME b TO c"
        ),
        metadata=stack.service.metadata,
    )
    keys = await verifications.ListSigningKeys(verification_pb2.ListSigningKeysRequest())
    return World(
        owner=owner,
        slug=(await _slug(stack, owner)),
        migration=started.name,
        pending_migration=pending.name,
        schema=schema.schema.name,
        agent_execution=execution.agent_execution.name,
        verification=verification.verification.name,
        api_key=key.api_key.name,
        user=member.user.name,
        pattern=pattern.pattern.name,
        fingerprint=fingerprint,
        signing_key=keys.signing_keys[0].name,
        api_key_secret=key.secret,
        email=member.user.email,
        etags=[started.etag, pending.etag, member.user.etag, pattern.pattern.etag],
    )


async def _slug(stack: Stack, owner: Identity) -> str:
    from sensei.org.v1 import organization_pb2, organization_pb2_grpc

    orgs = stack.stub("org", organization_pb2_grpc.OrganizationServiceStub)
    found = await orgs.GetOrganization(
        organization_pb2.GetOrganizationRequest(name=owner.org_name), metadata=owner.metadata
    )
    return str(found.organization.slug)
