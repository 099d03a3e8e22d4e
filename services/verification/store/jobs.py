"""SQL of the job queue (the `jobs` table): one job per verification, claimed under a lease.

New jobs are announced on `JOBS_CHANNEL` (at commit), so idle workers wake at once.
"""

from __future__ import annotations

from services.verification.domain import Lease
from shared import tracing
from shared.db import Connection

JOBS_CHANNEL = "sensei_verification_jobs"


async def enqueue_job(conn: Connection, verification_id: str) -> None:
    """Queues the job of a verification and wakes idle workers (at commit)."""
    await conn.execute(
        "INSERT INTO jobs (verification_id, traceparent) VALUES ($1, $2)",
        verification_id,
        tracing.current_traceparent(),
    )
    await conn.execute("SELECT pg_notify($1, $2)", JOBS_CHANNEL, verification_id)


async def claim_next_job(conn: Connection, worker_id: str, lease_seconds: float) -> Lease | None:
    """Claims the earliest claimable job: queued and due, or running with an expired lease.

    `FOR UPDATE SKIP LOCKED` lets replicas claim side by side without waiting on each other.
    """
    row = await conn.fetchrow(
        "WITH next AS ("
        " SELECT verification_id FROM jobs"
        " WHERE state <> 'done' AND lease_until <= now()"
        " ORDER BY lease_until LIMIT 1 FOR UPDATE SKIP LOCKED)"
        " UPDATE jobs SET state = 'running', worker_id = $1, attempts = attempts + 1,"
        " lease_until = clock_timestamp() + make_interval(secs => $2), updated_at = now()"
        " FROM next WHERE jobs.verification_id = next.verification_id"
        " RETURNING jobs.verification_id::text AS verification_id, jobs.attempts, jobs.traceparent",
        worker_id,
        lease_seconds,
    )
    if row is None:
        return None
    return Lease(row["verification_id"], worker_id, row["attempts"], row["traceparent"])


async def renew_lease(conn: Connection, lease: Lease, lease_seconds: float) -> bool:
    """Extends a held lease; False when the worker lost the job."""
    renewed = await conn.fetchval(
        "UPDATE jobs SET lease_until = clock_timestamp() + make_interval(secs => $4),"
        " updated_at = now()"
        " WHERE verification_id = $1 AND worker_id = $2 AND attempts = $3 AND state = 'running'"
        " RETURNING true",
        lease.verification_id,
        lease.worker_id,
        lease.attempt,
        lease_seconds,
    )
    return bool(renewed)


async def hold_lease(conn: Connection, lease: Lease) -> bool:
    """Locks the job row while the worker still holds it (fences writes of a lost worker)."""
    held = await conn.fetchval(
        "SELECT true FROM jobs"
        " WHERE verification_id = $1 AND worker_id = $2 AND attempts = $3 AND state = 'running'"
        " FOR UPDATE",
        lease.verification_id,
        lease.worker_id,
        lease.attempt,
    )
    return bool(held)


async def retry_job_later(conn: Connection, lease: Lease, delay_seconds: float, error: str) -> bool:
    """Gives a held job back to the queue, claimable after `delay_seconds`."""
    released = await conn.fetchval(
        "UPDATE jobs SET state = 'queued', worker_id = NULL, last_error = $4,"
        " lease_until = clock_timestamp() + make_interval(secs => $5), updated_at = now()"
        " WHERE verification_id = $1 AND worker_id = $2 AND attempts = $3 AND state = 'running'"
        " RETURNING true",
        lease.verification_id,
        lease.worker_id,
        lease.attempt,
        error,
        delay_seconds,
    )
    return bool(released)


async def complete_job(conn: Connection, lease: Lease, error: str = "") -> bool:
    """Marks a held job done; False (and nothing written) when the worker lost it."""
    done = await conn.fetchval(
        "UPDATE jobs SET state = 'done', last_error = $4, updated_at = now()"
        " WHERE verification_id = $1 AND worker_id = $2 AND attempts = $3 AND state = 'running'"
        " RETURNING true",
        lease.verification_id,
        lease.worker_id,
        lease.attempt,
        error,
    )
    return bool(done)


async def count_pending_jobs(conn: Connection) -> int:
    """Jobs queued or running (the queue depth metric)."""
    count: int = await conn.fetchval("SELECT count(*) FROM jobs WHERE state <> 'done'")
    return count
