"""Fixtures of the verification tests: live databases, certificate material, running services."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest

from sensei.migration.v1 import migration_pb2, migration_pb2_grpc
from sensei.verification.v1 import verification_pb2, verification_pb2_grpc
from services.verification.envelope import CertificateClaims, SchemaSubject
from services.verification.keyring import Keyring, SigningKeyRecord
from shared import protoconv
from tests.harness import Identity, Suite


@pytest.fixture
async def source_and_target(
    make_sample_database: Callable[[], Awaitable[str]],
) -> AsyncIterator[tuple[asyncpg.Connection, asyncpg.Connection]]:
    """Connections to two fresh, empty databases: (source, target)."""
    source = await asyncpg.connect(await make_sample_database())
    target = await asyncpg.connect(await make_sample_database())
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


# --- the running service -----------------------------------------------------------------------


def connection_config(dsn: str) -> dict[str, object]:
    """A migration connection config (the migration proto's documented keys) for a test DSN."""
    parts = urlsplit(dsn)
    config: dict[str, object] = {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 5432,
        "database": parts.path.lstrip("/"),
        "user": parts.username or "postgres",
    }
    if parts.password:
        config["password"] = parts.password
    return config


# Longest a test waits for a verification to finish.
WATCH_SECONDS = 60.0


@dataclass
class Stack:
    """Org, migration and verification services, an owner, and a migration between two
    fresh databases (source and target)."""

    suite: Suite
    owner: Identity
    source_dsn: str
    target_dsn: str
    migration: str

    @property
    def verifications(self) -> Any:
        """A VerificationService stub."""
        return self.suite.stub("verification", verification_pb2_grpc.VerificationServiceStub)

    @property
    def migrations(self) -> Any:
        """A MigrationService stub."""
        return self.suite.stub("migration", migration_pb2_grpc.MigrationServiceStub)

    async def run_sql(self, source_sql: str, target_sql: str | None = None) -> None:
        """Runs SQL on the source and the target (the same SQL unless `target_sql` is given)."""
        for dsn, sql in ((self.source_dsn, source_sql), (self.target_dsn, target_sql)):
            conn = await asyncpg.connect(dsn)
            try:
                await conn.execute(source_sql if sql is None else sql)
            finally:
                await conn.close()

    async def create(
        self,
        verification_type: int,
        tables: tuple[str, ...] = (),
        *,
        caller: Identity | None = None,
        migration: str | None = None,
        request_id: str = "",
    ) -> verification_pb2.Verification:
        """CreateVerification; returns the PENDING verification."""
        response = await self.verifications.CreateVerification(
            verification_pb2.CreateVerificationRequest(
                parent=migration or self.migration,
                verification=verification_pb2.Verification(
                    type=verification_type, tables=list(tables)
                ),
                request_id=request_id,
            ),
            metadata=(caller or self.owner).metadata,
        )
        verification: verification_pb2.Verification = response.verification
        return verification

    async def watch(self, name: str) -> list[verification_pb2.Verification]:
        """Every state WatchVerification streams, up to and including the terminal one."""
        seen: list[verification_pb2.Verification] = []
        async with asyncio.timeout(WATCH_SECONDS):
            stream = self.verifications.WatchVerification(
                verification_pb2.WatchVerificationRequest(name=name),
                metadata=self.owner.metadata,
            )
            async for message in stream:
                seen.append(message.verification)
        return seen

    async def finished(self, name: str) -> verification_pb2.Verification:
        """The verification once it reached a terminal status."""
        states = await self.watch(name)
        return states[-1]

    async def run(
        self, verification_type: int, tables: tuple[str, ...] = ()
    ) -> verification_pb2.Verification:
        """Creates a verification and waits for it to finish."""
        created = await self.create(verification_type, tables)
        return await self.finished(created.name)


async def create_migration(
    suite: Suite, owner: Identity, source: dict[str, object], target: dict[str, object]
) -> str:
    """A migration of the owner's organization between two connection configs; its name."""
    migrations = suite.stub("migration", migration_pb2_grpc.MigrationServiceStub)
    response = await migrations.CreateMigration(
        migration_pb2.CreateMigrationRequest(
            parent=owner.org_name,
            migration=migration_pb2.Migration(
                display_name="verification test",
                source_config=protoconv.struct_of(source),
                target_config=protoconv.struct_of(target),
            ),
        ),
        metadata=owner.metadata,
    )
    return str(response.migration.name)


async def start_stack(
    suite: Suite,
    make_sample_database: Callable[[], Awaitable[str]],
    env: Mapping[str, str] | None = None,
) -> Stack:
    """Starts the services (with `env`), creates two empty databases and a migration."""
    await suite.start("migration", "verification", env=env)
    owner = await suite.owner()
    source_dsn = await make_sample_database()
    target_dsn = await make_sample_database()
    migration = await create_migration(
        suite, owner, connection_config(source_dsn), connection_config(target_dsn)
    )
    return Stack(suite, owner, source_dsn, target_dsn, migration)


@pytest.fixture
async def stack(suite: Suite, make_sample_database: Callable[[], Awaitable[str]]) -> Stack:
    """The services, an owner and a migration between two fresh, empty databases."""
    return await start_stack(suite, make_sample_database)
