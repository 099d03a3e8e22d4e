"""Encryption at rest of connection configs: AES-256-GCM under `SENSEI_MIGRATION_CONFIG_KEY`.

The setting holds one or more base64url-encoded 32-byte keys separated by commas: the first
seals new values, all of them open old ones (rotate by prepending a new key, re-save, then
drop the old one). A missing or malformed key stops the service at startup — there is no
development fallback, because configs sealed with a made-up key would be lost at the next
restart; `make run` generates one into `.sensei/secrets.env`.

Sealed form: ``b"\\x01"`` (format version), the 8-byte key id, a 12-byte random nonce, then the
ciphertext and tag. The associated data binds a value to its migration and side, so a sealed
source config cannot be replayed as another migration's or as a target config.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shared.config import ConfigError

SETTING = "SENSEI_MIGRATION_CONFIG_KEY"
_FORMAT = b"\x01"
_KEY_ID_BYTES = 8
_NONCE_BYTES = 12


class ConfigCipherError(RuntimeError):
    """A sealed config cannot be opened (unknown key, tampered bytes): an operator problem."""


def _key_id(key: bytes) -> bytes:
    return hashlib.sha256(b"sensei-migration-config-key:" + key).digest()[:_KEY_ID_BYTES]


class ConfigCipher:
    """Seals and opens connection configs."""

    def __init__(self, keys: list[bytes]) -> None:
        if not keys:
            raise ConfigError(f"{SETTING} holds no key")
        for key in keys:
            if len(key) != 32:
                raise ConfigError(f"{SETTING}: every key must be 32 bytes (base64url-encoded)")
        self._sealing_id = _key_id(keys[0])
        self._sealing = AESGCM(keys[0])
        self._by_id = {_key_id(key): AESGCM(key) for key in keys}

    @classmethod
    def from_setting(cls, value: str | None) -> ConfigCipher:
        """From the value of SENSEI_MIGRATION_CONFIG_KEY; ConfigError when unset or malformed."""
        if not value or not value.strip():
            raise ConfigError(
                f"{SETTING} is not set: connection configs are encrypted at rest with it."
                " Set it to base64url of 32 random bytes, e.g. the output of"
                ' `python -c "import base64, os; print(base64.urlsafe_b64encode(os.urandom(32))'
                '.decode())"`'
            )
        keys = []
        for part in value.split(","):
            text = part.strip()
            try:
                keys.append(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
            except (ValueError, binascii.Error):
                raise ConfigError(f"{SETTING} must be base64url-encoded keys") from None
        return cls(keys)

    def seal(self, config: Mapping[str, Any], *, migration_id: str, side: str) -> bytes:
        """The sealed bytes of ``config`` for one side (source/target) of one migration."""
        nonce = os.urandom(_NONCE_BYTES)
        plaintext = json.dumps(dict(config), sort_keys=True, separators=(",", ":")).encode()
        ciphertext = self._sealing.encrypt(nonce, plaintext, _associated(migration_id, side))
        return _FORMAT + self._sealing_id + nonce + ciphertext

    def open(self, sealed: bytes, *, migration_id: str, side: str) -> dict[str, Any]:
        """The config sealed in ``sealed``; ConfigCipherError if it cannot be opened."""
        head = 1 + _KEY_ID_BYTES
        if len(sealed) < head + _NONCE_BYTES or sealed[:1] != _FORMAT:
            raise ConfigCipherError(f"{side} config of migration {migration_id} is malformed")
        aead = self._by_id.get(bytes(sealed[1:head]))
        if aead is None:
            raise ConfigCipherError(
                f"{side} config of migration {migration_id} was sealed with a key that is not"
                f" in {SETTING}"
            )
        nonce, ciphertext = sealed[head : head + _NONCE_BYTES], sealed[head + _NONCE_BYTES :]
        try:
            plaintext = aead.decrypt(nonce, ciphertext, _associated(migration_id, side))
        except InvalidTag:
            raise ConfigCipherError(
                f"{side} config of migration {migration_id} fails authentication"
            ) from None
        value: dict[str, Any] = json.loads(plaintext)
        return value


def _associated(migration_id: str, side: str) -> bytes:
    return f"sensei.migration/{migration_id}/{side}".encode()
