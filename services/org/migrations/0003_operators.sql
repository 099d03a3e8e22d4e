-- The platform operator: people who run the platform, outside every organization
-- (role OPERATOR, subject `operators/{id}`). They change platform-wide resources
-- (signing keys, patterns, service accounts, organizations' creation) and reach no
-- tenant data. The bootstrap creates one and issues its API keys.
CREATE TABLE operators (
    id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    display_name text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    version      bigint      NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX operators_display_name ON operators (display_name);

-- An API key now acts as exactly one of: a user of an organization, a service account,
-- or an operator (the last two with no organization).
ALTER TABLE api_keys ADD COLUMN operator_id uuid REFERENCES operators (id) ON DELETE CASCADE;
ALTER TABLE api_keys DROP CONSTRAINT api_keys_check;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_one_principal CHECK (
    num_nonnulls(user_id, service_account_id, operator_id) = 1
    AND (user_id IS NULL) = (org_id IS NULL)
);
CREATE INDEX api_keys_operator ON api_keys (operator_id);
