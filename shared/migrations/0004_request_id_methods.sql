-- Request ids are keyed by the full method path of the call (shared/idempotency.py); the org
-- and verification services used to store the bare method name. Rewritten so a retry of an
-- earlier create still finds its first response.
UPDATE request_ids SET method = CASE method
    WHEN 'CreateOrganization' THEN '/sensei.org.v1.OrganizationService/CreateOrganization'
    WHEN 'CreateUser' THEN '/sensei.org.v1.UserService/CreateUser'
    WHEN 'CreateApiKey' THEN '/sensei.org.v1.UserService/CreateApiKey'
    WHEN 'CreateVerification' THEN '/sensei.verification.v1.VerificationService/CreateVerification'
    WHEN 'RotateSigningKey' THEN '/sensei.verification.v1.VerificationService/RotateSigningKey'
END
WHERE method IN (
    'CreateOrganization', 'CreateUser', 'CreateApiKey', 'CreateVerification', 'RotateSigningKey'
);
