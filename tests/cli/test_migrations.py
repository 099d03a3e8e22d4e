"""`sensei migrations list|get|watch` against running services."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os

from cli.errors import ExitCode
from sensei.migration.v1 import migration_pb2, migration_pb2_grpc
from tests.cli.conftest import Cli, create_migration
from tests.harness import Identity, Suite

pb = migration_pb2
# Longest a test waits for a watching CLI to finish after the migration ended.
WATCH_SECONDS = 20.0


async def _drive_to_completion(suite: Suite, owner: Identity, name: str) -> None:
    """PENDING → ANALYZING → (50%) → MIGRATING → VERIFYING → COMPLETED."""
    stub = suite.stub("migration", migration_pb2_grpc.MigrationServiceStub)
    metadata = owner.metadata
    await stub.StartMigration(pb.StartMigrationRequest(name=name), metadata=metadata)
    await stub.ReportProgress(pb.ReportProgressRequest(name=name, progress=0.5), metadata=metadata)
    await stub.AdvanceMigration(pb.AdvanceMigrationRequest(name=name), metadata=metadata)
    await stub.AdvanceMigration(pb.AdvanceMigrationRequest(name=name), metadata=metadata)
    await stub.CompleteMigration(pb.CompleteMigrationRequest(name=name), metadata=metadata)


async def test_list_shows_every_migration_of_the_organization(cli: Cli) -> None:
    await cli.login()
    owner = cli.owner
    first = await create_migration(cli.suite, owner, "orders to new cluster")
    second = await create_migration(cli.suite, owner, "billing")

    result = await cli.run("migrations", "list", "--page-size", "1")

    assert result.code == ExitCode.OK, result.err
    header, *rows = result.out.splitlines()
    assert header.split() == ["ID", "NAME", "STATUS", "PROGRESS", "CREATED"]
    assert [row.split()[0] for row in rows] == [first.id, second.id]
    assert "PENDING" in rows[0] and "0.0%" in rows[0]


async def test_list_as_json_filters_by_status(cli: Cli) -> None:
    await cli.login()
    owner = cli.owner
    started = await create_migration(cli.suite, owner, "started")
    await create_migration(cli.suite, owner, "waiting")
    stub = cli.suite.stub("migration", migration_pb2_grpc.MigrationServiceStub)
    await stub.StartMigration(pb.StartMigrationRequest(name=started.name), metadata=owner.metadata)

    result = await cli.run("migrations", "list", "--status", "analyzing", "--json")

    assert result.code == ExitCode.OK, result.err
    listed = json.loads(result.out)["migrations"]
    assert [(m["name"], m["status"]) for m in listed] == [
        (started.name, "MIGRATION_STATUS_ANALYZING")
    ]


async def test_get_by_id_shows_the_migration_with_credentials_redacted(cli: Cli) -> None:
    await cli.login()
    owner = cli.owner
    config = {"host": "db.internal", "port": 5432, "database": "shop", "user": "app"}
    created = await create_migration(
        cli.suite, owner, "shop", {**config, "password": "s3cret"}, config
    )

    result = await cli.run("migrations", "get", created.id)

    assert result.code == ExitCode.OK, result.err
    fields = dict(line.split(":", 1) for line in result.out.splitlines())
    assert fields["name"].strip() == created.name
    assert fields["status"].strip() == "PENDING"
    assert fields["source"].strip() == "postgresql://app@db.internal:5432/shop"
    assert "s3cret" not in result.out
    as_json = await cli.run("migrations", "get", created.name, "--json")
    assert json.loads(as_json.out)["sourceConfig"]["password"] == "REDACTED"


async def test_an_unknown_migration_is_not_found(cli: Cli) -> None:
    await cli.login()
    missing = "00000000-0000-4000-8000-000000000000"

    result = await cli.run("migrations", "get", f"migrations/{missing}")

    assert result.code == ExitCode.NOT_FOUND
    assert result.err.startswith("error: NOT_FOUND: ")


async def test_bad_input_lists_the_field_violations_and_exits_6(cli: Cli) -> None:
    await cli.login()

    text = await cli.run("migrations", "list", "--page-size", "-1")
    as_json = await cli.run("migrations", "list", "--page-size", "-1", "--json")

    assert text.code == as_json.code == ExitCode.INVALID_ARGUMENT
    assert "  - page_size: " in text.err
    error = json.loads(as_json.err)["error"]
    assert error["code"] == "INVALID_ARGUMENT"
    assert error["domain"].endswith(".sensei.dev")
    assert [v["field"] for v in error["fieldViolations"]] == ["page_size"]


async def test_another_organizations_migration_is_permission_denied(cli: Cli) -> None:
    await cli.login()
    _, stranger = await cli.suite.new_org()
    theirs = await create_migration(cli.suite, stranger, "not yours")

    result = await cli.run("migrations", "get", theirs.name, "--json")

    assert result.code == ExitCode.PERMISSION_DENIED
    assert json.loads(result.err)["error"]["reason"] == "OTHER_ORGANIZATION"


async def test_watch_in_a_subprocess_follows_the_migration_until_it_completes(cli: Cli) -> None:
    await cli.login()
    owner = cli.owner
    migration = await create_migration(cli.suite, owner, "watched")
    process = await cli.spawn("migrations", "watch", migration.id)
    try:
        assert process.stdout is not None
        first = await asyncio.wait_for(process.stdout.readline(), WATCH_SECONDS)
        assert first.split()[1:] == [b"SNAPSHOT", b"PENDING", b"0.0%"]

        await _drive_to_completion(cli.suite, owner, migration.name)
        rest, err = await asyncio.wait_for(process.communicate(), WATCH_SECONDS)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

    assert process.returncode == ExitCode.OK, err.decode()
    lines = [line.split()[1:] for line in rest.decode().splitlines()]
    assert ["STATUS_CHANGED", "ANALYZING", "0.0%"] in lines
    assert ["PROGRESS_CHANGED", "ANALYZING", "50.0%"] in lines
    assert ["STATUS_CHANGED", "MIGRATING", "50.0%"] in lines
    assert lines[-2] == ["STATUS_CHANGED", "COMPLETED", "100.0%"]
    assert rest.decode().splitlines()[-1] == f"{migration.name} COMPLETED"


async def test_watch_exits_1_when_the_migration_fails(cli: Cli) -> None:
    await cli.login()
    owner = cli.owner
    migration = await create_migration(cli.suite, owner, "doomed")
    stub = cli.suite.stub("migration", migration_pb2_grpc.MigrationServiceStub)
    await stub.StartMigration(
        pb.StartMigrationRequest(name=migration.name), metadata=owner.metadata
    )
    exit_code, out, _ = cli.start("migrations", "watch", migration.name)

    await out.wait_for("SNAPSHOT")
    await stub.FailMigration(
        pb.FailMigrationRequest(name=migration.name, reason="target disk full"),
        metadata=owner.metadata,
    )
    code = await asyncio.wait_for(exit_code, WATCH_SECONDS)

    assert code == ExitCode.NEGATIVE
    assert out.getvalue().splitlines()[-1] == f"{migration.name} FAILED: target disk full"


async def test_watch_as_json_prints_one_event_per_line(cli: Cli) -> None:
    await cli.login()
    owner = cli.owner
    migration = await create_migration(cli.suite, owner, "json watch")
    exit_code, out, _ = cli.start("migrations", "watch", migration.id, "--json")

    await out.wait_for("\n")
    stub = cli.suite.stub("migration", migration_pb2_grpc.MigrationServiceStub)
    await stub.CancelMigration(
        pb.CancelMigrationRequest(name=migration.name), metadata=owner.metadata
    )
    code = await asyncio.wait_for(exit_code, WATCH_SECONDS)

    assert code == ExitCode.NEGATIVE
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(e["eventType"], e["migration"]["status"]) for e in events] == [
        ("MIGRATION_EVENT_TYPE_SNAPSHOT", "MIGRATION_STATUS_PENDING"),
        ("MIGRATION_EVENT_TYPE_STATUS_CHANGED", "MIGRATION_STATUS_CANCELLED"),
    ]


async def test_watch_on_a_terminal_redraws_one_bar_line(cli: Cli) -> None:
    await cli.login()
    migration = await create_migration(cli.suite, cli.owner, "on a tty")
    terminal, screen = os.openpty()
    process = await cli.spawn("migrations", "watch", migration.id, stdout=screen)
    os.close(screen)
    shown = bytearray()
    changed = asyncio.Event()

    def read() -> None:
        try:
            shown.extend(os.read(terminal, 65536))
        except OSError:  # EIO: the watcher exited and closed the terminal
            asyncio.get_running_loop().remove_reader(terminal)
        changed.set()

    asyncio.get_running_loop().add_reader(terminal, read)
    try:
        async with asyncio.timeout(WATCH_SECONDS):
            while b"PENDING" not in shown:
                changed.clear()
                await changed.wait()
            await _drive_to_completion(cli.suite, cli.owner, migration.name)
            await process.wait()
        asyncio.get_running_loop().remove_reader(terminal)
        # The watcher has exited: the rest of its output waits in the terminal's buffer.
        os.set_blocking(terminal, False)
        with contextlib.suppress(OSError):
            while chunk := os.read(terminal, 65536):
                shown.extend(chunk)
    finally:
        asyncio.get_running_loop().remove_reader(terminal)
        os.close(terminal)
        if process.returncode is None:
            process.kill()
            await process.wait()

    assert process.returncode == ExitCode.OK
    frames = shown.decode().split("\r\x1b[2K")[1:]
    assert frames[0].startswith("PENDING    [") and frames[0].endswith("] 0.0%")
    assert any(frame.startswith("ANALYZING  [") and "50.0%" in frame for frame in frames)
    assert frames[-1].splitlines()[0].endswith("] 100.0%")
    assert frames[-1].splitlines()[-1] == f"{migration.name} COMPLETED"
