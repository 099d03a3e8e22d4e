"""Signing key rotation and revocation through the running service.

Signing keys are platform-wide (every organization's certificates hang on them): only
platform principals (the operator, service accounts) manage them, never a tenant role.
"""

from __future__ import annotations

import asyncio
import base64
import json

import asyncpg
import grpc
import pytest

from sensei.verification.v1 import verification_pb2
from shared.outbox import PLATFORM_ORG_ID
from tests.harness import Identity, error_info
from tests.verification.conftest import Stack

pb = verification_pb2


async def _certificate(stack: Stack) -> verification_pb2.Certificate:
    done = await stack.run(pb.VERIFICATION_TYPE_ROW_COUNT)
    response = await stack.verifications.GetCertificate(
        pb.GetCertificateRequest(name=done.certificate), metadata=stack.owner.metadata
    )
    certificate: verification_pb2.Certificate = response.certificate
    return certificate


async def _validity(stack: Stack, certificate: verification_pb2.Certificate) -> int:
    verdict = await stack.verifications.VerifyCertificate(
        pb.VerifyCertificateRequest(envelope=certificate.envelope)
    )
    return int(verdict.validity)


async def _operator(stack: Stack) -> Identity:
    return await stack.suite.operator()


async def test_rotation_keeps_old_certificates_valid(stack: Stack) -> None:
    old = await _certificate(stack)

    rotated = await stack.verifications.RotateSigningKey(
        pb.RotateSigningKeyRequest(), metadata=(await _operator(stack)).metadata
    )

    assert rotated.retired_key.key_id == old.key_id
    assert rotated.retired_key.status == pb.SIGNING_KEY_STATUS_RETIRED
    assert rotated.retired_key.HasField("not_after")
    assert rotated.signing_key.status == pb.SIGNING_KEY_STATUS_ACTIVE
    assert await _validity(stack, old) == pb.CERTIFICATE_VALIDITY_VALID
    new = await _certificate(stack)
    assert new.key_id == rotated.signing_key.key_id
    assert await _validity(stack, new) == pb.CERTIFICATE_VALIDITY_VALID
    keys = await stack.verifications.ListSigningKeys(pb.ListSigningKeysRequest(page_size=1))
    assert [k.key_id for k in keys.signing_keys] == [new.key_id]
    assert keys.next_page_token


async def test_revoked_key_fails_its_certificates(stack: Stack) -> None:
    certificate = await _certificate(stack)

    revoked = await stack.verifications.RevokeSigningKey(
        pb.RevokeSigningKeyRequest(
            name=f"signingKeys/{certificate.key_id}", reason="key compromised"
        ),
        metadata=(await _operator(stack)).metadata,
    )

    assert revoked.signing_key.status == pb.SIGNING_KEY_STATUS_REVOKED
    assert revoked.signing_key.revoke_reason == "key compromised"
    assert revoked.active_key.status == pb.SIGNING_KEY_STATUS_ACTIVE
    verdict = await stack.verifications.VerifyCertificate(
        pb.VerifyCertificateRequest(envelope=certificate.envelope)
    )
    assert verdict.validity == pb.CERTIFICATE_VALIDITY_KEY_REVOKED
    assert verdict.key_id == certificate.key_id
    fresh = await _certificate(stack)
    assert fresh.key_id == revoked.active_key.key_id
    assert await _validity(stack, fresh) == pb.CERTIFICATE_VALIDITY_VALID


async def test_tampered_certificate_is_not_valid(stack: Stack) -> None:
    certificate = await _certificate(stack)
    envelope = json.loads(certificate.envelope)
    statement = json.loads(base64.b64decode(envelope["payload"]))
    statement["predicate"]["score"] = 0.99
    envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    assert await _validity(stack, certificate) == pb.CERTIFICATE_VALIDITY_VALID
    verdict = await stack.verifications.VerifyCertificate(
        pb.VerifyCertificateRequest(envelope=json.dumps(envelope).encode())
    )
    assert verdict.validity == pb.CERTIFICATE_VALIDITY_SIGNATURE_INVALID
    garbage = await stack.verifications.VerifyCertificate(
        pb.VerifyCertificateRequest(envelope=b"not json")
    )
    assert garbage.validity == pb.CERTIFICATE_VALIDITY_MALFORMED


