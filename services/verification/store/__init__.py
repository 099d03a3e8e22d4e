"""All SQL of the verification service (schema `verification`, on the search path).

One function per query; each takes a `shared.db.Connection` (the caller owns the transaction)
and returns domain objects. Callers use this package as one store (`store.claim_next_job`,
`store.verification`); the queries live by what they are about: `verifications` (with
`CHANGES_CHANNEL`, announced by a trigger on every committed change), `jobs` (the queue, with
`JOBS_CHANNEL`), `certificates`, `signing_keys` (and the database clock) and
`deleted_organizations`.
"""

from services.verification.store.certificates import certificate, insert_certificate
from services.verification.store.deleted_organizations import (
    close_organization,
    organization_deleted,
)
from services.verification.store.jobs import (
    JOBS_CHANNEL,
    claim_next_job,
    complete_job,
    count_pending_jobs,
    enqueue_job,
    hold_lease,
    renew_lease,
    retry_job_later,
)
from services.verification.store.signing_keys import (
    active_signing_key,
    database_now,
    insert_signing_key,
    lock_signing_keys,
    signing_key,
    signing_keys,
    signing_keys_page,
    update_signing_key,
)
from services.verification.store.verifications import (
    CHANGES_CHANNEL,
    Row,
    finish_verification,
    insert_verification,
    set_progress,
    start_verification,
    verification,
    verification_by_id,
    verification_of,
    verifications_page,
)

__all__ = [
    "CHANGES_CHANNEL",
    "JOBS_CHANNEL",
    "Row",
    "active_signing_key",
    "certificate",
    "claim_next_job",
    "close_organization",
    "complete_job",
    "count_pending_jobs",
    "database_now",
    "enqueue_job",
    "finish_verification",
    "hold_lease",
    "insert_certificate",
    "insert_signing_key",
    "insert_verification",
    "lock_signing_keys",
    "organization_deleted",
    "renew_lease",
    "retry_job_later",
    "set_progress",
    "signing_key",
    "signing_keys",
    "signing_keys_page",
    "start_verification",
    "update_signing_key",
    "verification",
    "verification_by_id",
    "verification_of",
    "verifications_page",
]
