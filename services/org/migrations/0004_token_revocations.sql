-- The revocation log: when access tokens stop counting before they expire
-- (docs/architecture.md#token-freshness). One row per change, written in the transaction
-- that makes it: an API key revoked, a principal deleted or given another role, an
-- organization deleted. The other services follow it over
-- AuthService.WatchTokenRevocations. Rows are appended under one advisory lock, so
-- `seq` order is commit order and a follower that resumes after a sequence misses nothing.
CREATE TABLE token_revocations (
    seq          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    api_key_id   uuid,
    subject      text,
    org_id       uuid,
    -- For `subject`: the role its tokens must carry to keep counting; NULL = deleted.
    valid_role   text,
    revoked_at   timestamptz NOT NULL DEFAULT now(),
    CHECK (num_nonnulls(api_key_id, subject, org_id) = 1),
    CHECK (valid_role IS NULL OR subject IS NOT NULL)
);
-- The replay skips key and principal entries older than any token can live.
CREATE INDEX token_revocations_revoked_at ON token_revocations (revoked_at);