@pytest.mark.parametrize("role", ["VIEWER", "MEMBER", "ADMIN", "OWNER"])
async def test_no_tenant_role_manages_signing_keys(stack: Stack, role: str) -> None:
    caller = await stack.suite.user(role)
    keys = await stack.verifications.ListSigningKeys(pb.ListSigningKeysRequest())
    calls = [
        stack.verifications.RotateSigningKey(
            pb.RotateSigningKeyRequest(), metadata=caller.metadata
        ),
        stack.verifications.RevokeSigningKey(
            pb.RevokeSigningKeyRequest(name=keys.signing_keys[0].name), metadata=caller.metadata
        ),
    ]
    for call in calls:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert error_info(caught.value).reason == "PLATFORM_ONLY"
    after = await stack.verifications.ListSigningKeys(pb.ListSigningKeysRequest())
    assert list(after.signing_keys) == list(keys.signing_keys)


async def test_service_accounts_manage_signing_keys(stack: Stack) -> None:
    service = await stack.suite.service()
    rotated = await stack.verifications.RotateSigningKey(
        pb.RotateSigningKeyRequest(), metadata=service.metadata
    )
    revoked = await stack.verifications.RevokeSigningKey(
        pb.RevokeSigningKeyRequest(name=rotated.retired_key.name), metadata=service.metadata
    )
    assert revoked.signing_key.status == pb.SIGNING_KEY_STATUS_REVOKED


async def test_operator_key_events_go_to_the_platform_chain(stack: Stack) -> None:
    operator = await _operator(stack)
    rotated = await stack.verifications.RotateSigningKey(
        pb.RotateSigningKeyRequest(), metadata=operator.metadata
    )
    await stack.verifications.RevokeSigningKey(
        pb.RevokeSigningKeyRequest(name=rotated.retired_key.name), metadata=operator.metadata
    )
    conn = await asyncpg.connect(stack.suite.database_url)
    try:
        rows: list[asyncpg.Record] = []
        for _ in range(400):  # bounded wait for the relay; no timing is asserted
            rows = await conn.fetch(
                "SELECT action, org_id::text AS org_id, actor, user_id FROM org.audit_logs"
                " WHERE resource_type = 'signing_key' ORDER BY seq"
            )
            if len(rows) >= 2:
                break
            await asyncio.sleep(0.05)
    finally:
        await conn.close()
    assert [row["action"] for row in rows] == ["signing_key.rotate", "signing_key.revoke"]
    assert {row["org_id"] for row in rows} == {PLATFORM_ORG_ID}
    assert all(row["actor"].startswith("operators/") for row in rows)
    assert all(row["user_id"] is None for row in rows)


async def test_unknown_signing_key_is_not_found(stack: Stack) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stack.verifications.RevokeSigningKey(
            pb.RevokeSigningKeyRequest(name="signingKeys/" + "0" * 64),
            metadata=(await _operator(stack)).metadata,
        )
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_repeated_rotation_request_rotates_once(stack: Stack) -> None:
    operator = await _operator(stack)
    first = await stack.verifications.RotateSigningKey(
        pb.RotateSigningKeyRequest(request_id="rotate-1"), metadata=operator.metadata
    )
    again = await stack.verifications.RotateSigningKey(
        pb.RotateSigningKeyRequest(request_id="rotate-1"), metadata=operator.metadata
    )
    assert again.signing_key.key_id == first.signing_key.key_id
    keys = await stack.verifications.ListSigningKeys(pb.ListSigningKeysRequest())
    assert len(keys.signing_keys) == 2
