"""Credentials never leak (docs/architecture.md#connection-configs: encrypted at rest, redacted in
every response, readable in clear only by service principals).

One run creates, reads, lists, watches, updates, captures and verifies migrations whose
configs hold passwords (a `password` key and a password inside a `dsn`), including ones
that point at a closed port so errors are raised and logged. Every log record of the run
(root logger at DEBUG, formatted by the services' JSON formatter), every response and
error, every audit entry and every row of every table must be free of the passwords; only
`GetMigrationConnections` for a service principal returns them.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import grpc
import pytest
from google.protobuf import field_mask_pb2
from google.protobuf.message import Message

from sensei.migration.v1 import migration_pb2, migration_pb2_grpc, schema_pb2, schema_pb2_grpc
from sensei.verification.v1 import verification_pb2, verification_pb2_grpc
from shared.logs import JsonFormatter
from tests.harness import Suite
from tests.reliability.conftest import (
    STACK_ENV,
    audit_drained,
    audit_entries,
    eventually,
)
from tests.reliability.world import struct


def _config(dsn: str, password: str) -> dict[str, Any]:
    parts = urlsplit(dsn)
    return {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 5432,
        "database": parts.path.lstrip("/"),
        "user": parts.username or "postgres",
        "password": password,
        "sslmode": "disable",
    }


def _dsn_config(dsn: str, password: str) -> dict[str, Any]:
    parts = urlsplit(dsn)
    user = parts.username or "postgres"
    netloc = f"{user}:{password}@{parts.hostname}:{parts.port}"
    return {"dsn": parts._replace(netloc=netloc).geturl() + "?sslmode=disable"}


class Recorder:
    """Keeps every response and error the test receives, to search them afterwards."""

    def __init__(self) -> None:
        self.blobs: list[tuple[str, bytes]] = []

    async def call(self, label: str, call: Awaitable[Any]) -> Any:
        try:
            response = await call
        except grpc.aio.AioRpcError as exc:
            self.record_error(label, exc)
            return None
        self.record(label, response)
        return response

    def record(self, label: str, response: Message) -> None:
        self.blobs.append((label, response.SerializeToString()))

    def record_error(self, label: str, exc: grpc.aio.AioRpcError) -> None:
        trailing = b"".join(
            value if isinstance(value, bytes) else str(value).encode()
            for _, value in (exc.trailing_metadata() or ())
        )
        self.blobs.append((f"{label} error", (exc.details() or "").encode() + trailing))


async def test_passwords_never_appear_in_logs_responses_audit_or_tables(
    suite: Suite,
    make_sample_database: Callable[[], Awaitable[str]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # root logger: every service, library and worker
    secrets = {
        "password key": f"pw-key-{uuid.uuid4().hex}",
        "dsn password": f"pw-dsn-{uuid.uuid4().hex}",
        "updated password": f"pw-new-{uuid.uuid4().hex}",
        "unreachable password": f"pw-down-{uuid.uuid4().hex}",
    }
    await suite.start("migration", "verification", env=STACK_ENV)
    owner = await suite.owner()
    service = await suite.service()
    md = owner.metadata
    migrations = suite.stub("migration", migration_pb2_grpc.MigrationServiceStub)
    schemas = suite.stub("migration", schema_pb2_grpc.SchemaServiceStub)
    verifications = suite.stub("verification", verification_pb2_grpc.VerificationServiceStub)
    seen = Recorder()
    source, target = await make_sample_database(), await make_sample_database()
    conn_source = _config(source, secrets["password key"])
    conn_target = _dsn_config(target, secrets["dsn password"])

    live = await seen.call(
        "create",
        migrations.CreateMigration(
            migration_pb2.CreateMigrationRequest(
                parent=owner.org_name,
                migration=migration_pb2.Migration(
                    display_name="with secrets",
                    source_config=struct(conn_source),
                    target_config=struct(conn_target),
                ),
            ),
            metadata=md,
        ),
    )
    name = live.migration.name
    await seen.call(
        "update",
        migrations.UpdateMigration(
            migration_pb2.UpdateMigrationRequest(
                migration=migration_pb2.Migration(
                    name=name, source_config=struct(_config(source, secrets["updated password"]))
                ),
                update_mask=field_mask_pb2.FieldMask(paths=["source_config"]),
            ),
            metadata=md,
        ),
    )
    down = await seen.call(
        "create unreachable",
        migrations.CreateMigration(
            migration_pb2.CreateMigrationRequest(
                parent=owner.org_name,
                migration=migration_pb2.Migration(
                    display_name="unreachable",
                    source_config=struct(
                        {
                            "host": "127.0.0.1",
                            "port": 9,
                            "database": "x",
                            "user": "u",
                            "password": secrets["unreachable password"],
                        }
                    ),
                    target_config=struct(
                        _dsn_config("postgresql://u@127.0.0.1:9/x", secrets["unreachable password"])
                    ),
                ),
            ),
            metadata=md,
        ),
    )
    for migration in (name, down.migration.name):
        await seen.call(
            "get",
            migrations.GetMigration(migration_pb2.GetMigrationRequest(name=migration), metadata=md),
        )
        await seen.call(
            "start",
            migrations.StartMigration(
                migration_pb2.StartMigrationRequest(name=migration), metadata=md
            ),
        )
        for kind in (schema_pb2.SCHEMA_TYPE_SOURCE, schema_pb2.SCHEMA_TYPE_TARGET):
            await seen.call(
                "capture",
                schemas.CaptureSchema(
                    schema_pb2.CaptureSchemaRequest(parent=migration, type=kind), metadata=md
                ),
            )
        for kind in (
            verification_pb2.VERIFICATION_TYPE_ROW_COUNT,
            verification_pb2.VERIFICATION_TYPE_SCHEMA_PARITY,
        ):
            created = await seen.call(
                "verify",
                verifications.CreateVerification(
                    verification_pb2.CreateVerificationRequest(
                        parent=migration, verification=verification_pb2.Verification(type=kind)
                    ),
                    metadata=md,
                ),
            )
            async with asyncio.timeout(30):
                async for change in verifications.WatchVerification(
                    verification_pb2.WatchVerificationRequest(name=created.verification.name),
                    metadata=md,
                ):
                    seen.record("watch verification", change)
    await seen.call(
        "list",
        migrations.ListMigrations(
            migration_pb2.ListMigrationsRequest(parent=owner.org_name), metadata=md
        ),
    )
    watch = migrations.WatchMigration(migration_pb2.WatchMigrationRequest(name=name), metadata=md)
    seen.record("watch migration", await watch.read())
    watch.cancel()

    # The one place credentials come back in clear: a service principal asking for them.
    clear = await migrations.GetMigrationConnections(
        migration_pb2.GetMigrationConnectionsRequest(name=name), metadata=service.metadata
    )
    assert clear.source_config["password"] == secrets["updated password"]
    assert secrets["dsn password"] in clear.target_config["dsn"]

    await eventually(lambda: audit_drained(suite))
    for entry in await audit_entries(suite, owner):
        seen.record("audit entry", entry)

    leaks = []
    formatter = JsonFormatter("test")
    records = list(caplog.records)
    assert len(records) > 20  # DEBUG logging really was on
    for record in records:
        text = formatter.format(record) + repr(record.args) + str(record.__dict__)
        for label, secret in secrets.items():
            if secret in text:
                leaks.append(f"log {record.name}:{record.lineno} has the {label}")
    for where, blob in seen.blobs:
        for label, secret in secrets.items():
            if secret.encode() in blob:
                leaks.append(f"{where} response has the {label}")
    leaks += [f"table {table} has the {label}" for table, label in await _rows_with(suite, secrets)]
    assert not leaks, "\n".join(sorted(set(leaks)))


async def _rows_with(suite: Suite, secrets: dict[str, str]) -> list[tuple[str, str]]:
    """(table, secret label) for every table of every service schema holding a secret."""
    import asyncpg

    conn = await asyncpg.connect(suite.database_url)
    try:
        tables = await conn.fetch(
            "SELECT table_schema, table_name FROM information_schema.tables"
            " WHERE table_schema IN ('org', 'migration', 'verification', 'pattern')"
            " AND table_type = 'BASE TABLE'"
        )
        found = []
        for row in tables:
            qualified = f'"{row["table_schema"]}"."{row["table_name"]}"'
            for label, secret in secrets.items():
                hits = await conn.fetchval(
                    f"SELECT count(*) FROM {qualified} t"
                    # bytea columns render as hex: look for the secret's hex too.
                    " WHERE strpos(t::text, $1) > 0"
                    " OR strpos(t::text, encode(convert_to($1, 'UTF8'), 'hex')) > 0",
                    secret,
                )
                if hits:
                    found.append((qualified, label))
        return found
    finally:
        await conn.close()
