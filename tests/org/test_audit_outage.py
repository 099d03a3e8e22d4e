"""The audit outbox end to end (docs/architecture.md#outbox-and-relay): with the org service
down, audit events wait in the migration service's outbox; after a restart every one of them
is in the audit log exactly once."""

from __future__ import annotations

import asyncio
from collections import Counter

from google.protobuf import field_mask_pb2

from sensei.migration.v1 import migration_pb2, migration_pb2_grpc
from sensei.org.v1 import audit_pb2, audit_pb2_grpc
from tests.harness import Identity, Suite


def _create(who: Identity, display_name: str) -> migration_pb2.CreateMigrationRequest:
    return migration_pb2.CreateMigrationRequest(
        parent=who.org_name, migration=migration_pb2.Migration(display_name=display_name)
    )


async def _migration_entries(suite: Suite, owner: Identity) -> list[audit_pb2.AuditLog]:
    audit = audit_pb2_grpc.AuditServiceStub(suite.channel("org"))
    page = await audit.ListAuditLogs(
        audit_pb2.ListAuditLogsRequest(
            parent=owner.org_name, resource_type="migration", page_size=1000
        ),
        metadata=owner.metadata,
    )
    return list(page.audit_logs)


async def test_events_recorded_while_org_is_down_arrive_exactly_once_after_restart(
    suite: Suite,
) -> None:
    # A long plan cache: CreateMigration needs the organization's plan, which the
    # migration service must remember while the org service is down.
    await suite.start("org", "migration", env={"SENSEI_MIGRATION_PLAN_CACHE_SECONDS": "600"})
    owner = await suite.owner()
    member = await suite.user("MEMBER")  # tokens verify locally with cached keys
    migrations = migration_pb2_grpc.MigrationServiceStub(suite.channel("migration"))
    before = await migrations.CreateMigration(_create(member, "before"), metadata=member.metadata)
    relay = suite.running["migration"].context.relay
    assert relay is not None

    await suite.stop("org")
    during = []
    for index in range(5):
        created = await migrations.CreateMigration(
            _create(member, f"during {index}"), metadata=member.metadata
        )
        during.append(created)
    updated = await migrations.UpdateMigration(
        migration_pb2.UpdateMigrationRequest(
            migration=migration_pb2.Migration(name=during[0].migration.name, description="x"),
            update_mask=field_mask_pb2.FieldMask(paths=["description"]),
        ),
        metadata=member.metadata,
    )
    assert await relay.pending() >= 6  # nowhere to deliver them

    await suite.restart("org", env={"SENSEI_MIGRATION_PLAN_CACHE_SECONDS": "600"})
    for _ in range(400):
        if await relay.pending() == 0:
            break
        await asyncio.sleep(0.05)
    assert await relay.pending() == 0

    entries = await _migration_entries(suite, owner)
    expected = {
        ("migration.create", before.migration.id),
        *(("migration.create", created.migration.id) for created in during),
        ("migration.update", updated.migration.id),
    }
    counts = Counter((entry.action, entry.resource_id) for entry in entries)
    assert set(counts) == expected
    assert set(counts.values()) == {1}
    assert {entry.service for entry in entries} == {"migration"}
    assert {entry.user_id for entry in entries} == {member.user_id}
    audit = audit_pb2_grpc.AuditServiceStub(suite.channel("org"))
    report = await audit.VerifyAuditChain(
        audit_pb2.VerifyAuditChainRequest(parent=owner.org_name), metadata=owner.metadata
    )
    assert report.valid, report.failure
