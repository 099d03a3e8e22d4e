"""Access-token signing: ES256 keys, their protection at rest, JWKs and minting.

Private keys never leave the org service's schema unencrypted: each is a PKCS#8 DER sealed
with AES-256-GCM under a key-encryption key (KEK) from `SENSEI_ORG_KEY_ENCRYPTION_KEY`
(32 bytes, base64url), the key id bound as associated data so a ciphertext cannot be
swapped onto another key's row. Without that setting a fixed development KEK is used (with
a warning) in the dev environment only: elsewhere the service refuses to start
(shared/secrets.py). `kek_id` (a digest of the KEK) is
stored beside each key, so a wrong KEK fails with a clear message instead of a bare
decryption error.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shared.token_verification import ALGORITHM, AUDIENCE, ISSUER

log = logging.getLogger(__name__)

DEFAULT_TOKEN_TTL = timedelta(minutes=15)
# Development only: derived from a public string, so it protects nothing.
_DEV_KEK = hashlib.sha256(b"sensei-dev-token-key-encryption-key").digest()


class KeyEncryptionError(RuntimeError):
    """A signing key cannot be unsealed (wrong or missing key-encryption key)."""


@dataclass(frozen=True)
class SigningKey:
    """A stored token signing key (private part still sealed)."""

    kid: str
    public_key_der: bytes
    private_key_encrypted: bytes
    kek_id: str
    state: str  # ACTIVE or RETIRED
    created_at: datetime
    retired_at: datetime | None

    def public_key(self) -> ec.EllipticCurvePublicKey:
        """The public key."""
        key = serialization.load_der_public_key(self.public_key_der)
        assert isinstance(key, ec.EllipticCurvePublicKey)
        return key


@dataclass(frozen=True)
class Jwk:
    """The public JWK of a signing key."""

    kid: str
    x: str
    y: str
    kty: str = "EC"
    crv: str = "P-256"
    alg: str = ALGORITHM
    use: str = "sig"

    def as_dict(self) -> dict[str, str]:
        """RFC 7517 members."""
        return {
            "kty": self.kty,
            "crv": self.crv,
            "x": self.x,
            "y": self.y,
            "kid": self.kid,
            "alg": self.alg,
            "use": self.use,
        }


def jwk_of(key: SigningKey) -> Jwk:
    """The JWK of a stored key."""
    numbers = key.public_key().public_numbers()
    return Jwk(
        kid=key.kid,
        x=_b64url(numbers.x.to_bytes(32, "big")),
        y=_b64url(numbers.y.to_bytes(32, "big")),
    )


def jwks_json(keys: Iterable[Jwk]) -> str:
    """A JSON Web Key Set document."""
    return json.dumps({"keys": [key.as_dict() for key in keys]}, separators=(",", ":"))


class KeyVault:
    """Seals and unseals private signing keys with the key-encryption key."""

    def __init__(self, kek: bytes) -> None:
        if len(kek) != 32:
            raise ValueError("the key-encryption key must be 32 bytes")
        self._aead = AESGCM(kek)
        self.kek_id = hashlib.sha256(b"sensei-kek:" + kek).hexdigest()[:16]

    @classmethod
    def from_setting(cls, value: str | None) -> KeyVault:
        """From SENSEI_ORG_KEY_ENCRYPTION_KEY (base64url of 32 bytes); dev KEK when unset."""
        if not value:
            log.warning(
                "SENSEI_ORG_KEY_ENCRYPTION_KEY is not set: token signing keys are sealed"
                " with the public development key"
            )
            return cls(_DEV_KEK)
        try:
            kek = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        except (ValueError, binascii.Error):
            raise ValueError("SENSEI_ORG_KEY_ENCRYPTION_KEY must be base64url") from None
        return cls(kek)

    def generate(self) -> tuple[str, bytes, bytes]:
        """A new P-256 key: (kid, public DER, sealed private PKCS#8 DER)."""
        private = ec.generate_private_key(ec.SECP256R1())
        public_der = private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        kid = hashlib.sha256(public_der).hexdigest()
        private_der = private.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        nonce = os.urandom(12)
        sealed = nonce + self._aead.encrypt(nonce, private_der, kid.encode())
        return kid, public_der, sealed

    def unseal(self, key: SigningKey) -> ec.EllipticCurvePrivateKey:
        """The private key of a stored signing key."""
        if key.kek_id != self.kek_id:
            raise KeyEncryptionError(
                f"signing key {key.kid} was sealed with KEK {key.kek_id}, ours is {self.kek_id}:"
                " check SENSEI_ORG_KEY_ENCRYPTION_KEY"
            )
        nonce, ciphertext = key.private_key_encrypted[:12], key.private_key_encrypted[12:]
        private_der = self._aead.decrypt(nonce, ciphertext, key.kid.encode())
        private = serialization.load_der_private_key(private_der, password=None)
        assert isinstance(private, ec.EllipticCurvePrivateKey)
        return private


@dataclass(frozen=True)
class AccessToken:
    """A minted access token."""

    token: str
    token_id: str
    expires_at: datetime


class TokenSigner:
    """Mints access tokens with the active key; unsealed keys are cached by kid."""

    def __init__(self, vault: KeyVault, ttl: timedelta = DEFAULT_TOKEN_TTL) -> None:
        self._vault = vault
        self._ttl = ttl
        self._unsealed: dict[str, ec.EllipticCurvePrivateKey] = {}

    @property
    def vault(self) -> KeyVault:
        """The vault that seals new keys."""
        return self._vault

    def private_key(self, key: SigningKey) -> ec.EllipticCurvePrivateKey:
        """The unsealed private key of `key` (also signs audit checkpoints)."""
        private = self._unsealed.get(key.kid)
        if private is None:
            private = self._vault.unseal(key)
            self._unsealed[key.kid] = private
        return private

    def mint(
        self,
        key: SigningKey,
        *,
        subject: str,
        role: str,
        org_id: str | None,
        api_key_id: str,
        now: datetime | None = None,
    ) -> AccessToken:
        """An ES256 JWT for a principal, signed with `key`."""
        private = self.private_key(key)
        issued = (now or datetime.now(UTC)).replace(microsecond=0)
        expires = issued + self._ttl
        token_id = str(uuid.uuid4())
        claims: dict[str, object] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": subject,
            "role": role,
            "iat": int(issued.timestamp()),
            "exp": int(expires.timestamp()),
            "jti": token_id,
            "akid": api_key_id,
        }
        if org_id is not None:
            claims["org"] = org_id
        token = jwt.encode(claims, private, algorithm=ALGORITHM, headers={"kid": key.kid})
        return AccessToken(token=token, token_id=token_id, expires_at=expires)


def token_ttl(setting: str | None) -> timedelta:
    """SENSEI_ORG_TOKEN_TTL_SECONDS (default 900, between 10 seconds and 24 hours)."""
    if not setting:
        return DEFAULT_TOKEN_TTL
    seconds = int(setting)
    if not 10 <= seconds <= 86_400:
        raise ValueError("SENSEI_ORG_TOKEN_TTL_SECONDS must be between 10 and 86400")
    return timedelta(seconds=seconds)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
