"""The job loop: claim a verification job, run it under a lease, record the outcome.

Workers of every replica share the `jobs` table: a claim is `FOR UPDATE SKIP LOCKED` plus a
lease that the worker renews while it runs. A worker that dies stops renewing; once its lease
runs out, any worker claims the job again (its attempt number grows, which fences off whatever
the dead worker might still write). Outcomes:

- PASSED / FAILED: verification, certificate and job completion in one transaction;
- ERROR: the verification could not be carried out (CheckError), or the job kept failing;
- retry later: a dependency was unavailable; the job is requeued with a growing delay.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Awaitable
from typing import Any, TypeVar

import asyncpg

from services.verification import store
from services.verification.checks import CheckOutcome, CheckRunner
from services.verification.domain import (
    Certificate,
    CheckError,
    JobPolicy,
    Lease,
    LeaseLost,
    Verification,
    VerificationStatus,
    error_result,
    new_id,
    status_of_score,
)
from services.verification.envelope import CertificateClaims, SchemaSubject
from services.verification.feed import ChangeFeed
from services.verification.row_counts import ProgressCallback
from services.verification.use_cases.signing_keys import SigningKeys
from shared import outbox, tracing
from shared.db import CONFLICT_DB_ERRORS, TRANSIENT_DB_ERRORS, Connection
from shared.errors import Unavailable
from shared.listen import wait_woken

log = logging.getLogger(__name__)

WORKER_ACTOR = "services/verification"

T = TypeVar("T")

# Failures of this service's own database: transient, the job is retried.
_OWN_DATABASE_ERRORS: tuple[type[BaseException], ...] = (
    *TRANSIENT_DB_ERRORS,
    *CONFLICT_DB_ERRORS,
)


def new_worker_id(index: int) -> str:
    """A worker id unique across replicas and restarts: host, pid, index, random."""
    return f"{socket.gethostname()}:{os.getpid()}:{index}:{uuid.uuid4().hex[:8]}"


class Worker:
    """One job loop."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        runner: CheckRunner,
        signing: SigningKeys,
        policy: JobPolicy,
        worker_id: str,
    ) -> None:
        self._pool = pool
        self._runner = runner
        self._signing = signing
        self._policy = policy
        self.worker_id = worker_id

    async def run_forever(self, feed: ChangeFeed) -> None:
        """Claims and runs jobs until cancelled; sleeps until woken or `poll_seconds` pass."""
        wake = feed.job_signal()
        while True:
            wake.clear()
            try:
                worked = await self.run_once()
            except _OWN_DATABASE_ERRORS as exc:
                log.warning("worker %s: database unavailable: %s", self.worker_id, exc)
                worked = False
            except Exception:
                log.exception("worker %s: unexpected failure", self.worker_id)
                worked = False
            if not worked:
                await wait_woken(wake, self._policy.poll_seconds)

    async def run_once(self) -> bool:
        """Claims one job and carries it through; False when there was none to claim."""
        claimed = await self.claim()
        if claimed is None:
            return False
        lease, verification = claimed
        with tracing.linked_span(
            "verification job",
            [lease.traceparent],
            {"sensei.verification.id": lease.verification_id, "sensei.job.attempt": lease.attempt},
        ):
            await self.process(lease, verification)
        return True

    async def claim(self) -> tuple[Lease, Verification] | None:
        """Claims the next job and marks its verification RUNNING, in one transaction."""
        async with self._pool.acquire() as conn, conn.transaction():
            lease = await store.claim_next_job(conn, self.worker_id, self._policy.lease_seconds)
            if lease is None:
                return None
            verification = await store.start_verification(conn, lease.verification_id)
            await _audit(conn, verification, "verification.start", {"attempt": lease.attempt})
        log.info(
            "worker %s claimed verification %s (attempt %d)",
            self.worker_id,
            lease.verification_id,
            lease.attempt,
        )
        return lease, verification

    async def process(self, lease: Lease, verification: Verification) -> None:
        """Runs a claimed job to an outcome (or lets go when this worker lost it)."""
        try:
            await self._process(lease, verification)
        except LeaseLost:
            log.warning(
                "worker %s lost verification %s to another worker",
                self.worker_id,
                lease.verification_id,
            )

    async def _process(self, lease: Lease, verification: Verification) -> None:
        try:
            if self._policy.exhausted(lease.attempt):
                raise CheckError(
                    "ATTEMPTS_EXHAUSTED",
                    f"gave up after {lease.attempt - 1} attempts that did not finish",
                )
            outcome = await self._under_lease(
                lease, self._runner.run(verification, lease.attempt, self._progress(lease))
            )
            await self._finish(lease, verification, outcome)
        except CheckError as exc:
            await self._fail(lease, verification, exc)
        except Unavailable as exc:
            await self._retry_or_fail(lease, verification, exc.message)
        except LeaseLost:
            raise
        except _OWN_DATABASE_ERRORS as exc:
            # Our own database: the lease runs out and the job is claimed again.
            log.warning("worker %s: database unavailable mid-job: %s", self.worker_id, exc)
        except asyncio.CancelledError:
            await self._give_back(lease)
            raise
        except Exception as exc:
            trace_id = uuid.uuid4().hex
            log.exception("verification %s failed (trace id %s)", verification.id, trace_id)
            await self._fail(
                lease,
                verification,
                CheckError(
                    "INTERNAL",
                    f"internal error (trace id {trace_id})",
                    exception=type(exc).__name__,
                ),
            )

    async def _under_lease(self, lease: Lease, work: Awaitable[T]) -> T:
        """Awaits `work`, renewing the lease every third of its length; LeaseLost if lost."""
        task = asyncio.ensure_future(work)
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=self._policy.lease_seconds / 3)
                if done:
                    return task.result()
                try:
                    async with self._pool.acquire() as conn:
                        held = await store.renew_lease(conn, lease, self._policy.lease_seconds)
                except _OWN_DATABASE_ERRORS as exc:
                    log.warning("worker %s: cannot renew lease: %s", self.worker_id, exc)
                    continue
                if not held:
                    raise LeaseLost()
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    def _progress(self, lease: Lease) -> ProgressCallback:
        async def report(tables_done: int, tables_total: int) -> None:
            try:
                async with self._pool.acquire() as conn, conn.transaction():
                    if not await store.hold_lease(conn, lease):
                        raise LeaseLost()
                    await store.set_progress(conn, lease.verification_id, tables_done, tables_total)
            except _OWN_DATABASE_ERRORS as exc:
                # Progress is informative; the lease decides whether the work still counts.
                log.warning("worker %s: progress not recorded: %s", self.worker_id, exc)

        return report

    async def _finish(
        self, lease: Lease, verification: Verification, outcome: CheckOutcome
    ) -> None:
        status = status_of_score(outcome.score)
        async with self._pool.acquire() as conn, conn.transaction():
            if not await store.complete_job(conn, lease):
                raise LeaseLost()
            certificate_id = new_id()
            issued_at = await store.database_now(conn)
            claims = CertificateClaims(
                certificate_id=certificate_id,
                verification_id=verification.id,
                migration_id=verification.migration_id,
                org_id=verification.org_id,
                verification_type=verification.type.value,
                result=outcome.result,
                score=outcome.score,
                source_schema=SchemaSubject(outcome.source.name, outcome.source.fingerprint),
                target_schema=SchemaSubject(outcome.target.name, outcome.target.fingerprint),
                issued_at=issued_at,
            )
            issued = await self._signing.issue(conn, claims)
            await store.insert_certificate(
                conn,
                Certificate(
                    id=certificate_id,
                    org_id=verification.org_id,
                    migration_id=verification.migration_id,
                    verification_id=verification.id,
                    key_id=issued.key_id,
                    envelope=issued.envelope,
                    verification_type=verification.type,
                    score=outcome.score,
                    result_digest=issued.result_digest,
                    source_schema_fingerprint=outcome.source.fingerprint,
                    target_schema_fingerprint=outcome.target.fingerprint,
                    issued_at=issued_at,
                ),
            )
            await store.finish_verification(
                conn,
                verification.id,
                status=status,
                score=outcome.score,
                result=outcome.result,
                certificate_id=certificate_id,
            )
            await _audit(
                conn,
                verification,
                "verification.finish",
                {"status": status.value, "score": outcome.score, "certificate_id": certificate_id},
            )
        log.info("verification %s %s (score %.4f)", verification.id, status.value, outcome.score)

    async def _fail(self, lease: Lease, verification: Verification, error: CheckError) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            if not await store.complete_job(conn, lease, error.message):
                raise LeaseLost()
            await store.finish_verification(
                conn,
                verification.id,
                status=VerificationStatus.ERROR,
                score=0.0,
                result=error_result(verification.type, error.reason, error.message, error.details),
                certificate_id=None,
            )
            await _audit(
                conn,
                verification,
                "verification.finish",
                {"status": "ERROR", "reason": error.reason},
            )
        log.info("verification %s ERROR: %s", verification.id, error.message)

    async def _retry_or_fail(self, lease: Lease, verification: Verification, message: str) -> None:
        if self._policy.exhausted(lease.attempt + 1):
            await self._fail(
                lease,
                verification,
                CheckError(
                    "DEPENDENCY_UNAVAILABLE",
                    f"gave up after {lease.attempt} attempts: {message}",
                ),
            )
            return
        delay = self._policy.retry_delay(lease.attempt)
        async with self._pool.acquire() as conn:
            await store.retry_job_later(conn, lease, delay, message)
        log.info("verification %s: %s; retrying in %.0fs", verification.id, message, delay)

    async def _give_back(self, lease: Lease) -> None:
        # Shutting down: let another worker take the job now instead of after the lease.
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2), self._pool.acquire() as conn:
                await store.retry_job_later(conn, lease, 0.0, "worker shut down")


async def _audit(
    conn: Connection, verification: Verification, action: str, details: dict[str, Any]
) -> None:
    # Workers act for no caller: the service itself is the actor of these events.
    await outbox.record(
        conn,
        action=action,
        resource_type="verification",
        resource_id=verification.id,
        org_id=verification.org_id,
        details=details,
        actor=WORKER_ACTOR,
    )
