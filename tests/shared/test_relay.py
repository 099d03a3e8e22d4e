"""The audit relay: events flow from a service's outbox into the org service's log."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg

from sensei.org.v1 import audit_pb2, audit_pb2_grpc
from shared.outbox import record
from tests.harness import Suite


async def _record(database_url: str, org_id: str, action: str) -> str:
    conn = await asyncpg.connect(database_url, server_settings={"search_path": "migration"})
    try:
        async with conn.transaction():
            return await record(
                conn,
                action=action,
                resource_type="migration",
                resource_id=str(uuid.uuid4()),
                org_id=org_id,
                actor="serviceAccounts/test",
            )
    finally:
        await conn.close()


async def _logged_event_ids(suite: Suite) -> set[str]:
    service = await suite.service()
    audit = suite.stub("org", audit_pb2_grpc.AuditServiceStub)
    response = await audit.ListAuditLogs(
        audit_pb2.ListAuditLogsRequest(parent=f"organizations/{suite.org_id}", page_size=1000),
        metadata=service.metadata,
    )
    return {entry.event_id for entry in response.audit_logs}


async def test_an_invalid_event_is_set_aside_and_does_not_block_the_rest(suite: Suite) -> None:
    await suite.start("migration")
    good_before = await _record(suite.database_url, suite.org_id, "migration.create")
    bad = await _record(suite.database_url, suite.org_id, "NOT A VALID ACTION!")
    good_after = await _record(suite.database_url, suite.org_id, "migration.update")
    relay = suite.running["migration"].context.relay
    assert relay is not None
    for _ in range(400):  # bounded wait for the relay, not a timing assertion
        if await relay.pending() == 0:
            break
        await asyncio.sleep(0.05)
    logged = await _logged_event_ids(suite)
    conn = await asyncpg.connect(suite.database_url)
    try:
        dead = await conn.fetch(
            "SELECT event_id::text, last_error FROM migration.audit_outbox"
            " WHERE dead_at IS NOT NULL"
        )
    finally:
        await conn.close()
    assert {good_before, good_after} <= logged
    assert bad not in logged
    assert [row["event_id"] for row in dead] == [bad]
    assert "action" in dead[0]["last_error"]
