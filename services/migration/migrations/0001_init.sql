-- The migration service: migrations, their schemas and agent executions, token usage, and
-- the change log WatchMigration streams from. Names are unqualified (the runner sets the
-- service's schema first on the search path). org_id refers to the org service's
-- organizations; it is checked over RPC, never by a foreign key across schemas.

CREATE TABLE migrations (
    id                      uuid             PRIMARY KEY,
    org_id                  uuid             NOT NULL,
    display_name            text             NOT NULL,            -- DESIGN Migration.name
    description             text             NOT NULL DEFAULT '',
    status                  text             NOT NULL DEFAULT 'PENDING' CHECK (status IN (
        'PENDING', 'ANALYZING', 'MIGRATING', 'VERIFYING', 'PAUSED',
        'COMPLETED', 'FAILED', 'CANCELLED')),
    -- Connection configs (JSON) sealed with AES-256-GCM (config_cipher.py); never in clear.
    source_config_sealed    bytea            NOT NULL,
    target_config_sealed    bytea            NOT NULL,
    progress                double precision NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 1),
    started_at              timestamptz,
    completed_at            timestamptz,
    paused_status           text CHECK (paused_status IN ('ANALYZING', 'MIGRATING', 'VERIFYING')),
    failure_reason          text             NOT NULL DEFAULT '',
    run                     integer          NOT NULL DEFAULT 0,  -- StartMigration count
    version                 bigint           NOT NULL DEFAULT 1,  -- the etag; +1 per write
    created_at              timestamptz      NOT NULL DEFAULT now(),
    updated_at              timestamptz      NOT NULL DEFAULT now()
);
-- ListMigrations: keyset (created_at, id) per organization, with and without a status filter;
-- the second also counts an organization's in-flight migrations for the plan quota.
CREATE INDEX migrations_org_created ON migrations (org_id, created_at, id);
CREATE INDEX migrations_org_status_created ON migrations (org_id, status, created_at, id);

CREATE TABLE schemas (
    id           uuid        PRIMARY KEY,
    migration_id uuid        NOT NULL REFERENCES migrations (id) ON DELETE CASCADE,
    org_id       uuid        NOT NULL,
    type         text        NOT NULL CHECK (type IN ('SOURCE', 'TARGET')),
    definition   jsonb       NOT NULL,                 -- canonical form (schema_model.py)
    fingerprint  text        NOT NULL CHECK (fingerprint ~ '^[0-9a-f]{64}$'),
    metadata     jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at   timestamptz NOT NULL DEFAULT now()
);
-- ListSchemas: keyset per migration, with and without a type filter.
CREATE INDEX schemas_migration_created ON schemas (migration_id, created_at, id);
CREATE INDEX schemas_migration_type_created ON schemas (migration_id, type, created_at, id);
CREATE INDEX schemas_fingerprint ON schemas (fingerprint);

CREATE TABLE agent_executions (
    id            uuid        PRIMARY KEY,
    migration_id  uuid        NOT NULL REFERENCES migrations (id) ON DELETE CASCADE,
    org_id        uuid        NOT NULL,
    agent_type    text        NOT NULL CHECK (agent_type IN (
        'SCHEMA_ANALYZER', 'SCHEMA_MAPPER', 'DATA_MIGRATOR', 'VALIDATOR', 'OPTIMIZER')),
    status        text        NOT NULL DEFAULT 'RUNNING' CHECK (status IN (
        'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED')),
    tokens_used   bigint      NOT NULL DEFAULT 0 CHECK (tokens_used >= 0),
    duration_ms   bigint      NOT NULL DEFAULT 0 CHECK (duration_ms >= 0),
    input         jsonb       NOT NULL DEFAULT '{}'::jsonb,
    output        jsonb       NOT NULL DEFAULT '{}'::jsonb,
    error_message text        NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    completed_at  timestamptz
);
-- ListAgentExecutions: keyset per migration, unfiltered, by agent type, by status.
CREATE INDEX agent_executions_migration_created
    ON agent_executions (migration_id, created_at, id);
CREATE INDEX agent_executions_migration_type_created
    ON agent_executions (migration_id, agent_type, created_at, id);
CREATE INDEX agent_executions_migration_status_created
    ON agent_executions (migration_id, status, created_at, id);

-- Tokens by organization, calendar month (UTC) and agent type: GetUsage and the monthly
-- token quota read a handful of rows instead of scanning executions. Kept when migrations
-- are deleted (the tokens were spent). Updated in the transaction of each start/complete.
CREATE TABLE token_usage (
    org_id          uuid   NOT NULL,
    month           date   NOT NULL CHECK (extract(day FROM month) = 1),
    agent_type      text   NOT NULL,
    tokens_used     bigint NOT NULL DEFAULT 0 CHECK (tokens_used >= 0),
    execution_count bigint NOT NULL DEFAULT 0 CHECK (execution_count >= 0),
    PRIMARY KEY (org_id, month, agent_type)
);

-- Every committed version of every migration, for WatchMigration: a watcher woken by a
-- NOTIFY reads the versions after the last one it sent, so it sees each change once and in
-- order even when notifications arrive late or the listener reconnects. Pruned by age.
CREATE TABLE migration_changes (
    migration_id         uuid             NOT NULL,
    version              bigint           NOT NULL,
    event_type           text             NOT NULL CHECK (event_type IN (
        'STATUS_CHANGED', 'PROGRESS_CHANGED', 'UPDATED', 'DELETED')),
    org_id               uuid             NOT NULL,
    display_name         text             NOT NULL,
    description          text             NOT NULL,
    status               text             NOT NULL,
    source_config_sealed bytea            NOT NULL,
    target_config_sealed bytea            NOT NULL,
    progress             double precision NOT NULL,
    started_at           timestamptz,
    completed_at         timestamptz,
    paused_status        text,
    failure_reason       text             NOT NULL,
    run                  integer          NOT NULL,
    created_at           timestamptz      NOT NULL,
    updated_at           timestamptz      NOT NULL,
    recorded_at          timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (migration_id, version)
);
CREATE INDEX migration_changes_recorded ON migration_changes (recorded_at);
