"""Certificates: DSSE signing, key ids, keyring and every verification outcome."""

from __future__ import annotations

import base64
import hashlib
import json
import stat
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from services.verification.certificates import (
    CertificateValidity,
    issue_certificate,
    sign_statement,
    verify_envelope,
)
from services.verification.envelope import PAYLOAD_TYPE, CertificateClaims, canonical_digest, pae
from services.verification.keyring import (
    Keyring,
    SigningKeyRecord,
    SigningKeyStatus,
    jwks_of,
    key_id_of,
)

LATER = datetime(2025, 6, 1, tzinfo=UTC)


def _reencode(envelope: bytes, **changes: Any) -> bytes:
    document = json.loads(envelope)
    document.update(changes)
    return json.dumps(document).encode()


def test_pae_matches_the_dsse_specification_example() -> None:
    assert (
        pae("http://example.com/HelloWorld", b"hello world")
        == b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_pae_counts_bytes_not_characters() -> None:
    assert pae("t", "é".encode()) == b"DSSEv1 1 t 2 " + "é".encode()


def test_key_id_is_sha256_of_the_subject_public_key_info_der() -> None:
    private_key = ec.derive_private_key(12345, ec.SECP256R1())
    der = private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert key_id_of(private_key.public_key()) == hashlib.sha256(der).hexdigest()


def test_issued_certificate_verifies(
    keyring: Keyring, active_record: SigningKeyRecord, claims: CertificateClaims
) -> None:
    issued = issue_certificate(claims, keyring.private_key(active_record.key_id))
    outcome = verify_envelope(issued.envelope, jwks_of([active_record]))
    assert outcome.validity is CertificateValidity.VALID
    assert outcome.key_id == active_record.key_id
    assert outcome.statement == json.loads(json.dumps(issued.statement))


def test_envelope_carries_the_in_toto_payload_type_and_key_id(
    keyring: Keyring, active_record: SigningKeyRecord, claims: CertificateClaims
) -> None:
    issued = issue_certificate(claims, keyring.private_key(active_record.key_id))
    envelope = json.loads(issued.envelope)
    assert envelope["payloadType"] == "application/vnd.in-toto+json"
    assert envelope["signatures"][0]["keyid"] == active_record.key_id
    assert json.loads(base64.b64decode(envelope["payload"])) == json.loads(
        json.dumps(issued.statement)
    )


def test_statement_subjects_are_the_schema_fingerprints(
    keyring: Keyring, active_record: SigningKeyRecord, claims: CertificateClaims
) -> None:
    statement = issue_certificate(claims, keyring.private_key(active_record.key_id)).statement
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert [s["digest"]["sha256"] for s in statement["subject"]] == ["a" * 64, "b" * 64]


def test_predicate_carries_the_claims_and_the_result_digest(
    keyring: Keyring, active_record: SigningKeyRecord, claims: CertificateClaims
) -> None:
    issued = issue_certificate(claims, keyring.private_key(active_record.key_id))
    predicate = issued.statement["predicate"]
    assert predicate["certificateId"] == claims.certificate_id
    assert predicate["verificationId"] == claims.verification_id
    assert predicate["migrationId"] == claims.migration_id
    assert predicate["orgId"] == claims.org_id
    assert predicate["type"] == "CHECKSUM"
    assert predicate["score"] == 1.0
    assert predicate["time"] == "2025-03-04T05:06:07.123456Z"
    assert issued.result_digest == canonical_digest(dict(claims.result))
    assert predicate["resultDigest"] == {"sha256": issued.result_digest}


def test_result_digest_ignores_key_order() -> None:
    assert canonical_digest({"a": 1, "b": [1.0, "x"]}) == canonical_digest({"b": [1, "x"], "a": 1})


def test_tampered_payload_is_signature_invalid(
    keyring: Keyring, active_record: SigningKeyRecord, claims: CertificateClaims
) -> None:
    issued = issue_certificate(claims, keyring.private_key(active_record.key_id))
    statement = json.loads(json.dumps(issued.statement))
    statement["predicate"]["score"] = 0.5
    forged = _reencode(
        issued.envelope, payload=base64.b64encode(json.dumps(statement).encode()).decode()
    )
    outcome = verify_envelope(forged, jwks_of([active_record]))
    assert outcome.validity is CertificateValidity.SIGNATURE_INVALID


def test_signature_by_an_unpublished_key_is_unknown_key(
    keyring: Keyring, active_record: SigningKeyRecord, claims: CertificateClaims
) -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    issued = issue_certificate(claims, other)
    outcome = verify_envelope(issued.envelope, jwks_of([active_record]))
    assert outcome.validity is CertificateValidity.UNKNOWN_KEY
    assert outcome.key_id == key_id_of(other.public_key())


def test_signature_by_a_revoked_key_is_key_revoked(
    keyring: Keyring, active_record: SigningKeyRecord, claims: CertificateClaims
) -> None:
    issued = issue_certificate(claims, keyring.private_key(active_record.key_id))
    revoked = active_record.revoked("compromised", LATER)
    outcome = verify_envelope(issued.envelope, jwks_of([revoked]))
    assert outcome.validity is CertificateValidity.KEY_REVOKED


def test_signature_by_a_retired_key_stays_valid(
    keyring: Keyring, active_record: SigningKeyRecord, claims: CertificateClaims
) -> None:
    issued = issue_certificate(claims, keyring.private_key(active_record.key_id))
    outcome = verify_envelope(issued.envelope, jwks_of([active_record.retired(LATER)]))
    assert outcome.validity is CertificateValidity.VALID


def test_wrong_payload_type_is_payload_type_mismatch(
    keyring: Keyring, active_record: SigningKeyRecord, claims: CertificateClaims
) -> None:
    issued = issue_certificate(claims, keyring.private_key(active_record.key_id))
    outcome = verify_envelope(
        _reencode(issued.envelope, payloadType="application/json"), jwks_of([active_record])
    )
    assert outcome.validity is CertificateValidity.PAYLOAD_TYPE_MISMATCH


@pytest.mark.parametrize(
    "envelope",
    [
        b"not json",
        b"[]",
        b'{"payloadType": "application/vnd.in-toto+json", "payload": "e30=", "signatures": []}',
        b'{"payloadType": "application/vnd.in-toto+json", "payload": "%%%",'
        b' "signatures": [{"keyid": "k", "sig": "AA=="}]}',
        b'{"payload": "e30=", "signatures": [{"keyid": "k", "sig": "AA=="}]}',
    ],
    ids=["not-json", "not-an-object", "no-signatures", "bad-base64", "no-payload-type"],
)
def test_unreadable_envelope_is_malformed(envelope: bytes, active_record: SigningKeyRecord) -> None:
    assert verify_envelope(envelope, jwks_of([active_record])).validity is (
        CertificateValidity.MALFORMED
    )


def test_signed_payload_that_is_not_a_statement_is_malformed(
    keyring: Keyring, active_record: SigningKeyRecord
) -> None:
    envelope = sign_statement({"hello": "world"}, keyring.private_key(active_record.key_id))
    outcome = verify_envelope(envelope, jwks_of([active_record]))
    assert outcome.validity is CertificateValidity.MALFORMED
    assert "_type" in outcome.detail


def test_signed_statement_with_a_wrong_result_digest_is_malformed(
    keyring: Keyring, active_record: SigningKeyRecord, claims: CertificateClaims
) -> None:
    statement = issue_certificate(claims, keyring.private_key(active_record.key_id)).statement
    statement["predicate"]["result"] = {"tampered": True}
    envelope = sign_statement(statement, keyring.private_key(active_record.key_id))
    outcome = verify_envelope(envelope, jwks_of([active_record]))
    assert outcome.validity is CertificateValidity.MALFORMED


def test_jwk_whose_kid_is_not_its_key_hash_is_ignored(
    keyring: Keyring, active_record: SigningKeyRecord, claims: CertificateClaims
) -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    issued = issue_certificate(claims, other)
    # A published key relabelled with the forger's key id must not vouch for the forgery.
    jwk = active_record.to_jwk() | {"kid": key_id_of(other.public_key())}
    outcome = verify_envelope(issued.envelope, {"keys": [jwk]})
    assert outcome.validity is CertificateValidity.UNKNOWN_KEY


def test_jwk_exports_the_p256_coordinates_and_status(active_record: SigningKeyRecord) -> None:
    jwk = active_record.to_jwk()
    numbers = active_record.public_key().public_numbers()
    x = base64.urlsafe_b64decode(jwk["x"] + "=")
    assert (jwk["kty"], jwk["crv"], jwk["kid"]) == ("EC", "P-256", active_record.key_id)
    assert len(x) == 32 and int.from_bytes(x, "big") == numbers.x
    assert jwk["status"] == "active" and "not_after" not in jwk


def test_retired_key_closes_its_validity_window(active_record: SigningKeyRecord) -> None:
    retired = active_record.retired(LATER)
    assert retired.status is SigningKeyStatus.RETIRED
    assert retired.to_jwk()["not_after"] == "2025-06-01T00:00:00.000000Z"


def test_revoked_key_records_time_and_reason(active_record: SigningKeyRecord) -> None:
    revoked = active_record.retired(LATER).revoked("leaked", datetime(2025, 7, 1, tzinfo=UTC))
    assert revoked.status is SigningKeyStatus.REVOKED
    assert revoked.revoke_reason == "leaked"
    assert revoked.not_after == LATER
    assert revoked.to_jwk()["revoked_at"] == "2025-07-01T00:00:00.000000Z"


def test_keyring_creates_one_private_key_file_readable_only_by_its_owner(
    keyring: Keyring,
) -> None:
    files = list(keyring.directory.glob("*.pem"))
    assert [f.name for f in files] == [f"{keyring.key_ids()[0]}.pem"]
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600


def test_reopened_keyring_loads_the_same_keys(keyring: Keyring) -> None:
    first = keyring.key_ids()[0]
    second = keyring.generate()
    reopened = Keyring.open(keyring.directory)
    assert reopened.key_ids() == sorted([first, second])
    assert key_id_of(reopened.public_key(second)) == second


def test_certificate_type_constant_is_in_toto() -> None:
    assert PAYLOAD_TYPE == "application/vnd.in-toto+json"
