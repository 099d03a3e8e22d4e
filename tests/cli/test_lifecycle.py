"""`sensei migrations create|update|delete|start|advance|pause|resume|complete|fail|cancel|
report-progress` against running services."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from cli.errors import ExitCode
from tests.cli.conftest import RUN_SECONDS, Cli, Result

SOURCE = {"host": "db.internal", "port": 5432, "database": "shop", "user": "app", "password": "pw"}


def _fields(text: str) -> dict[str, str]:
    return {
        key.strip(): value.strip()
        for key, _, value in (line.partition(":") for line in text.splitlines())
    }


async def _create(cli: Cli, *argv: str) -> dict[str, object]:
    created = await cli.run("migrations", "create", *argv, "--json")
    assert created.code == ExitCode.OK, created.err
    document: dict[str, object] = json.loads(created.out)
    return document


async def _verb(cli: Cli, *argv: str) -> Result:
    result = await cli.run("migrations", *argv)
    assert result.code == ExitCode.OK, result.err
    return result


async def test_create_from_dsns_is_pending_with_the_password_redacted(cli: Cli) -> None:
    await cli.login()

    created = await cli.run(
        "migrations", "create", "orders", "--description", "to the new cluster",
        "--source-dsn", "postgresql://app:s3cret@db.internal:5432/orders",
        "--target-dsn", "postgresql://app@db2.internal:5433/orders",
    )  # fmt: skip

    assert created.code == ExitCode.OK, created.err
    fields = _fields(created.out)
    assert fields["display name"] == "orders"
    assert fields["description"] == "to the new cluster"
    assert fields["status"] == "PENDING"
    assert fields["target"] == "postgresql://app@db2.internal:5433/orders"
    assert "s3cret" not in created.out
    assert fields["name"].startswith(f"{cli.owner.org_name}/migrations/")


async def test_create_from_a_config_file_is_idempotent_by_request_id(
    cli: Cli, tmp_path: Path
) -> None:
    await cli.login()
    config = tmp_path / "source.json"
    config.write_text(json.dumps(SOURCE))
    argv = ["from file", "--source-config", str(config), "--request-id", "cli-create-1"]

    first = await _create(cli, *argv)
    again = await _create(cli, *argv)
    reused = await cli.run("migrations", "create", "another body", "--request-id", "cli-create-1")

    assert again["name"] == first["name"]
    assert first["sourceConfig"] == {**SOURCE, "password": "REDACTED"}
    assert reused.code == ExitCode.INVALID_ARGUMENT
    assert "REQUEST_ID_REUSED" in reused.err


async def test_create_in_a_subprocess_reads_a_config_from_stdin(cli: Cli) -> None:
    await cli.login()
    process = await cli.spawn(
        "migrations", "create", "from stdin", "--source-config", "-", "--json",
        stdin=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(json.dumps(SOURCE).encode()), RUN_SECONDS)

    assert process.returncode == ExitCode.OK, err.decode()
    assert json.loads(out)["sourceConfig"]["host"] == SOURCE["host"]


async def test_a_config_file_that_is_not_a_json_object_is_a_usage_error(
    cli: Cli, tmp_path: Path
) -> None:
    await cli.login()
    config = tmp_path / "source.json"
    config.write_text("[1, 2]")

    result = await cli.run("migrations", "create", "bad", "--source-config", str(config))

    assert result.code == ExitCode.USAGE
    assert "must hold a JSON object" in result.err


async def test_a_migration_is_driven_through_every_phase_to_completed(cli: Cli) -> None:
    await cli.login()
    name = str((await _create(cli, "driven"))["name"])

    statuses = []
    for argv in [
        ("start", name),
        ("report-progress", name, "40%"),
        ("advance", name),
        ("pause", name),
        ("resume", name),
        ("report-progress", name, "0.9"),
        ("advance", name),
        ("complete", name),
    ]:
        fields = _fields((await _verb(cli, *argv)).out)
        statuses.append((argv[0], fields["status"], fields["progress"]))

    assert statuses == [
        ("start", "ANALYZING", "0.0%"),
        ("report-progress", "ANALYZING", "40.0%"),
        ("advance", "MIGRATING", "40.0%"),
        ("pause", "PAUSED", "40.0%"),
        ("resume", "MIGRATING", "40.0%"),
        ("report-progress", "MIGRATING", "90.0%"),
        ("advance", "VERIFYING", "90.0%"),
        ("complete", "COMPLETED", "100.0%"),
    ]


async def test_paused_shows_the_phase_it_resumes_into(cli: Cli) -> None:
    await cli.login()
    created = await _create(cli, "paused")
    await _verb(cli, "start", str(created["id"]))

    paused = await _verb(cli, "pause", str(created["id"]))

    assert _fields(paused.out)["paused in"] == "ANALYZING"


async def test_fail_records_the_reason(cli: Cli) -> None:
    await cli.login()
    name = str((await _create(cli, "failing"))["name"])
    await _verb(cli, "start", name)

    failed = await cli.run("migrations", "fail", name, "--reason", "target disk full", "--json")

    assert failed.code == ExitCode.OK, failed.err
    migration = json.loads(failed.out)
    assert migration["status"] == "MIGRATION_STATUS_FAILED"
    assert migration["failureReason"] == "target disk full"


async def test_fail_without_a_reason_is_a_usage_error(cli: Cli) -> None:
    await cli.login()

    result = await cli.run("migrations", "fail", "migrations/-")

    assert result.code == ExitCode.USAGE
    assert "--reason" in result.err


async def test_cancel_with_a_stale_etag_is_a_conflict(cli: Cli) -> None:
    await cli.login()
    created = await _create(cli, "cancelled")
    name, stale = str(created["name"]), str(created["etag"])
    await _verb(cli, "update", name, "--description", "changed meanwhile")

    refused = await cli.run("migrations", "cancel", name, "--etag", stale)
    cancelled = await cli.run("migrations", "cancel", name, "--json")

    assert refused.code == ExitCode.CONFLICT
    assert refused.err.startswith("error: ABORTED: ")
    assert json.loads(cancelled.out)["status"] == "MIGRATION_STATUS_CANCELLED"


async def test_an_illegal_transition_is_a_conflict_with_its_reason(cli: Cli) -> None:
    await cli.login()
    name = str((await _create(cli, "not started"))["name"])

    result = await cli.run("migrations", "complete", name)

    assert result.code == ExitCode.CONFLICT
    assert "ILLEGAL_TRANSITION" in result.err


async def test_progress_may_not_go_down(cli: Cli) -> None:
    await cli.login()
    name = str((await _create(cli, "monotonic"))["name"])
    await _verb(cli, "start", name)
    await _verb(cli, "report-progress", name, "0.5")

    result = await cli.run("migrations", "report-progress", name, "0.25", "--json")

    assert result.code == ExitCode.CONFLICT
    assert json.loads(result.err)["error"]["reason"] == "PROGRESS_DECREASED"


async def test_update_replaces_only_the_fields_given(cli: Cli, tmp_path: Path) -> None:
    await cli.login()
    created = await _create(cli, "before", "--description", "kept")
    config = tmp_path / "target.json"
    config.write_text(json.dumps({**SOURCE, "host": "db3.internal"}))

    updated = await cli.run(
        "migrations", "update", str(created["id"]), "--display-name", "after",
        "--target-config", str(config), "--etag", str(created["etag"]), "--json",
    )  # fmt: skip

    assert updated.code == ExitCode.OK, updated.err
    migration = json.loads(updated.out)
    assert (migration["displayName"], migration["description"]) == ("after", "kept")
    assert migration["targetConfig"]["host"] == "db3.internal"
    assert migration["targetConfig"]["port"] == 5432


async def test_update_without_any_field_is_a_usage_error(cli: Cli) -> None:
    await cli.login()
    created = await _create(cli, "unchanged")

    result = await cli.run("migrations", "update", str(created["id"]))

    assert result.code == ExitCode.USAGE
    assert "nothing to update" in result.err


async def test_delete_removes_the_migration(cli: Cli) -> None:
    await cli.login()
    name = str((await _create(cli, "deleted"))["name"])

    deleted = await cli.run("migrations", "delete", name)
    missing = await cli.run("migrations", "get", name)

    assert deleted.code == ExitCode.OK, deleted.err
    assert deleted.out == f"deleted {name}\n"
    assert missing.code == ExitCode.NOT_FOUND
