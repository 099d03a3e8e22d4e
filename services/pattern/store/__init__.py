"""All SQL of the pattern service (asyncpg). One function per query; domain objects out.

Table names are unqualified: connections have the service schema on their search_path.
Vectors travel as `real[]`. `INDEX_CHANNEL` is notified (at commit) whenever the index has
work to do, so the indexer wakes at once.

Callers use this package as one store (`store.pattern_by_id`, `store.pending_work`); the
queries live by what they are about: `patterns` (the catalog's rows), `outcomes` (counting
outcomes once) and `index_queue` (the vector index's work, deletions, lock and counts).
"""

from services.pattern.store.index_queue import (
    INDEX_CHANNEL,
    IndexCounts,
    IndexWork,
    QueuedDeletion,
    forget_deletions,
    index_counts,
    lock_indexer,
    mark_all_pending,
    mark_indexed,
    mark_stale,
    notify_indexer,
    pending_work,
    queued_deletions,
    replace_embedding,
    try_lock_indexer,
    unlock_indexer,
)
from services.pattern.store.outcomes import (
    OutcomeRequest,
    claim_outcome_migration,
    claim_outcome_request,
    count_outcome,
    outcome_request,
)
from services.pattern.store.patterns import (
    delete_pattern,
    insert_pattern_if_absent,
    pattern_by_fingerprint,
    pattern_by_id,
    patterns_by_embedding_id,
    patterns_page,
    update_pattern,
)

__all__ = [
    "INDEX_CHANNEL",
    "IndexCounts",
    "IndexWork",
    "OutcomeRequest",
    "QueuedDeletion",
    "claim_outcome_migration",
    "claim_outcome_request",
    "count_outcome",
    "delete_pattern",
    "forget_deletions",
    "index_counts",
    "insert_pattern_if_absent",
    "lock_indexer",
    "mark_all_pending",
    "mark_indexed",
    "mark_stale",
    "notify_indexer",
    "outcome_request",
    "pattern_by_fingerprint",
    "pattern_by_id",
    "patterns_by_embedding_id",
    "patterns_page",
    "pending_work",
    "queued_deletions",
    "replace_embedding",
    "try_lock_indexer",
    "unlock_indexer",
    "update_pattern",
]
