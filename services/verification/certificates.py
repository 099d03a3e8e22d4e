"""Verification certificates: DSSE envelopes over in-toto Statements, signed with ECDSA P-256.

The format is described in docs/certificates.md. Private keys live in a `Keyring` (a directory of
PEM files, never PostgreSQL); the public halves are published as a JWKS whose entries carry each
key's status, and `verify_envelope` checks an envelope against such a JWKS with no other input.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://sensei.dev/attestations/verification/v1"
VERIFIER_ID = "https://sensei.dev/verification-service"
JWS_ALGORITHM = "ES256"

_HEX_SHA256 = re.compile(r"[0-9a-f]{64}")
_P256_COORDINATE_BYTES = 32


class CertificateValidity(enum.StrEnum):
    """Verdict of `verify_envelope`; names match the proto's CertificateValidity values."""

    VALID = "VALID"
    SIGNATURE_INVALID = "SIGNATURE_INVALID"
    UNKNOWN_KEY = "UNKNOWN_KEY"
    KEY_REVOKED = "KEY_REVOKED"
    MALFORMED = "MALFORMED"
    PAYLOAD_TYPE_MISMATCH = "PAYLOAD_TYPE_MISMATCH"


class SigningKeyStatus(enum.StrEnum):
    """Lifecycle of a signing key, spelled as in the published JWKS `status` member."""

    ACTIVE = "active"
    RETIRED = "retired"
    REVOKED = "revoked"


class MalformedEnvelope(ValueError):
    """The bytes are not a DSSE envelope this module can read."""


# --- DSSE primitives ---------------------------------------------------------------------------


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 Pre-Authentication Encoding: the exact bytes that are signed."""
    type_bytes = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(type_bytes), type_bytes, len(payload), payload)


def key_id_of(public_key: ec.EllipticCurvePublicKey) -> str:
    """Key id: hex SHA-256 of the public key's SubjectPublicKeyInfo DER."""
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def canonical_json(value: Any) -> bytes:
    """RFC 8785 (JCS) canonical JSON bytes of a JSON-able value."""
    return rfc8785.dumps(value)


def canonical_digest(value: Any) -> str:
    """Hex SHA-256 of the RFC 8785 canonical JSON of a JSON-able value."""
    return hashlib.sha256(canonical_json(value)).hexdigest()


def _b64decode(text: object) -> bytes:
    # DSSE allows standard or URL-safe base64, padded or not; anything else is malformed.
    if not isinstance(text, str):
        raise MalformedEnvelope("base64 field is not a string")
    alphabet_fixed = text.replace("-", "+").replace("_", "/")
    padded = alphabet_fixed + "=" * (-len(alphabet_fixed) % 4)
    try:
        return base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedEnvelope(f"invalid base64: {exc}") from exc


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _rfc3339(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_rfc3339(text: str) -> datetime:
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
    payload = _b64decode(document["payload"])
    raw_signatures = document.get("signatures")
    if not isinstance(raw_signatures, list) or not raw_signatures:
        raise MalformedEnvelope("signatures missing or empty")
    signatures = []
    for raw in raw_signatures:
        if not isinstance(raw, dict) or not isinstance(raw.get("keyid"), str):
            raise MalformedEnvelope("signature without a string keyid")
        signatures.append(Signature(keyid=raw["keyid"], sig=_b64decode(raw.get("sig"))))
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
            "time": _rfc3339(claims.issued_at),
        },
    }


def _check_statement(statement: Any) -> str | None:
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


# --- keys --------------------------------------------------------------------------------------


class Keyring:
    """Certificate signing private keys, one PKCS#8 PEM file per key named `{key_id}.pem`.

    The directory is the only place private keys exist; PostgreSQL holds public keys and status.
    File I/O here is a few small files at start-up and on rotation, so it is synchronous.
    """

    def __init__(self, directory: Path, keys: Mapping[str, ec.EllipticCurvePrivateKey]) -> None:
        """Wrap already-loaded keys; use `Keyring.open` to load a directory."""
        self._directory = directory
        self._keys = dict(keys)

    @classmethod
    def open(cls, directory: Path | str) -> Keyring:
        """Load every `*.pem` key in `directory`; create it and a first key when there is none."""
        path = Path(directory)
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        keys: dict[str, ec.EllipticCurvePrivateKey] = {}
        for pem_file in sorted(path.glob("*.pem")):
            loaded = serialization.load_pem_private_key(pem_file.read_bytes(), password=None)
            if not isinstance(loaded, ec.EllipticCurvePrivateKey) or not isinstance(
                loaded.curve, ec.SECP256R1
            ):
                raise ValueError(f"{pem_file} is not an ECDSA P-256 private key")
            keys[key_id_of(loaded.public_key())] = loaded
        keyring = cls(path, keys)
        if not keys:
            keyring.generate()
        return keyring

    def reload(self) -> None:
        """Load keys another replica wrote to the directory since this keyring was opened."""
        for pem_file in sorted(self._directory.glob("*.pem")):
            loaded = serialization.load_pem_private_key(pem_file.read_bytes(), password=None)
            if isinstance(loaded, ec.EllipticCurvePrivateKey) and isinstance(
                loaded.curve, ec.SECP256R1
            ):
                self._keys.setdefault(key_id_of(loaded.public_key()), loaded)

    @property
    def directory(self) -> Path:
        """Where the PEM files live."""
        return self._directory

    def key_ids(self) -> list[str]:
        """Ids of every private key held, sorted."""
        return sorted(self._keys)

    def private_key(self, key_id: str) -> ec.EllipticCurvePrivateKey:
        """The private key with this id; KeyError when this keyring does not hold it."""
        return self._keys[key_id]

    def public_key(self, key_id: str) -> ec.EllipticCurvePublicKey:
        """The public half of a held key."""
        return self._keys[key_id].public_key()

    def generate(self) -> str:
        """Create a new P-256 key, write it (mode 0600, atomically) and return its key id."""
        private_key = ec.generate_private_key(ec.SECP256R1())
        key_id = key_id_of(private_key.public_key())
        pem = private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        descriptor, temporary = tempfile.mkstemp(dir=self._directory, suffix=".tmp")
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(pem)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(temporary, 0o600)
            os.replace(temporary, self._directory / f"{key_id}.pem")
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        self._keys[key_id] = private_key
        return key_id


