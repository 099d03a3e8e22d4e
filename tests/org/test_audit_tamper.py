"""Tamper evidence: damage done directly in SQL is found by VerifyAuditChain, with its kind.

The tamper tests act as a database superuser who gets past the append-only trigger with
`session_replication_role = replica` (only a superuser can); the service's own role
cannot change or remove audit rows at all.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import pytest

from sensei.org.v1 import audit_pb2
from tests.harness import Suite
from tests.org.conftest import Org, audit_event, documented_hash, started_org


@pytest.fixture
async def org(suite: Suite) -> Org:
    """The org service signing a checkpoint every 10 entries."""
    suite.env["SENSEI_ORG_AUDIT_CHECKPOINT_EVERY"] = "10"
    return await started_org(suite)


async def _chain(org: Org, entries: int = 25) -> str:
    """A new organization's chain, appended 5 at a time (checkpoints at 10, 20, ...)."""
    org_id = str(uuid.uuid4())
    service = await org.suite.service()
    for _ in range(entries // 5):
        await org.audit.AppendAuditEvents(
            audit_pb2.AppendAuditEventsRequest(events=[audit_event(org_id) for _ in range(5)]),
            metadata=service.metadata,
        )
    return org_id


async def _verify(org: Org, org_id: str, **fields: Any) -> audit_pb2.VerifyAuditChainResponse:
    service = await org.suite.service()
    response: audit_pb2.VerifyAuditChainResponse = await org.audit.VerifyAuditChain(
        audit_pb2.VerifyAuditChainRequest(parent=f"organizations/{org_id}", **fields),
        metadata=service.metadata,
    )
    return response


async def _failure(org: Org, org_id: str) -> tuple[str, int]:
    report = await _verify(org, org_id)
    assert not report.valid
    kind = audit_pb2.ChainFailureKind.Name(report.failure.kind)
    return kind.removeprefix("CHAIN_FAILURE_KIND_"), report.failure.seq


async def _entries(org: Org, org_id: str) -> dict[int, audit_pb2.AuditLog]:
    service = await org.suite.service()
    page = await org.audit.ListAuditLogs(
        audit_pb2.ListAuditLogsRequest(parent=f"organizations/{org_id}", page_size=1000),
        metadata=service.metadata,
    )
    return {log.seq: log for log in page.audit_logs}


@asynccontextmanager
async def _superuser_past_the_trigger(org: Org) -> AsyncIterator[asyncpg.Connection]:
    conn = await org.db()
    try:
        await conn.execute("SET session_replication_role = replica")
        yield conn
    finally:
        await conn.close()


async def test_an_untouched_chain_and_any_range_of_it_verify(org: Org) -> None:
    org_id = await _chain(org)
    head = (await _entries(org, org_id))[25]
    report = await _verify(org, org_id)
    assert report.valid and not report.HasField("failure")
    assert (report.entries_checked, report.head_seq, report.head_hash) == (25, 25, head.entry_hash)
    assert report.checkpoints_checked == 2
    middle = await _verify(org, org_id, start_seq=5, end_seq=15)
    assert (middle.valid, middle.entries_checked, middle.head_seq) == (True, 11, 15)
    assert middle.checkpoints_checked == 1


async def test_an_edited_entry_is_an_entry_hash_mismatch(org: Org) -> None:
    org_id = await _chain(org)
    async with _superuser_past_the_trigger(org) as conn:
        await conn.execute(
            "UPDATE audit_logs SET actor = 'users/someone-else' WHERE org_id = $1 AND seq = 7",
            uuid.UUID(org_id),
        )
    assert await _failure(org, org_id) == ("ENTRY_HASH_MISMATCH", 7)
    # Damage outside a range does not fail that range.
    assert (await _verify(org, org_id, start_seq=8)).valid


async def test_an_edited_entry_with_a_recomputed_hash_breaks_the_next_link(org: Org) -> None:
    org_id = await _chain(org)
    entry = (await _entries(org, org_id))[7]
    entry.action = "thing.nothing_to_see"
    async with _superuser_past_the_trigger(org) as conn:
        await conn.execute(
            "UPDATE audit_logs SET action = $3, entry_hash = $4 WHERE org_id = $1 AND seq = $2",
            uuid.UUID(org_id),
            7,
            entry.action,
            documented_hash(entry),
        )
    assert await _failure(org, org_id) == ("PREV_HASH_MISMATCH", 8)


async def test_a_consistent_rewrite_of_the_tail_is_caught_by_the_signed_checkpoint(
    org: Org,
) -> None:
    org_id = await _chain(org)
    entries = await _entries(org, org_id)
    prev_hash = entries[17].entry_hash
    async with _superuser_past_the_trigger(org) as conn:
        for seq in range(18, 26):
            entry = entries[seq]
            entry.action, entry.prev_hash = "thing.rewritten", prev_hash
            prev_hash = documented_hash(entry)
            await conn.execute(
                "UPDATE audit_logs SET action = $3, prev_hash = $4, entry_hash = $5"
                " WHERE org_id = $1 AND seq = $2",
                uuid.UUID(org_id),
                seq,
                entry.action,
                entry.prev_hash,
                prev_hash,
            )
        await conn.execute(
            "UPDATE audit_chain_heads SET head_hash = $2 WHERE org_id = $1",
            uuid.UUID(org_id),
            prev_hash,
        )
    assert await _failure(org, org_id) == ("HEAD_HASH_MISMATCH", 20)


async def test_a_deleted_middle_entry_is_a_seq_gap(org: Org) -> None:
    org_id = await _chain(org)
    async with _superuser_past_the_trigger(org) as conn:
        await conn.execute(
            "DELETE FROM audit_logs WHERE org_id = $1 AND seq = 12", uuid.UUID(org_id)
        )
    assert await _failure(org, org_id) == ("SEQ_GAP", 12)


async def test_a_deleted_tail_below_a_checkpoint_is_truncation_even_with_the_head_rewound(
    org: Org,
) -> None:
    org_id = await _chain(org)
    entries = await _entries(org, org_id)
    async with _superuser_past_the_trigger(org) as conn:
        await conn.execute(
            "DELETE FROM audit_logs WHERE org_id = $1 AND seq > 15", uuid.UUID(org_id)
        )
        await conn.execute(
            "UPDATE audit_chain_heads SET seq = 15, head_hash = $2 WHERE org_id = $1",
            uuid.UUID(org_id),
            entries[15].entry_hash,
        )
    assert await _failure(org, org_id) == ("TRUNCATED", 16)


async def test_a_deleted_tail_after_the_last_checkpoint_is_truncation(org: Org) -> None:
    org_id = await _chain(org)
    async with _superuser_past_the_trigger(org) as conn:
        await conn.execute(
            "DELETE FROM audit_logs WHERE org_id = $1 AND seq > 20", uuid.UUID(org_id)
        )
    assert await _failure(org, org_id) == ("TRUNCATED", 21)


async def test_an_entry_moved_to_another_organization_is_detected_in_both(org: Org) -> None:
    source = await _chain(org, 10)
    target = await _chain(org, 5)
    async with _superuser_past_the_trigger(org) as conn:
        await conn.execute(
            "UPDATE audit_logs SET org_id = $2 WHERE org_id = $1 AND seq = 6",
            uuid.UUID(source),
            uuid.UUID(target),
        )
    assert await _failure(org, source) == ("SEQ_GAP", 6)
    assert await _failure(org, target) == ("ENTRY_HASH_MISMATCH", 6)


async def test_a_tampered_checkpoint_signature_is_invalid(org: Org) -> None:
    org_id = await _chain(org)
    async with _superuser_past_the_trigger(org) as conn:
        await conn.execute(
            "UPDATE audit_checkpoints SET signature ="
            " (SELECT signature FROM audit_checkpoints WHERE org_id = $1 AND seq = 20)"
            " WHERE org_id = $1 AND seq = 10",
            uuid.UUID(org_id),
        )
    assert await _failure(org, org_id) == ("CHECKPOINT_SIGNATURE_INVALID", 10)


async def test_the_service_role_may_append_and_read_but_never_change_or_remove(
    org: Org,
) -> None:
    org_id = uuid.UUID(await _chain(org, 10))
    conn = await org.db()
    try:
        await conn.execute("SET ROLE sensei_org_service")
        assert (
            await conn.fetchval("SELECT count(*) FROM audit_logs WHERE org_id = $1", org_id) == 10
        )
        for statement in (
            "UPDATE audit_logs SET action = 'x.y' WHERE org_id = $1",
            "DELETE FROM audit_logs WHERE org_id = $1",
            "UPDATE audit_checkpoints SET seq = 1 WHERE org_id = $1",
            "DELETE FROM audit_checkpoints WHERE org_id = $1",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
                await conn.execute(statement, org_id)
        for table in ("audit_logs", "audit_checkpoints"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(f"TRUNCATE {table}")
    finally:
        await conn.close()
    assert (await _verify(org, str(org_id))).valid


async def test_the_append_only_trigger_refuses_even_a_superuser_by_default(org: Org) -> None:
    org_id = uuid.UUID(await _chain(org, 5))
    conn = await org.db()
    try:
        for statement in (
            "UPDATE audit_logs SET action = 'x.y' WHERE org_id = $1",
            "DELETE FROM audit_logs WHERE org_id = $1",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
                await conn.execute(statement, org_id)
    finally:
        await conn.close()


async def test_a_chain_that_grew_is_checkpointed_after_the_configured_seconds(
    suite: Suite,
) -> None:
    suite.env.update(
        {"SENSEI_ORG_AUDIT_CHECKPOINT_EVERY": "1000", "SENSEI_ORG_AUDIT_CHECKPOINT_SECONDS": "0.1"}
    )
    org = await started_org(suite)
    org_id = await _chain(org, 5)
    service = await suite.service()
    request = audit_pb2.GetAuditCheckpointRequest(parent=f"organizations/{org_id}")
    for _ in range(200):
        if await org.count(
            "SELECT count(*) FROM audit_checkpoints WHERE org_id = $1", uuid.UUID(org_id)
        ):
            break
        await asyncio.sleep(0.05)
    latest = await org.audit.GetAuditCheckpoint(request, metadata=service.metadata)
    assert latest.checkpoint.seq == 5
    assert (await _verify(org, org_id)).checkpoints_checked == 1
