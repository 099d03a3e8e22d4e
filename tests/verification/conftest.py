"""Fixtures of the verification tests: two live databases and certificate material."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from services.verification.certificates import (
    CertificateClaims,
    Keyring,
    SchemaSubject,
    SigningKeyRecord,
)


@pytest.fixture
async def source_and_target(
    make_database: Callable[[], Awaitable[str]],
) -> AsyncIterator[tuple[asyncpg.Connection, asyncpg.Connection]]:
    """Connections to two fresh, empty databases: (source, target)."""
    source = await asyncpg.connect(await make_database())
    target = await asyncpg.connect(await make_database())
    try:
        yield source, target
    finally:
        await source.close()
        await target.close()


async def run_on_both(source: asyncpg.Connection, target: asyncpg.Connection, sql: str) -> None:
    """Execute the same SQL on both databases."""
    await source.execute(sql)
    await target.execute(sql)


@pytest.fixture
def keyring(tmp_path: Path) -> Keyring:
    """A keyring in a fresh directory (holding its first generated key)."""
    return Keyring.open(tmp_path / "keys")


@pytest.fixture
def active_record(keyring: Keyring) -> SigningKeyRecord:
    """The published record of the keyring's first key, active."""
    key_id = keyring.key_ids()[0]
    return SigningKeyRecord.new_active(keyring.public_key(key_id), datetime(2025, 1, 1, tzinfo=UTC))


@pytest.fixture
def claims() -> CertificateClaims:
    """Claims of a finished CHECKSUM verification."""
    return CertificateClaims(
        certificate_id="5c1f8e0a-0d7e-4a4e-9a53-7a4d1d1c0001",
        verification_id="5c1f8e0a-0d7e-4a4e-9a53-7a4d1d1c0002",
        migration_id="5c1f8e0a-0d7e-4a4e-9a53-7a4d1d1c0003",
        org_id="5c1f8e0a-0d7e-4a4e-9a53-7a4d1d1c0004",
        verification_type="CHECKSUM",
        result={
            "type": "CHECKSUM",
            "checks_total": 2,
            "checks_passed": 2,
            "score": 1.0,
            "tables": [{"table": "public.orders", "matched": True, "note": "é ✓"}],
        },
        score=1.0,
        source_schema=SchemaSubject("source-schema", "a" * 64),
        target_schema=SchemaSubject("target-schema", "b" * 64),
        issued_at=datetime(2025, 3, 4, 5, 6, 7, 123456, tzinfo=UTC),
    )