@dataclass(frozen=True)
class SigningKeyRecord:
    """The public, published side of a signing key with its status and validity window."""

    key_id: str
    public_key_der: bytes
    status: SigningKeyStatus
    not_before: datetime
    not_after: datetime | None = None
    revoke_time: datetime | None = None
    revoke_reason: str = ""

    @classmethod
    def new_active(cls, public_key: ec.EllipticCurvePublicKey, now: datetime) -> SigningKeyRecord:
        """Record of a newly generated key that starts signing at `now`."""
        der = public_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return cls(
            key_id=hashlib.sha256(der).hexdigest(),
            public_key_der=der,
            status=SigningKeyStatus.ACTIVE,
            not_before=now,
        )

    def retired(self, now: datetime) -> SigningKeyRecord:
        """This key after rotation: no longer signs, still verifies."""
        if self.status is not SigningKeyStatus.ACTIVE:
            return self
        return replace(self, status=SigningKeyStatus.RETIRED, not_after=now)

    def revoked(self, reason: str, now: datetime) -> SigningKeyRecord:
        """This key after revocation: its certificates fail verification."""
        if self.status is SigningKeyStatus.REVOKED:
            return self
        return replace(
            self,
            status=SigningKeyStatus.REVOKED,
            not_after=self.not_after or now,
            revoke_time=now,
            revoke_reason=reason,
        )

    def public_key(self) -> ec.EllipticCurvePublicKey:
        """The public key object."""
        loaded = serialization.load_der_public_key(self.public_key_der)
        if not isinstance(loaded, ec.EllipticCurvePublicKey):
            raise ValueError("signing key is not an EC public key")
        return loaded

    def public_key_pem(self) -> str:
        """The public key as SubjectPublicKeyInfo PEM (what `openssl dgst -verify` reads)."""
        return (
            self.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode("ascii")
        )

    def to_jwk(self) -> dict[str, Any]:
        """The JWKS entry: RFC 7517 EC members plus status, not_before and not_after."""
        numbers = self.public_key().public_numbers()
        jwk: dict[str, Any] = {
            "kty": "EC",
            "crv": "P-256",
            "x": _b64url(numbers.x.to_bytes(_P256_COORDINATE_BYTES, "big")),
            "y": _b64url(numbers.y.to_bytes(_P256_COORDINATE_BYTES, "big")),
            "kid": self.key_id,
            "alg": JWS_ALGORITHM,
            "use": "sig",
            "status": self.status.value,
            "not_before": _rfc3339(self.not_before),
        }
        if self.not_after is not None:
            jwk["not_after"] = _rfc3339(self.not_after)
        if self.revoke_time is not None:
            jwk["revoked_at"] = _rfc3339(self.revoke_time)
        return jwk


def jwks_of(records: Iterable[SigningKeyRecord]) -> dict[str, Any]:
    """The published key set `{"keys": [...]}` (what the offline verifier reads)."""
    return {"keys": [record.to_jwk() for record in records]}


@dataclass(frozen=True)
class PublishedKey:
    """A key read back from a JWKS: the public key and whether it was revoked."""

    key_id: str
    public_key: ec.EllipticCurvePublicKey
    status: SigningKeyStatus


def published_keys(jwks: Mapping[str, Any]) -> dict[str, PublishedKey]:
    """Usable keys of a JWKS by key id.

    Entries that are not P-256 EC keys, or whose `kid` is not the SHA-256 of the key they carry,
    are left out: a mislabelled key must not vouch for anything.
    """
    keys: dict[str, PublishedKey] = {}
    entries = jwks.get("keys") if isinstance(jwks, Mapping) else None
    if not isinstance(entries, list):
        return keys
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("kty") != "EC" or entry.get("crv") != "P-256":
            continue
        try:
            x = int.from_bytes(_b64decode(entry["x"]), "big")
            y = int.from_bytes(_b64decode(entry["y"]), "big")
            public_key = ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
            status = SigningKeyStatus(entry.get("status", SigningKeyStatus.ACTIVE.value))
        except (KeyError, MalformedEnvelope, ValueError):
            continue
        key_id = key_id_of(public_key)
        if entry.get("kid", key_id) != key_id:
            continue
        keys[key_id] = PublishedKey(key_id=key_id, public_key=public_key, status=status)
    return keys


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
        problem = _check_statement(statement)
    except rfc8785.CanonicalizationError as exc:
        problem = f"result is not canonicalizable: {exc}"
    if problem is not None:
        return VerificationOutcome(CertificateValidity.MALFORMED, key_id, problem)
    return VerificationOutcome(
        CertificateValidity.VALID, key_id, "signature verified", statement=statement
    )


def statement_time(statement: Mapping[str, Any]) -> datetime:
    """The issue time recorded in a statement's predicate."""
    return _parse_rfc3339(statement["predicate"]["time"])
