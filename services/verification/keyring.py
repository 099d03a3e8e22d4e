"""Certificate signing keys: private keys on disk, their published records and the JWKS.

Private keys live in a `Keyring` (a directory of PEM files, never PostgreSQL); the public halves
are `SigningKeyRecord`s, published as a JWKS whose entries carry each key's status. A key id is
the hex SHA-256 of the public key's SubjectPublicKeyInfo DER (docs/certificates.md).
"""

from __future__ import annotations

import base64
import enum
import hashlib
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from services.verification.envelope import MalformedEnvelope, decode_base64, rfc3339

JWS_ALGORITHM = "ES256"

_P256_COORDINATE_BYTES = 32


class SigningKeyStatus(enum.StrEnum):
    """Lifecycle of a signing key, spelled as in the published JWKS `status` member."""

    ACTIVE = "active"
    RETIRED = "retired"
    REVOKED = "revoked"


def key_id_of(public_key: ec.EllipticCurvePublicKey) -> str:
    """Key id: hex SHA-256 of the public key's SubjectPublicKeyInfo DER."""
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


# --- private keys ------------------------------------------------------------------------------


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


# --- published keys ----------------------------------------------------------------------------


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
            "not_before": rfc3339(self.not_before),
        }
        if self.not_after is not None:
            jwk["not_after"] = rfc3339(self.not_after)
        if self.revoke_time is not None:
            jwk["revoked_at"] = rfc3339(self.revoke_time)
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
            x = int.from_bytes(decode_base64(entry["x"]), "big")
            y = int.from_bytes(decode_base64(entry["y"]), "big")
            public_key = ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
            status = SigningKeyStatus(entry.get("status", SigningKeyStatus.ACTIVE.value))
        except (KeyError, MalformedEnvelope, ValueError):
            continue
        key_id = key_id_of(public_key)
        if entry.get("kid", key_id) != key_id:
            continue
        keys[key_id] = PublishedKey(key_id=key_id, public_key=public_key, status=status)
    return keys
