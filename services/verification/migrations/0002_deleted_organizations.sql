-- Organizations that were deleted (learned from the org service's revocation feed): their
-- verifications answer NOT_FOUND, and their queued or running ones were cancelled (ERROR,
-- reason ORGANIZATION_DELETED). Certificates stay: they are signed statements that third
-- parties may still check with VerifyCertificate.
CREATE TABLE deleted_organizations (
    org_id     uuid        PRIMARY KEY,
    deleted_at timestamptz NOT NULL DEFAULT now()
);
