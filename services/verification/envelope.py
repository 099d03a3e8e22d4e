"""The signed form of a certificate: a DSSE envelope over a Sensei in-toto Statement v1.

The format is described in docs/certificates.md. This module reads and writes the bytes (PAE,
canonical JSON, base64) and builds and checks the statement; signing and verifying them is
`certificates.py`'s, the keys are `keyring.py`'s.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import rfc8785

PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://sensei.dev/attestations/verification/v1"
VERIFIER_ID = "https://sensei.dev/verification-service"

_HEX_SHA256 = re.compile(r"[0-9a-f]{64}")


class MalformedEnvelope(ValueError):
    """The bytes are not a DSSE envelope this module can read."""


# --- DSSE primitives ---------------------------------------------------------------------------


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 Pre-Authentication Encoding: the exact bytes that are signed."""
    type_bytes = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(type_bytes), type_bytes, len(payload), payload)


def canonical_json(value: Any) -> bytes:
    """RFC 8785 (JCS) canonical JSON bytes of a JSON-able value."""
    return rfc8785.dumps(value)


def canonical_digest(value: Any) -> str:
    """Hex SHA-256 of the RFC 8785 canonical JSON of a JSON-able value."""
    return hashlib.sha256(canonical_json(value)).hexdigest()


def decode_base64(text: object) -> bytes:
    """The bytes of a base64 field of an envelope or JWKS; MalformedEnvelope when it is not one."""
    # DSSE allows standard or URL-safe base64, padded or not; anything else is malformed.
    if not isinstance(text, str):
        raise MalformedEnvelope("base64 field is not a string")
    alphabet_fixed = text.replace("-", "+").replace("_", "/")
    padded = alphabet_fixed + "=" * (-len(alphabet_fixed) % 4)
    try:
        return base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedEnvelope(f"invalid base64: {exc}") from exc


def rfc3339(moment: datetime) -> str:
    """`moment` in UTC as RFC 3339 with microseconds and `Z`; it must be timezone-aware."""
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_rfc3339(text: str) -> datetime:
    """The UTC moment of an RFC 3339 timestamp as `rfc3339` writes it."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


@dataclass(frozen=True)
class Signature:
    """One DSSE signature: the signing key's id and the DER-encoded ECDSA signature."""

    keyid: str
    sig: bytes


@dataclass(frozen=True)
class Envelope:
    """A decoded DSSE envelope."""

    payload_type: str
    payload: bytes
    signatures: tuple[Signature, ...]

    def to_json_bytes(self) -> bytes:
        """The envelope as canonical JSON bytes (standard padded base64 for binary fields)."""
        return canonical_json(
            {
                "payloadType": self.payload_type,
                "payload": base64.b64encode(self.payload).decode("ascii"),
                "signatures": [
                    {"keyid": s.keyid, "sig": base64.b64encode(s.sig).decode("ascii")}
                    for s in self.signatures
                ],
            }
        )


def parse_envelope(envelope: bytes) -> Envelope:
    """Decode DSSE envelope JSON bytes; raises MalformedEnvelope when they are not one."""
    try:
        document = json.loads(envelope)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedEnvelope(f"not JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise MalformedEnvelope("envelope is not a JSON object")
    payload_type = document.get("payloadType")
    if not isinstance(payload_type, str):
        raise MalformedEnvelope("payloadType missing or not a string")
    if "payload" not in document:
        raise MalformedEnvelope("payload missing")
    payload = decode_base64(document["payload"])
    raw_signatures = document.get("signatures")
    if not isinstance(raw_signatures, list) or not raw_signatures:
        raise MalformedEnvelope("signatures missing or empty")
    signatures = []
    for raw in raw_signatures:
        if not isinstance(raw, dict) or not isinstance(raw.get("keyid"), str):
            raise MalformedEnvelope("signature without a string keyid")
        signatures.append(Signature(keyid=raw["keyid"], sig=decode_base64(raw.get("sig"))))
    return Envelope(payload_type=payload_type, payload=payload, signatures=tuple(signatures))


# --- in-toto statement -------------------------------------------------------------------------


@dataclass(frozen=True)
class SchemaSubject:
    """A statement subject: a schema, named, with its SHA-256 fingerprint (lower-case hex)."""

    name: str
    fingerprint: str

    def __post_init__(self) -> None:
        if not _HEX_SHA256.fullmatch(self.fingerprint):
            raise ValueError(f"schema fingerprint is not a hex SHA-256: {self.fingerprint!r}")


@dataclass(frozen=True)
class CertificateClaims:
    """Everything a certificate attests about one finished verification."""

    certificate_id: str
    verification_id: str
    migration_id: str
    org_id: str
    verification_type: str
    result: Mapping[str, Any]
    score: float
    source_schema: SchemaSubject
    target_schema: SchemaSubject
    issued_at: datetime
    verifier_version: str = "1"


def build_statement(claims: CertificateClaims) -> dict[str, Any]:
    """The in-toto Statement v1 for `claims` (a JSON-able dict)."""
    result = dict(claims.result)
    return {
        "_type": STATEMENT_TYPE,
        "subject": [
            {
                "name": claims.source_schema.name,
                "digest": {"sha256": claims.source_schema.fingerprint},
            },
            {
                "name": claims.target_schema.name,
                "digest": {"sha256": claims.target_schema.fingerprint},
            },
        ],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "certificateId": claims.certificate_id,
            "verificationId": claims.verification_id,
            "migrationId": claims.migration_id,
            "orgId": claims.org_id,
            "type": claims.verification_type,
            "result": result,
            "score": claims.score,
            "resultDigest": {"sha256": canonical_digest(result)},
            "verifier": {"id": VERIFIER_ID, "version": claims.verifier_version},
            "time": rfc3339(claims.issued_at),
        },
    }


def statement_problem(statement: Any) -> str | None:
    """Why `statement` is not a Sensei in-toto Statement v1, or None when it is one."""
    if not isinstance(statement, dict):
        return "payload is not a JSON object"
    if statement.get("_type") != STATEMENT_TYPE:
        return f"_type is not {STATEMENT_TYPE}"
    subjects = statement.get("subject")
    if not isinstance(subjects, list) or not subjects:
        return "statement has no subjects"
    for subject in subjects:
        if not isinstance(subject, dict) or not isinstance(subject.get("digest"), dict):
            return "subject without a digest"
    if statement.get("predicateType") != PREDICATE_TYPE:
        return f"predicateType is not {PREDICATE_TYPE}"
    predicate = statement.get("predicate")
    if not isinstance(predicate, dict):
        return "predicate is not an object"
    digest = predicate.get("resultDigest")
    if not isinstance(digest, dict) or digest.get("sha256") != canonical_digest(
        predicate.get("result")
    ):
        return "resultDigest does not match the result"
    return None


def statement_time(statement: Mapping[str, Any]) -> datetime:
    """The issue time recorded in a statement's predicate."""
    return parse_rfc3339(statement["predicate"]["time"])
