"""Verification certificates: DSSE envelopes over in-toto Statements, signed with ECDSA P-256.

The format is described in docs/certificates.md; `envelope.py` reads and writes it. This module
issues certificates with a key of the `Keyring` (`keyring.py`), and `verify_envelope` checks an
envelope against a JWKS of published keys, with their status, and no other input.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from services.verification.envelope import (
    PAYLOAD_TYPE,
    CertificateClaims,
    Envelope,
    MalformedEnvelope,
    Signature,
    build_statement,
    canonical_json,
    pae,
    parse_envelope,
    statement_problem,
)
from services.verification.keyring import (
    PublishedKey,
    SigningKeyStatus,
    key_id_of,
    published_keys,
)


class CertificateValidity(enum.StrEnum):
    """Verdict of `verify_envelope`; names match the proto's CertificateValidity values."""

    VALID = "VALID"
    SIGNATURE_INVALID = "SIGNATURE_INVALID"
    UNKNOWN_KEY = "UNKNOWN_KEY"
    KEY_REVOKED = "KEY_REVOKED"
    MALFORMED = "MALFORMED"
    PAYLOAD_TYPE_MISMATCH = "PAYLOAD_TYPE_MISMATCH"


# --- signing -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedCertificate:
    """A freshly signed certificate: envelope bytes to store verbatim, plus what they contain."""

    envelope: bytes
    key_id: str
    statement: dict[str, Any]
    result_digest: str


def sign_statement(statement: Mapping[str, Any], private_key: ec.EllipticCurvePrivateKey) -> bytes:
    """Sign an in-toto statement into DSSE envelope JSON bytes (ECDSA P-256, SHA-256, DER)."""
    payload = canonical_json(dict(statement))
    signature = private_key.sign(pae(PAYLOAD_TYPE, payload), ec.ECDSA(hashes.SHA256()))
    envelope = Envelope(
        payload_type=PAYLOAD_TYPE,
        payload=payload,
        signatures=(Signature(keyid=key_id_of(private_key.public_key()), sig=signature),),
    )
    return envelope.to_json_bytes()


def issue_certificate(
    claims: CertificateClaims, private_key: ec.EllipticCurvePrivateKey
) -> IssuedCertificate:
    """Build the statement for `claims` and sign it with `private_key` (the active key)."""
    statement = build_statement(claims)
    return IssuedCertificate(
        envelope=sign_statement(statement, private_key),
        key_id=key_id_of(private_key.public_key()),
        statement=statement,
        result_digest=statement["predicate"]["resultDigest"]["sha256"],
    )


# --- verification ------------------------------------------------------------------------------


@dataclass(frozen=True)
class VerificationOutcome:
    """What `verify_envelope` found: the verdict, the key it concerns and a readable detail."""

    validity: CertificateValidity
    key_id: str = ""
    detail: str = ""
    statement: dict[str, Any] | None = field(default=None)

    @property
    def valid(self) -> bool:
        """True only for VALID."""
        return self.validity is CertificateValidity.VALID


# Which failure to report when several signatures fail: the most telling one.
_FAILURE_RANK = {
    CertificateValidity.KEY_REVOKED: 3,
    CertificateValidity.SIGNATURE_INVALID: 2,
    CertificateValidity.UNKNOWN_KEY: 1,
}


def verify_envelope(envelope: bytes, jwks: Mapping[str, Any]) -> VerificationOutcome:
    """Check a DSSE certificate envelope against a JWKS carrying key status.

    VALID when some signature verifies with a published, non-revoked key and the signed payload is
    a Sensei in-toto Statement v1 whose result digest matches its result. Otherwise the reason:
    MALFORMED, PAYLOAD_TYPE_MISMATCH, UNKNOWN_KEY, KEY_REVOKED or SIGNATURE_INVALID.
    """
    try:
        parsed = parse_envelope(envelope)
    except MalformedEnvelope as exc:
        return VerificationOutcome(CertificateValidity.MALFORMED, detail=str(exc))
    if parsed.payload_type != PAYLOAD_TYPE:
        return VerificationOutcome(
            CertificateValidity.PAYLOAD_TYPE_MISMATCH,
            key_id=parsed.signatures[0].keyid,
            detail=f"payloadType is {parsed.payload_type!r}, expected {PAYLOAD_TYPE!r}",
        )
    keys = published_keys(jwks)
    signed = pae(parsed.payload_type, parsed.payload)
    failure = VerificationOutcome(CertificateValidity.UNKNOWN_KEY)
    for signature in parsed.signatures:
        outcome = _verify_signature(signature, keys, signed)
        if outcome.valid:
            return _check_payload(parsed.payload, signature.keyid)
        if _FAILURE_RANK[outcome.validity] >= _FAILURE_RANK[failure.validity]:
            failure = outcome
    return failure


def _verify_signature(
    signature: Signature, keys: Mapping[str, PublishedKey], signed: bytes
) -> VerificationOutcome:
    key = keys.get(signature.keyid)
    if key is None:
        return VerificationOutcome(
            CertificateValidity.UNKNOWN_KEY, signature.keyid, "no published key has this id"
        )
    if key.status is SigningKeyStatus.REVOKED:
        return VerificationOutcome(
            CertificateValidity.KEY_REVOKED, signature.keyid, "the signing key is revoked"
        )
    try:
        key.public_key.verify(signature.sig, signed, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return VerificationOutcome(
            CertificateValidity.SIGNATURE_INVALID,
            signature.keyid,
            "the signature does not match the payload",
        )
    return VerificationOutcome(CertificateValidity.VALID, signature.keyid)


def _check_payload(payload: bytes, key_id: str) -> VerificationOutcome:
    try:
        statement = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return VerificationOutcome(CertificateValidity.MALFORMED, key_id, "payload is not JSON")
    try:
        problem = statement_problem(statement)
    except rfc8785.CanonicalizationError as exc:
        problem = f"result is not canonicalizable: {exc}"
    if problem is not None:
        return VerificationOutcome(CertificateValidity.MALFORMED, key_id, problem)
    return VerificationOutcome(
        CertificateValidity.VALID, key_id, "signature verified", statement=statement
    )
