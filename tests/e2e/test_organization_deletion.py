"""Deleting an organization reaches every service, and its audit chain ends with it.

After DeleteOrganization: the organization's migrations, schemas, agent executions and
verifications answer NOT_FOUND even to service principals, its queued verification is
cancelled (ERROR, ORGANIZATION_DELETED), its chain verifies with the deletion as its last
entry, and a late event for it is refused rather than appended after the deletion.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import grpc
import pytest
from google.protobuf import timestamp_pb2

from sensei.migration.v1 import (
    agent_execution_pb2,
    agent_execution_pb2_grpc,
    migration_pb2,
    migration_pb2_grpc,
    schema_pb2,
    schema_pb2_grpc,
)
from sensei.org.v1 import audit_pb2, audit_pb2_grpc, organization_pb2, organization_pb2_grpc
from sensei.verification.v1 import verification_pb2, verification_pb2_grpc
from shared import protoconv
from tests.harness import Identity, Suite, error_info
from tests.verification.conftest import connection_config

FEED_BOUND_SECONDS = 2.0


async def _not_found_within(call: Callable[[], Awaitable[Any]], seconds: float) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        try:
            await call()
        except grpc.aio.AioRpcError as exc:
            assert exc.code() == grpc.StatusCode.NOT_FOUND, exc.details()
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"still there after {seconds} s")
        await asyncio.sleep(0.02)  # polling for the bound, not waiting for an effect


@pytest.fixture
async def doomed(
    suite: Suite, make_sample_database: Callable[[], Awaitable[str]]
) -> tuple[Suite, organization_pb2.Organization, Identity, dict[str, str]]:
    """A second organization with a migration, a schema, an agent execution and a queued
    verification (no verification workers run, so it stays PENDING)."""
    await suite.start("migration", "verification", env={"SENSEI_VERIFICATION_WORKERS": "0"})
    org, owner = await suite.new_org(plan="PRO")
    migrations = suite.stub("migration", migration_pb2_grpc.MigrationServiceStub)
    created = await migrations.CreateMigration(
        migration_pb2.CreateMigrationRequest(
            parent=org.name,
            migration=migration_pb2.Migration(
                display_name="doomed",
                source_config=protoconv.struct_of(connection_config(await make_sample_database())),
                target_config=protoconv.struct_of(connection_config(await make_sample_database())),
            ),
        ),
        metadata=owner.metadata,
    )
    migration = created.migration.name
    schemas = suite.stub("migration", schema_pb2_grpc.SchemaServiceStub)
    schema = await schemas.CreateSchema(
        schema_pb2.CreateSchemaRequest(
            parent=migration,
            schema=schema_pb2.Schema(
                type=schema_pb2.SCHEMA_TYPE_SOURCE,
                definition=protoconv.struct_of({"tables": {}}),
            ),
        ),
        metadata=owner.metadata,
    )
    await migrations.StartMigration(
        migration_pb2.StartMigrationRequest(name=migration), metadata=owner.metadata
    )
    agents = suite.stub("migration", agent_execution_pb2_grpc.AgentExecutionServiceStub)
    execution = await agents.StartAgentExecution(
        agent_execution_pb2.StartAgentExecutionRequest(
            parent=migration,
            agent_execution=agent_execution_pb2.AgentExecution(
                agent_type=agent_execution_pb2.AGENT_TYPE_SCHEMA_ANALYZER
            ),
        ),
        metadata=owner.metadata,
    )
    verifications = suite.stub("verification", verification_pb2_grpc.VerificationServiceStub)
    verification = await verifications.CreateVerification(
        verification_pb2.CreateVerificationRequest(
            parent=migration,
            verification=verification_pb2.Verification(
                type=verification_pb2.VERIFICATION_TYPE_ROW_COUNT
            ),
        ),
        metadata=owner.metadata,
    )
    names = {
        "migration": migration,
        "schema": schema.schema.name,
        "execution": execution.agent_execution.name,
        "verification": verification.verification.name,
        "verification_id": verification.verification.id,
    }
    return suite, org, owner, names


async def _delete(suite: Suite, org: organization_pb2.Organization, owner: Identity) -> None:
    orgs = suite.stub("org", organization_pb2_grpc.OrganizationServiceStub)
    await orgs.DeleteOrganization(
        organization_pb2.DeleteOrganizationRequest(name=org.name), metadata=owner.metadata
    )


async def test_its_resources_answer_not_found_even_to_services(doomed: Any) -> None:
    suite, org, owner, names = doomed
    service = (await suite.service()).metadata
    migrations = suite.stub("migration", migration_pb2_grpc.MigrationServiceStub)
    schemas = suite.stub("migration", schema_pb2_grpc.SchemaServiceStub)
    agents = suite.stub("migration", agent_execution_pb2_grpc.AgentExecutionServiceStub)
    verifications = suite.stub("verification", verification_pb2_grpc.VerificationServiceStub)
    reads: list[Callable[[], Awaitable[Any]]] = [
        lambda: migrations.GetMigration(
            migration_pb2.GetMigrationRequest(name=names["migration"]), metadata=service
        ),
        lambda: schemas.GetSchema(
            schema_pb2.GetSchemaRequest(name=names["schema"]), metadata=service
        ),
        lambda: agents.GetAgentExecution(
            agent_execution_pb2.GetAgentExecutionRequest(name=names["execution"]),
            metadata=service,
        ),
        lambda: verifications.GetVerification(
            verification_pb2.GetVerificationRequest(name=names["verification"]),
            metadata=service,
        ),
        lambda: verifications.ListVerifications(
            verification_pb2.ListVerificationsRequest(parent=f"{org.name}/migrations/-"),
            metadata=service,
        ),
    ]
    for read in reads:
        await read()  # there before
    await _delete(suite, org, owner)
    for read in reads:
        await _not_found_within(read, FEED_BOUND_SECONDS)


async def test_its_queued_verification_is_cancelled(doomed: Any, database_url: str) -> None:
    suite, org, owner, names = doomed
    await _delete(suite, org, owner)
    conn = await asyncpg.connect(database_url)
    try:
        for _ in range(100):
            row = await conn.fetchrow(
                "SELECT v.status, v.result, j.state FROM verification.verifications v"
                " JOIN verification.jobs j ON j.verification_id = v.id WHERE v.id = $1",
                uuid.UUID(names["verification_id"]),
            )
            assert row is not None
            if row["status"] != "PENDING":
                break
            await asyncio.sleep(0.02)  # polling for the bound, not waiting for an effect
        assert row["status"] == "ERROR"
        assert "ORGANIZATION_DELETED" in row["result"]
        assert row["state"] == "done"  # no worker will pick it up
        left = await conn.fetchval(
            "SELECT count(*) FROM migration.migrations WHERE org_id = $1", uuid.UUID(org.id)
        )
        assert left == 0  # connection secrets of the organization went with it
    finally:
        await conn.close()


async def test_its_audit_chain_verifies_and_ends_with_the_deletion(doomed: Any) -> None:
    suite, org, owner, _ = doomed
    await _delete(suite, org, owner)
    service = (await suite.service()).metadata
    audit = suite.stub("org", audit_pb2_grpc.AuditServiceStub)
    entries: list[audit_pb2.AuditLog] = []
    for _ in range(200):  # the org service's own relay appends the deletion
        page = await audit.ListAuditLogs(
            audit_pb2.ListAuditLogsRequest(parent=org.name, page_size=1000), metadata=service
        )
        entries = list(page.audit_logs)
        if entries and entries[0].action == "organization.delete":  # newest first
            break
        await asyncio.sleep(0.02)  # polling for the relay, not waiting for an effect
    assert entries[0].action == "organization.delete"
    report = await audit.VerifyAuditChain(
        audit_pb2.VerifyAuditChainRequest(parent=org.name), metadata=service
    )
    assert report.valid
    # A late event for it (another service's outbox after the deletion) is refused.
    late = audit_pb2.AuditEvent(
        event_id=str(uuid.uuid4()),
        org_id=org.id,
        actor="services/migration",
        action="migration.update",
        resource_type="migration",
        resource_id=str(uuid.uuid4()),
        service="migration",
        occur_time=timestamp_pb2.Timestamp(seconds=1_700_000_000),
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await audit.AppendAuditEvents(
            audit_pb2.AppendAuditEventsRequest(events=[late]), metadata=service
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(caught.value).reason == "AUDIT_CHAIN_CLOSED"
    again = await audit.ListAuditLogs(
        audit_pb2.ListAuditLogsRequest(parent=org.name, page_size=1000), metadata=service
    )
    assert again.audit_logs[0].action == "organization.delete"
    assert len(again.audit_logs) == len(entries)
