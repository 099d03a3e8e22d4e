"""The job queue: SKIP LOCKED claims, leases, reclaiming a dead worker's job, fencing, retries."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import pytest

from sensei.verification.v1 import verification_pb2
from services.verification import store
from services.verification.domain import (
    Lease,
    NewVerification,
    VerificationType,
    new_id,
)
from tests.harness import Suite
from tests.verification.conftest import Stack, start_stack

pb = verification_pb2

ORG = "6f1c1e52-7a0e-4c4e-9a10-000000000001"
MIGRATION = "6f1c1e52-7a0e-4c4e-9a10-000000000002"


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection to the verification schema of a fresh database."""
    connection = await asyncpg.connect(
        database_url, server_settings={"search_path": "verification"}
    )
    try:
        yield connection
    finally:
        await connection.close()


async def _queue(conn: asyncpg.Connection) -> str:
    new = NewVerification(ORG, MIGRATION, VerificationType.ROW_COUNT, ())
    async with conn.transaction():
        created = await store.insert_verification(conn, new_id(), new, "users/test")
        await store.enqueue_job(conn, created.id)
    return created.id


async def test_a_job_is_claimed_again_after_its_dead_workers_lease(
    conn: asyncpg.Connection,
) -> None:
    verification_id = await _queue(conn)
    dead = await store.claim_next_job(conn, "dead-worker", 0.5)
    assert dead == Lease(verification_id, "dead-worker", 1)
    assert await store.claim_next_job(conn, "live-worker", 0.5) is None

    # The dead worker never renews; make its lease run out without waiting for it.
    await conn.execute("UPDATE jobs SET lease_until = now() - interval '1 second'")
    live = await store.claim_next_job(conn, "live-worker", 30.0)

    assert live == Lease(verification_id, "live-worker", 2)
    assert not await store.renew_lease(conn, dead, 30.0)
    assert not await store.complete_job(conn, dead), "a lost lease fences the dead worker off"
    assert await store.complete_job(conn, live)
    assert await store.claim_next_job(conn, "live-worker", 30.0) is None


async def test_concurrent_claims_skip_locked_jobs_instead_of_waiting(
    conn: asyncpg.Connection, database_url: str
) -> None:
    first, second = await _queue(conn), await _queue(conn)
    other = await asyncpg.connect(database_url, server_settings={"search_path": "verification"})
    try:
        async with conn.transaction(), other.transaction():
            mine = await store.claim_next_job(conn, "a", 30.0)
            theirs = await asyncio.wait_for(store.claim_next_job(other, "b", 30.0), 2)
            assert mine is not None and theirs is not None
            assert {mine.verification_id, theirs.verification_id} == {first, second}
    finally:
        await other.close()


async def test_a_retried_job_waits_for_its_delay(conn: asyncpg.Connection) -> None:
    await _queue(conn)
    lease = await store.claim_next_job(conn, "worker", 30.0)
    assert lease is not None

    assert await store.retry_job_later(conn, lease, 60.0, "migration service unavailable")

    assert await store.claim_next_job(conn, "worker", 30.0) is None
    await conn.execute("UPDATE jobs SET lease_until = now()")
    again = await store.claim_next_job(conn, "worker", 30.0)
    assert again is not None and again.attempt == 2


async def _stack_without_workers(
    suite: Suite, make_sample_database: Callable[[], Awaitable[str]]
) -> Stack:
    stack = await start_stack(suite, make_sample_database, {"SENSEI_VERIFICATION_WORKERS": "0"})
    await stack.run_sql("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1), (2);")
    return stack


async def _database(stack: Stack) -> asyncpg.Connection:
    return await asyncpg.connect(
        stack.suite.database_url, server_settings={"search_path": "verification"}
    )


async def test_running_service_finishes_a_job_whose_worker_died(
    suite: Suite, make_sample_database: Callable[[], Awaitable[str]]
) -> None:
    stack = await _stack_without_workers(suite, make_sample_database)
    created = await stack.create(pb.VERIFICATION_TYPE_ROW_COUNT)
    conn = await _database(stack)
    try:
        # A worker claims the job, marks it RUNNING, and dies without renewing its lease.
        async with conn.transaction():
            dead = await store.claim_next_job(conn, "dead-worker", 0.5)
            assert dead is not None
            await store.start_verification(conn, dead.verification_id)
        await conn.execute("UPDATE jobs SET lease_until = now() - interval '1 second'")

        await suite.stop("verification")
        await suite.restart("verification", env={"SENSEI_VERIFICATION_WORKERS": "1"})
        done = await stack.finished(created.name)

        job = await conn.fetchrow("SELECT attempts, worker_id, state FROM jobs")
    finally:
        await conn.close()
    assert done.status == pb.VERIFICATION_STATUS_PASSED
    assert job is not None
    assert (job["attempts"], job["state"]) == (2, "done")
    assert job["worker_id"] != "dead-worker"


async def test_a_job_that_keeps_dying_ends_in_error(
    suite: Suite, make_sample_database: Callable[[], Awaitable[str]]
) -> None:
    stack = await _stack_without_workers(suite, make_sample_database)
    created = await stack.create(pb.VERIFICATION_TYPE_ROW_COUNT)
    conn = await _database(stack)
    try:
        await conn.execute("UPDATE jobs SET attempts = 1, state = 'running'")
    finally:
        await conn.close()

    await suite.stop("verification")
    await suite.restart(
        "verification",
        env={"SENSEI_VERIFICATION_WORKERS": "1", "SENSEI_VERIFICATION_MAX_ATTEMPTS": "1"},
    )
    done = await stack.finished(created.name)

    assert done.status == pb.VERIFICATION_STATUS_ERROR
    assert done.result["reason"] == "ATTEMPTS_EXHAUSTED"


async def test_an_unavailable_migration_service_delays_the_job_instead_of_failing_it(
    suite: Suite, make_sample_database: Callable[[], Awaitable[str]]
) -> None:
    stack = await _stack_without_workers(suite, make_sample_database)
    created = await stack.create(pb.VERIFICATION_TYPE_ROW_COUNT)
    await suite.stop("migration")
    await suite.stop("verification")
    await suite.restart("verification", env={"SENSEI_VERIFICATION_WORKERS": "1"})
    conn = await _database(stack)
    try:
        for _ in range(100):
            job = await conn.fetchrow("SELECT state, last_error FROM jobs")
            if job is not None and job["last_error"]:
                break
            await asyncio.sleep(0.05)
    finally:
        await conn.close()
    assert job is not None and job["state"] == "queued"
    assert "migration service is unavailable" in job["last_error"]
    running = await stack.verifications.GetVerification(
        pb.GetVerificationRequest(name=created.name), metadata=stack.owner.metadata
    )
    assert running.verification.status == pb.VERIFICATION_STATUS_RUNNING

    await suite.restart("migration")
    done = await stack.finished(created.name)

    assert done.status == pb.VERIFICATION_STATUS_PASSED
