-- Which migration each counted outcome came from: RecordPatternOutcome counts once per
-- (pattern, migration), so no caller can inflate a pattern's counts by repeating itself.
-- `org_id` is the migration's organization (checked with the migration service).
-- Outcomes counted before this table existed keep their counts and have no row here.
CREATE TABLE pattern_outcomes (
    pattern_id   uuid        NOT NULL REFERENCES patterns (id) ON DELETE CASCADE,
    migration_id uuid        NOT NULL,
    org_id       uuid        NOT NULL,
    outcome      text        NOT NULL CHECK (outcome IN ('SUCCESS', 'FAILURE')),
    caller       text        NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (pattern_id, migration_id)
);
CREATE INDEX pattern_outcomes_migration ON pattern_outcomes (migration_id);
