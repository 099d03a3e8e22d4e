-- The audit trail: an append-only, hash-chained log per organization, signed checkpoints,
-- and the database role the org service runs its audit writes as.
-- There is no foreign key to organizations or users: the trail outlives what it describes
-- (an organization's deletion is itself an audit event), and nothing may cascade into it.

-- One row per chain: where it ends. Appends lock this row, so appends to one organization
-- are serialized and never fork; `appended_at` keeps create times monotonic along the chain.
-- Not a trust anchor (the service may update it): signed checkpoints are.
CREATE TABLE audit_chain_heads (
    org_id         uuid        PRIMARY KEY,
    seq            bigint      NOT NULL DEFAULT 0 CHECK (seq >= 0),
    head_hash      text        NOT NULL DEFAULT repeat('0', 64),
    appended_at    timestamptz,
    checkpoint_seq bigint      NOT NULL DEFAULT 0,
    checkpoint_at  timestamptz
);
-- The periodic checkpointer looks for chains that moved since their last checkpoint.
CREATE INDEX audit_chain_heads_unsigned ON audit_chain_heads (org_id) WHERE seq > checkpoint_seq;

-- The entries. entry_hash = hex SHA-256 of the RFC 8785 JSON of every other column
-- (see services/org/audit_chain.py); prev_hash is the previous entry's entry_hash.
CREATE TABLE audit_logs (
    id            uuid        PRIMARY KEY,
    org_id        uuid        NOT NULL,
    seq           bigint      NOT NULL CHECK (seq >= 1),
    event_id      uuid        NOT NULL,
    user_id       uuid,
    actor         text        NOT NULL,
    action        text        NOT NULL,
    resource_type text        NOT NULL,
    resource_id   text        NOT NULL,
    ip_address    text        NOT NULL,
    service       text        NOT NULL,
    details       jsonb       NOT NULL,
    occurred_at   timestamptz NOT NULL,
    created_at    timestamptz NOT NULL,
    prev_hash     text        NOT NULL,
    entry_hash    text        NOT NULL
);
-- A fork (two entries with one seq) fails loudly; also the keyset order of ListAuditLogs
-- and the walk of VerifyAuditChain.
CREATE UNIQUE INDEX audit_logs_org_seq ON audit_logs (org_id, seq DESC);
-- Idempotency: an event id is stored once, whatever the number of deliveries.
CREATE UNIQUE INDEX audit_logs_event_id ON audit_logs (event_id);
-- ListAuditLogs filters, each in the keyset order.
CREATE INDEX audit_logs_org_user_seq ON audit_logs (org_id, user_id, seq DESC);
CREATE INDEX audit_logs_org_action_seq ON audit_logs (org_id, action, seq DESC);
CREATE INDEX audit_logs_org_resource_seq
    ON audit_logs (org_id, resource_type, resource_id, seq DESC);
-- Time ranges are turned into seq bounds (create times are monotonic along a chain).
CREATE INDEX audit_logs_org_created ON audit_logs (org_id, created_at, seq);

-- Signed statements "the chain of org X had head H at seq S at time T", ECDSA P-256
-- (DER) with a token signing key (published by AuthService.GetJwks).
CREATE TABLE audit_checkpoints (
    org_id     uuid        NOT NULL,
    seq        bigint      NOT NULL,
    head_hash  text        NOT NULL,
    created_at timestamptz NOT NULL,
    key_id     text        NOT NULL,
    signature  bytea       NOT NULL,
    PRIMARY KEY (org_id, seq)
);

-- Append-only, for everyone: the trigger refuses UPDATE, DELETE and TRUNCATE whoever runs
-- them. Only a superuser can get past it (ALTER TABLE ... DISABLE TRIGGER, or
-- session_replication_role = replica), which is what the tamper tests do.
CREATE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit table % is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_logs_append_only BEFORE UPDATE OR DELETE ON audit_logs
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_logs_no_truncate BEFORE TRUNCATE ON audit_logs
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();

-- The org service's runtime role. Roles are cluster-wide (test databases share one
-- cluster), so it is created once, tolerating a concurrent creator. NOLOGIN: a deployment
-- grants it to the login role the service connects as; when the connecting user may
-- assume it, the service also runs its audit writes under it (SET LOCAL ROLE).
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'sensei_org_service') THEN
        CREATE ROLE sensei_org_service NOLOGIN;
    END IF;
EXCEPTION
    WHEN duplicate_object OR unique_violation THEN NULL;
END
$$;
DO $$
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO sensei_org_service', current_schema());
END
$$;
GRANT SELECT, INSERT, UPDATE, DELETE
    ON organizations, users, service_accounts, api_keys, token_signing_keys, request_ids,
       audit_outbox
    TO sensei_org_service;
-- The audit trail itself: read and append, never change or remove.
GRANT SELECT, INSERT ON audit_logs, audit_checkpoints TO sensei_org_service;
GRANT SELECT, INSERT, UPDATE ON audit_chain_heads TO sensei_org_service;
