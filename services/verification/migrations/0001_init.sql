-- Verifications, their job queue, certificates and the public halves of the signing keys.
-- Private signing keys never enter PostgreSQL: they live in the service's key directory.

-- Certificate signing keys (platform-wide). Exactly one is active at a time.
CREATE TABLE signing_keys (
    key_id         text        PRIMARY KEY CHECK (key_id ~ '^[0-9a-f]{64}$'),
    public_key_der bytea       NOT NULL,
    status         text        NOT NULL CHECK (status IN ('active', 'retired', 'revoked')),
    not_before     timestamptz NOT NULL,
    not_after      timestamptz,
    revoke_time    timestamptz,
    revoke_reason  text        NOT NULL DEFAULT '',
    created_at     timestamptz NOT NULL DEFAULT now(),
    CHECK ((status = 'active') = (not_after IS NULL)),
    CHECK ((status = 'revoked') = (revoke_time IS NOT NULL))
);
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys ((true)) WHERE status = 'active';
-- ListSigningKeys: newest first.
CREATE INDEX signing_keys_newest_first ON signing_keys (not_before DESC, key_id DESC);

-- One verification of one migration (DESIGN §1 Verification, plus org, tables, progress).
CREATE TABLE verifications (
    id             uuid             PRIMARY KEY,
    org_id         uuid             NOT NULL,
    migration_id   uuid             NOT NULL,
    type           text             NOT NULL
                   CHECK (type IN ('SCHEMA_PARITY', 'ROW_COUNT', 'CHECKSUM')),
    status         text             NOT NULL
                   CHECK (status IN ('PENDING', 'RUNNING', 'PASSED', 'FAILED', 'ERROR')),
    score          double precision NOT NULL DEFAULT 0 CHECK (score >= 0 AND score <= 1),
    certificate_id uuid             UNIQUE,
    result         jsonb            NOT NULL DEFAULT '{}'::jsonb,
    tables         text[]           NOT NULL DEFAULT '{}',
    tables_done    integer          NOT NULL DEFAULT 0 CHECK (tables_done >= 0),
    tables_total   integer          NOT NULL DEFAULT 0 CHECK (tables_total >= 0),
    created_by     text             NOT NULL DEFAULT '',
    created_at     timestamptz      NOT NULL DEFAULT now(),
    updated_at     timestamptz      NOT NULL DEFAULT now(),
    started_at     timestamptz,
    finished_at    timestamptz,
    version        bigint           NOT NULL DEFAULT 1
);
-- ListVerifications keyset orders: per migration, across the organization, and per filter.
CREATE INDEX verifications_by_migration ON verifications (org_id, migration_id, created_at, id);
CREATE INDEX verifications_by_org ON verifications (org_id, created_at, id);
CREATE INDEX verifications_by_org_status ON verifications (org_id, status, created_at, id);
CREATE INDEX verifications_by_org_type ON verifications (org_id, type, created_at, id);

-- Every committed change of a verification is announced (without its possibly large result)
-- so that WatchVerification works across replicas; NOTIFY is delivered at commit, in order.
CREATE FUNCTION announce_verification_change() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    payload text := (to_jsonb(NEW) - 'result')::text;
BEGIN
    IF octet_length(payload) > 7500 THEN
        payload := jsonb_build_object('id', NEW.id, 'version', NEW.version)::text;
    END IF;
    PERFORM pg_notify('sensei_verification_changes', payload);
    RETURN NULL;
END
$$;
CREATE TRIGGER verifications_announce_change
    AFTER INSERT OR UPDATE ON verifications
    FOR EACH ROW EXECUTE FUNCTION announce_verification_change();

-- The signed certificate of a finished (PASSED or FAILED) verification.
CREATE TABLE certificates (
    id                        uuid             PRIMARY KEY,
    org_id                    uuid             NOT NULL,
    migration_id              uuid             NOT NULL,
    verification_id           uuid             NOT NULL UNIQUE REFERENCES verifications (id),
    key_id                    text             NOT NULL REFERENCES signing_keys (key_id),
    -- The DSSE envelope exactly as issued; verifiers check these bytes.
    envelope                  bytea            NOT NULL,
    verification_type         text             NOT NULL,
    score                     double precision NOT NULL,
    result_digest             text             NOT NULL,
    source_schema_fingerprint text             NOT NULL,
    target_schema_fingerprint text             NOT NULL,
    issued_at                 timestamptz      NOT NULL
);
CREATE INDEX certificates_by_org ON certificates (org_id, issued_at, id);
CREATE INDEX certificates_by_key ON certificates (key_id);

-- The work queue: one job per verification. A job is claimable when it is queued or its
-- worker's lease ran out, and `lease_until` has passed (for queued jobs: the retry time).
CREATE TABLE jobs (
    verification_id uuid        PRIMARY KEY REFERENCES verifications (id),
    state           text        NOT NULL DEFAULT 'queued'
                    CHECK (state IN ('queued', 'running', 'done')),
    lease_until     timestamptz NOT NULL DEFAULT now(),
    attempts        integer     NOT NULL DEFAULT 0,
    worker_id       text,
    last_error      text        NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
-- claim_next_job: the earliest claimable job among those not done.
CREATE INDEX jobs_claimable ON jobs (lease_until) WHERE state <> 'done';
