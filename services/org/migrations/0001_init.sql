-- The org service's tables: tenants, people, machine accounts, credentials, token keys.
-- Every table runs unqualified: the migration runner sets search_path to the service schema.

-- Tenants. `version` increments on every change; the API's etag is derived from it.
CREATE TABLE organizations (
    id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    display_name text        NOT NULL,
    slug         text        NOT NULL,
    plan         text        NOT NULL DEFAULT 'FREE' CHECK (plan IN ('FREE', 'PRO', 'ENTERPRISE')),
    settings     jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    version      bigint      NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX organizations_slug ON organizations (slug);
-- Keyset orders of ListOrganizations: all, and filtered by plan.
CREATE INDEX organizations_created ON organizations (created_at, id);
CREATE INDEX organizations_plan_created ON organizations (plan, created_at, id);

-- People of an organization. E-mails are stored lower-cased and unique platform-wide.
CREATE TABLE users (
    id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id       uuid        NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    email        text        NOT NULL CHECK (email = lower(email)),
    display_name text        NOT NULL,
    role         text        NOT NULL CHECK (role IN ('OWNER', 'ADMIN', 'MEMBER', 'VIEWER')),
    avatar_url   text        NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    version      bigint      NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX users_email ON users (email);
-- Keyset orders of ListUsers: per organization, and per organization and role
-- (the latter also serves the "last owner" check).
CREATE INDEX users_org_created ON users (org_id, created_at, id);
CREATE INDEX users_org_role_created ON users (org_id, role, created_at, id);

-- Non-human principals (role SERVICE, no organization).
CREATE TABLE service_accounts (
    id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    display_name text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    version      bigint      NOT NULL DEFAULT 1
);
CREATE INDEX service_accounts_display_name ON service_accounts (display_name, created_at, id);

-- API keys of users and service accounts. Only the SHA-256 of the secret is kept;
-- `prefix` (the public start of the secret, `sk_<prefix>`) identifies a key in listings.
CREATE TABLE api_keys (
    id                 uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id             uuid        REFERENCES organizations (id) ON DELETE CASCADE,
    user_id            uuid        REFERENCES users (id) ON DELETE CASCADE,
    service_account_id uuid        REFERENCES service_accounts (id) ON DELETE CASCADE,
    display_name       text        NOT NULL,
    prefix             text        NOT NULL,
    secret_sha256      bytea       NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    expires_at         timestamptz,
    revoked_at         timestamptz,
    last_used_at       timestamptz,
    updated_at         timestamptz NOT NULL DEFAULT now(),
    version            bigint      NOT NULL DEFAULT 1,
    -- A key acts either as a user of an organization or as a service account.
    CHECK (
        (user_id IS NOT NULL AND org_id IS NOT NULL AND service_account_id IS NULL)
        OR (user_id IS NULL AND org_id IS NULL AND service_account_id IS NOT NULL)
    )
);
CREATE UNIQUE INDEX api_keys_secret_sha256 ON api_keys (secret_sha256);
-- Keyset orders of ListApiKeys: per organization, per user, and the active-only variants.
CREATE INDEX api_keys_org_created ON api_keys (org_id, created_at, id);
CREATE INDEX api_keys_org_active_created ON api_keys (org_id, created_at, id)
    WHERE revoked_at IS NULL;
CREATE INDEX api_keys_user_created ON api_keys (user_id, created_at, id);
CREATE INDEX api_keys_service_account ON api_keys (service_account_id);

-- ES256 (P-256) keys that sign access tokens. The private key is a PKCS#8 DER encrypted
-- with AES-256-GCM under the key-encryption key SENSEI_ORG_KEY_ENCRYPTION_KEY
-- (`nonce || ciphertext`, the kid as associated data); `kek_id` names which KEK sealed it.
-- Exactly one key is ACTIVE (signs new tokens); RETIRED keys stay published in the JWKS
-- so tokens they signed keep verifying until they expire.
CREATE TABLE token_signing_keys (
    kid                   text        PRIMARY KEY,
    public_key_der        bytea       NOT NULL,
    private_key_encrypted bytea       NOT NULL,
    kek_id                text        NOT NULL,
    state                 text        NOT NULL CHECK (state IN ('ACTIVE', 'RETIRED')),
    created_at            timestamptz NOT NULL DEFAULT now(),
    retired_at            timestamptz,
    updated_at            timestamptz NOT NULL DEFAULT now(),
    version               bigint      NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX token_signing_keys_one_active ON token_signing_keys (state)
    WHERE state = 'ACTIVE';
CREATE INDEX token_signing_keys_created ON token_signing_keys (created_at, kid);
