"""Load: concurrent clients, each on its own channels, run a fixed number of mixed reads and
writes across migration, verification, pattern and org; no call may fail, and the final
counts (rows, counters, token usage, audit entries) are exact.

`make test` runs 8 clients x 40 operations; the soak run (`make soak`) 32 x 400.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
from google.protobuf import struct_pb2

from sensei.migration.v1 import (
    agent_execution_pb2,
    agent_execution_pb2_grpc,
    migration_pb2,
    migration_pb2_grpc,
    schema_pb2,
    schema_pb2_grpc,
)
from sensei.org.v1 import organization_pb2, organization_pb2_grpc
from sensei.pattern.v1 import pattern_pb2, pattern_pb2_grpc
from sensei.verification.v1 import verification_pb2, verification_pb2_grpc
from shared.outbox import PLATFORM_ORG_ID
from tests.harness import Identity
from tests.reliability.conftest import (
    Stack,
    audit_drained,
    audit_entries,
    eventually,
    report_figures,
)
from tests.reliability.messages import CONNECTION_CONFIG
from tests.reliability.world import struct

DEFINITION = {"version": 1, "tables": {}}


@dataclass
class Tally:
    """What the clients did, for the exact checks at the end."""

    done: Counter[str] = field(default_factory=Counter)
    tokens: int = 0
    migrations: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)


@dataclass
class Tenant:
    """The organization under load, its callers and the resources clients share."""

    owner: Identity
    member: Identity
    admin: Identity
    viewer: Identity
    shared_migration: str
    shared_pattern: str
    # Pattern writes are platform-wide: the platform operator makes them, no tenant role.
    operator: Identity


class Client:
    """One caller with channels of its own to every service."""

    def __init__(self, stack: Stack, tenant: Tenant, index: int, tally: Tally) -> None:
        self.tenant = tenant
        self.index = index
        self.tally = tally
        self.channels = {
            name: grpc.aio.insecure_channel(stack.suite.address(name))
            for name in ("org", "migration", "verification", "pattern")
        }
        self.migrations = migration_pb2_grpc.MigrationServiceStub(self.channels["migration"])
        self.schemas = schema_pb2_grpc.SchemaServiceStub(self.channels["migration"])
        self.agents = agent_execution_pb2_grpc.AgentExecutionServiceStub(self.channels["migration"])
        self.verifications = verification_pb2_grpc.VerificationServiceStub(
            self.channels["verification"]
        )
        self.patterns = pattern_pb2_grpc.PatternServiceStub(self.channels["pattern"])
        self.orgs = organization_pb2_grpc.OrganizationServiceStub(self.channels["org"])
        self.mine: list[str] = []  # migrations this client created
        self.reported: set[str] = set()  # its migrations that already have an outcome
        self.started: list[str] = []
        self.progress = 0.0

    async def close(self) -> None:
        for channel in self.channels.values():
            await channel.close()

    async def run(self, operations: int) -> None:
        kinds = list(self._operations())
        for number in range(operations):
            kind = kinds[(self.index + number) % len(kinds)]
            started = time.perf_counter()
            try:
                await self._operations()[kind]()
            except grpc.aio.AioRpcError as exc:
                self.tally.errors.append(f"client {self.index} {kind}: {exc.code().name} "
                                         f"{exc.details()}")  # fmt: skip
                continue
            self.tally.latencies.append(time.perf_counter() - started)
            self.tally.done[kind] += 1

    def _operations(self) -> dict[str, Callable[[], Awaitable[Any]]]:
        return {
            "create_migration": self.create_migration,
            "get_migration": self.get_migration,
            "start_migration": self.start_migration,
            "list_migrations": self.list_migrations,
            "report_progress": self.report_progress,
            "create_schema": self.create_schema,
            "agent_run": self.agent_run,
            "get_usage": self.get_usage,
            "upsert_pattern": self.upsert_pattern,
            "record_outcome": self.record_outcome,
            "search_patterns": self.search_patterns,
            "create_verification": self.create_verification,
            "list_verifications": self.list_verifications,
            "get_organization": self.get_organization,
        }

    async def create_migration(self) -> None:
        who = self.tenant.member
        created = await self.migrations.CreateMigration(
            migration_pb2.CreateMigrationRequest(
                parent=who.org_name,
                migration=migration_pb2.Migration(display_name=f"load {self.index}"),
                request_id=str(uuid.uuid4()),
            ),
            metadata=who.metadata,
        )
        self.mine.append(created.migration.name)
        self.tally.migrations.append(created.migration.id)

    async def _own_migration(self) -> str:
        if not self.mine:
            await self.create_migration()
            self.tally.done["create_migration"] += 1
        return self.mine[-1]

    async def get_migration(self) -> None:
        await self.migrations.GetMigration(
            migration_pb2.GetMigrationRequest(name=await self._own_migration()),
            metadata=self.tenant.viewer.metadata,
        )

    async def start_migration(self) -> None:
        pending = [name for name in self.mine if name not in self.started]
        if not pending:
            await self.create_migration()
            self.tally.done["create_migration"] += 1
            pending = [self.mine[-1]]
        await self.migrations.StartMigration(
            migration_pb2.StartMigrationRequest(name=pending[0]),
            metadata=self.tenant.member.metadata,
        )
        self.started.append(pending[0])
        self.progress = 0.0

    async def _active_migration(self) -> str:
        if not self.started:
            await self.start_migration()
            self.tally.done["start_migration"] += 1
        return self.started[-1]

    async def report_progress(self) -> None:
        await self._active_migration()
        self.progress = min(1.0, self.progress + 0.01)
        await self.migrations.ReportProgress(
            migration_pb2.ReportProgressRequest(name=self.started[-1], progress=self.progress),
            metadata=self.tenant.member.metadata,
        )

    async def list_migrations(self) -> None:
        token = ""
        while True:
            page = await self.migrations.ListMigrations(
                migration_pb2.ListMigrationsRequest(
                    parent=self.tenant.owner.org_name, page_size=20, page_token=token
                ),
                metadata=self.tenant.viewer.metadata,
            )
            token = page.next_page_token
            if not token:
                return

    async def create_schema(self) -> None:
        definition = struct_pb2.Struct()
        definition.update(DEFINITION)
        await self.schemas.CreateSchema(
            schema_pb2.CreateSchemaRequest(
                parent=await self._own_migration(),
                schema=schema_pb2.Schema(type=schema_pb2.SCHEMA_TYPE_SOURCE, definition=definition),
            ),
            metadata=self.tenant.member.metadata,
        )

    async def agent_run(self) -> None:
        started = await self.agents.StartAgentExecution(
            agent_execution_pb2.StartAgentExecutionRequest(
                parent=await self._active_migration(),
                agent_execution=agent_execution_pb2.AgentExecution(
                    agent_type=agent_execution_pb2.AGENT_TYPE_SCHEMA_MAPPER
                ),
            ),
            metadata=self.tenant.member.metadata,
        )
        tokens = 100 + self.index
        await self.agents.CompleteAgentExecution(
            agent_execution_pb2.CompleteAgentExecutionRequest(
                name=started.agent_execution.name,
                status=agent_execution_pb2.AGENT_EXECUTION_STATUS_SUCCEEDED,
                tokens_used=tokens,
                duration_ms=5,
            ),
            metadata=self.tenant.member.metadata,
        )
        self.tally.tokens += tokens

    async def get_usage(self) -> None:
        await self.migrations.GetUsage(
            migration_pb2.GetUsageRequest(parent=self.tenant.owner.org_name),
            metadata=self.tenant.viewer.metadata,
        )

    async def upsert_pattern(self) -> None:
        await self.patterns.UpsertPattern(
            pattern_pb2.UpsertPatternRequest(
                fingerprint=f"load-{uuid.uuid4().hex}",
                type=f"load-{self.tenant.owner.org_id}",
                text=f"ALTER TABLE t{self.index} RENAME COLUMN a TO b",
            ),
            metadata=self.tenant.operator.metadata,
        )

    async def record_outcome(self) -> None:
        # An outcome counts once per (pattern, migration): each report names a migration
        # of this client that has none yet, so every call counts.
        fresh = [name for name in self.mine if name not in self.reported]
        if not fresh:
            await self.create_migration()
            self.tally.done["create_migration"] += 1
            fresh = [self.mine[-1]]
        await self.patterns.RecordPatternOutcome(
            pattern_pb2.RecordPatternOutcomeRequest(
                name=self.tenant.shared_pattern,
                outcome=pattern_pb2.PATTERN_OUTCOME_SUCCESS,
                request_id=str(uuid.uuid4()),
                migration=fresh[0],
            ),
            metadata=self.tenant.admin.metadata,
        )
        self.reported.add(fresh[0])

    async def search_patterns(self) -> None:
        await self.patterns.SearchPatterns(
            pattern_pb2.SearchPatternsRequest(text="rename column", top_k=5),
            metadata=self.tenant.viewer.metadata,
        )

    async def create_verification(self) -> None:
        await self.verifications.CreateVerification(
            verification_pb2.CreateVerificationRequest(
                parent=self.tenant.shared_migration,
                verification=verification_pb2.Verification(
                    type=verification_pb2.VERIFICATION_TYPE_ROW_COUNT
                ),
            ),
            metadata=self.tenant.member.metadata,
        )

    async def list_verifications(self) -> None:
        await self.verifications.ListVerifications(
            verification_pb2.ListVerificationsRequest(parent=self.tenant.shared_migration),
            metadata=self.tenant.viewer.metadata,
        )

    async def get_organization(self) -> None:
        await self.orgs.GetOrganization(
            organization_pb2.GetOrganizationRequest(name=self.tenant.owner.org_name),
            metadata=self.tenant.viewer.metadata,
        )


async def _tenant(stack: Stack) -> Tenant:
    _, owner = await stack.suite.new_org("ENTERPRISE")
    member = await stack.suite.user("MEMBER", owner.org_id)
    admin = await stack.suite.user("ADMIN", owner.org_id)
    viewer = await stack.suite.user("VIEWER", owner.org_id)
    operator = await stack.suite.operator()
    migrations = stack.stub("migration", migration_pb2_grpc.MigrationServiceStub)
    shared = await migrations.CreateMigration(
        migration_pb2.CreateMigrationRequest(
            parent=owner.org_name,
            migration=migration_pb2.Migration(
                display_name="shared",
                source_config=struct(CONNECTION_CONFIG),
                target_config=struct(CONNECTION_CONFIG),
            ),
        ),
        metadata=owner.metadata,
    )
    patterns = stack.stub("pattern", pattern_pb2_grpc.PatternServiceStub)
    pattern = await patterns.UpsertPattern(
        pattern_pb2.UpsertPatternRequest(
            fingerprint=f"load-shared-{uuid.uuid4().hex}", type="load-shared", text="shared"
        ),
        metadata=operator.metadata,
    )
    return Tenant(
        owner, member, admin, viewer, shared.migration.name, pattern.pattern.name, operator
    )


async def _audit_count(stack: Stack, tenant: Tenant) -> Counter[str]:
    await eventually(lambda: audit_drained(stack.suite), seconds=60)
    return Counter(entry.action for entry in await audit_entries(stack.suite, tenant.owner))


@pytest.mark.parametrize(
    ("clients", "operations"),
    [
        pytest.param(8, 40, id="8x40"),
        pytest.param(32, 400, id="32x400", marks=pytest.mark.soak),
    ],
)
async def test_concurrent_clients_get_no_errors_and_exact_counts(
    stack: Stack, clients: int, operations: int
) -> None:
    tenant = await _tenant(stack)
    tally = Tally()
    everyone = [Client(stack, tenant, index, tally) for index in range(clients)]
    started = time.perf_counter()
    try:
        await asyncio.gather(*(client.run(operations) for client in everyone))
    finally:
        for client in everyone:
            await client.close()
    seconds = time.perf_counter() - started
    assert not tally.errors, "\n".join(tally.errors[:20])
    assert sum(tally.done.values()) >= clients * operations

    org_id = uuid.UUID(tenant.owner.org_id)
    migration_rows = await stack.fetchval(
        "migration", "SELECT count(*) FROM migrations WHERE org_id = $1", org_id
    )
    assert migration_rows == len(tally.migrations) + 1  # + the shared one
    assert len(set(tally.migrations)) == len(tally.migrations)
    schema_rows = await stack.fetchval(
        "migration",
        "SELECT count(*) FROM schemas s JOIN migrations m ON m.id = s.migration_id"
        " WHERE m.org_id = $1",
        org_id,
    )
    assert schema_rows == tally.done["create_schema"]
    migrations = stack.stub("migration", migration_pb2_grpc.MigrationServiceStub)
    usage = await migrations.GetUsage(
        migration_pb2.GetUsageRequest(parent=tenant.owner.org_name),
        metadata=tenant.owner.metadata,
    )
    assert sum(month.tokens_used for month in usage.months) == tally.tokens
    patterns = stack.stub("pattern", pattern_pb2_grpc.PatternServiceStub)
    shared = await patterns.GetPattern(
        pattern_pb2.GetPatternRequest(name=tenant.shared_pattern),
        metadata=tenant.viewer.metadata,
    )
    assert shared.pattern.success_count == tally.done["record_outcome"]
    assert (
        await stack.fetchval(
            "pattern",
            "SELECT count(*) FROM patterns WHERE type = $1",
            f"load-{tenant.owner.org_id}",
        )
        == tally.done["upsert_pattern"]
    )
    verification_rows = await stack.fetchval(
        "verification", "SELECT count(*) FROM verifications WHERE org_id = $1", org_id
    )
    assert verification_rows == tally.done["create_verification"]

    actions = await _audit_count(stack, tenant)
    assert actions["migration.create"] == len(tally.migrations) + 1
    assert actions["migration.start"] == tally.done["start_migration"]
    assert actions["migration.report_progress"] == tally.done["report_progress"]
    assert actions["schema.create"] == tally.done["create_schema"]
    assert actions["agent_execution.complete"] == tally.done["agent_run"]
    # Pattern writes are the platform's: on the platform chain, none in the tenant's.
    assert actions["pattern.create"] == 0
    platform_creates = await stack.fetchval(
        "org",
        "SELECT count(*) FROM audit_logs a JOIN pattern.patterns p ON a.resource_id = p.id::text"
        " WHERE a.org_id = $1 AND a.action = 'pattern.create' AND p.type = $2",
        uuid.UUID(PLATFORM_ORG_ID),
        f"load-{tenant.owner.org_id}",
    )
    assert platform_creates == tally.done["upsert_pattern"]
    assert actions["pattern.record_outcome"] == tally.done["record_outcome"]
    assert actions["verification.create"] == tally.done["create_verification"]

    latencies = sorted(tally.latencies)
    report_figures(
        f"load_{clients}x{operations}",
        operations=len(latencies),
        seconds=round(seconds, 2),
        per_second=round(len(latencies) / seconds, 1),
        p50_ms=round(statistics.median(latencies) * 1000, 1),
        p99_ms=round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 1),
        by_kind=dict(tally.done),
    )
