-- The pattern service's tables: patterns (the source of truth, vectors included), the
-- outcome log behind RecordPatternOutcome's request ids, and the indexer's deletion queue.
-- Every table runs unqualified: the migration runner sets search_path to the service schema.
-- The vector index itself (pgvector table or Weaviate collection) is derived data, created
-- by the service at runtime with the configured dimension, and rebuilt by ReindexPatterns.

-- pgvector for the embedded index; it lands in the service schema (first on the path).
CREATE EXTENSION IF NOT EXISTS vector;

-- Learned migration transformations, global to the platform (no organization).
-- `version` increments on every change (the API's etag derives from it); `index_revision`
-- only when what the index holds changes (vector, type), so the indexer can tell whether
-- the revision it wrote is still the current one.
CREATE TABLE patterns (
    id             uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    type           text        NOT NULL,
    fingerprint    text        NOT NULL,
    -- UUIDv5 of the fingerprint: the object uuid in the vector index.
    embedding_id   uuid        NOT NULL,
    success_count  bigint      NOT NULL DEFAULT 0 CHECK (success_count >= 0),
    failure_count  bigint      NOT NULL DEFAULT 0 CHECK (failure_count >= 0),
    metadata       jsonb       NOT NULL DEFAULT '{}'::jsonb,
    -- The text the vector was embedded from (NULL when the caller sent the vector); kept so
    -- the vector can be embedded again when the configured dimension changes.
    source_text    text,
    -- The vector itself: the index is rebuilt from here.
    embedding      real[]      NOT NULL CHECK (cardinality(embedding) >= 2),
    index_state    text        NOT NULL DEFAULT 'PENDING'
                               CHECK (index_state IN ('PENDING', 'INDEXED', 'STALE')),
    index_revision bigint      NOT NULL DEFAULT 1,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    indexed_at     timestamptz,
    -- Subject of the last writer (`users/…` or `serviceAccounts/…`), for operators.
    updated_by     text        NOT NULL DEFAULT '',
    version        bigint      NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX patterns_fingerprint ON patterns (fingerprint);
-- Search maps index hits back to patterns. Not UNIQUE: it derives from the fingerprint, and a
-- second unique index would make concurrent first upserts of a fingerprint collide there.
CREATE INDEX patterns_embedding_id ON patterns (embedding_id);
-- Keyset orders of ListPatterns: all, by type, by index state. The last one is also how
-- the indexer finds pending patterns.
CREATE INDEX patterns_created ON patterns (created_at, id);
CREATE INDEX patterns_type_created ON patterns (type, created_at, id);
CREATE INDEX patterns_index_state_created ON patterns (index_state, created_at, id);

-- One row per RecordPatternOutcome call that carried a request id: a repeat by the same
-- caller finds its row and counts nothing again; a repeat with another body is refused.
CREATE TABLE outcome_requests (
    caller      text        NOT NULL,
    request_id  text        NOT NULL,
    pattern_id  uuid        NOT NULL REFERENCES patterns (id) ON DELETE CASCADE,
    outcome     text        NOT NULL CHECK (outcome IN ('SUCCESS', 'FAILURE')),
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (caller, request_id)
);
CREATE INDEX outcome_requests_pattern ON outcome_requests (pattern_id);
CREATE INDEX outcome_requests_recorded ON outcome_requests (recorded_at);

-- Vectors the indexer must remove from the index (their patterns were deleted). Re-creating
-- a pattern with the same fingerprint takes its embedding id back out of the queue.
CREATE TABLE index_deletions (
    position     bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    embedding_id uuid        NOT NULL,
    queued_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX index_deletions_embedding_id ON index_deletions (embedding_id);
