"""Encryption at rest of connection configs (AES-256-GCM under SENSEI_MIGRATION_CONFIG_KEY)."""

from __future__ import annotations

import base64
import os

import pytest

from services.migration.config_cipher import ConfigCipher, ConfigCipherError
from shared.config import ConfigError
from tests.harness import Suite

CONFIG = {"host": "db1", "password": "s3cret", "port": 5432.0}
MIGRATION = "0b5d5a53-7d4e-4a4b-9a4e-3f0c9b1d2e11"


def _key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def test_sealed_config_opens_to_the_same_config() -> None:
    cipher = ConfigCipher.from_setting(_key())
    sealed = cipher.seal(CONFIG, migration_id=MIGRATION, side="source")
    assert b"s3cret" not in sealed and b"db1" not in sealed
    assert cipher.open(sealed, migration_id=MIGRATION, side="source") == CONFIG


def test_sealing_twice_gives_different_bytes() -> None:
    cipher = ConfigCipher.from_setting(_key())
    first = cipher.seal(CONFIG, migration_id=MIGRATION, side="source")
    assert first != cipher.seal(CONFIG, migration_id=MIGRATION, side="source")


@pytest.mark.parametrize(
    ("migration_id", "side"),
    [(MIGRATION, "target"), ("1b5d5a53-7d4e-4a4b-9a4e-3f0c9b1d2e11", "source")],
)
def test_a_sealed_config_does_not_open_as_another_migrations_or_side(
    migration_id: str, side: str
) -> None:
    cipher = ConfigCipher.from_setting(_key())
    sealed = cipher.seal(CONFIG, migration_id=MIGRATION, side="source")
    with pytest.raises(ConfigCipherError):
        cipher.open(sealed, migration_id=migration_id, side=side)


def test_tampered_bytes_do_not_open() -> None:
    cipher = ConfigCipher.from_setting(_key())
    sealed = bytearray(cipher.seal(CONFIG, migration_id=MIGRATION, side="source"))
    sealed[-1] ^= 1
    with pytest.raises(ConfigCipherError):
        cipher.open(bytes(sealed), migration_id=MIGRATION, side="source")


def test_rotation_opens_old_values_and_seals_with_the_first_key() -> None:
    old, new = _key(), _key()
    sealed_before = ConfigCipher.from_setting(old).seal(CONFIG, migration_id=MIGRATION, side="s")
    rotated = ConfigCipher.from_setting(f"{new},{old}")
    assert rotated.open(sealed_before, migration_id=MIGRATION, side="s") == CONFIG
    sealed_after = rotated.seal(CONFIG, migration_id=MIGRATION, side="s")
    assert ConfigCipher.from_setting(new).open(sealed_after, migration_id=MIGRATION, side="s")
    with pytest.raises(ConfigCipherError, match="not in SENSEI_MIGRATION_CONFIG_KEY"):
        ConfigCipher.from_setting(old).open(sealed_after, migration_id=MIGRATION, side="s")


@pytest.mark.parametrize("value", [None, "", "  "])
def test_a_missing_key_fails_with_a_clear_message(value: str | None) -> None:
    with pytest.raises(ConfigError, match="SENSEI_MIGRATION_CONFIG_KEY is not set"):
        ConfigCipher.from_setting(value)


@pytest.mark.parametrize("value", ["not base64!", base64.urlsafe_b64encode(b"short").decode()])
def test_a_malformed_key_fails(value: str) -> None:
    with pytest.raises(ConfigError, match="SENSEI_MIGRATION_CONFIG_KEY"):
        ConfigCipher.from_setting(value)


async def test_the_service_does_not_start_without_a_key(suite: Suite) -> None:
    await suite.start("org")
    with pytest.raises(ConfigError, match="SENSEI_MIGRATION_CONFIG_KEY"):
        await suite.start("migration", env={"SENSEI_MIGRATION_CONFIG_KEY": ""})
