"""How the CLI reads names and prints numbers: short id prefixes are refused with the forms
that work, Struct numbers print as the integers they were, counts agree with their noun."""

from __future__ import annotations

import json
from pathlib import Path

from cli.errors import ExitCode
from tests.cli.conftest import Cli, create_migration

CONFIG = {"host": "db.internal", "port": 5432, "database": "shop", "user": "app"}


async def test_a_short_id_prefix_names_the_forms_that_work(cli: Cli) -> None:
    await cli.login()

    result = await cli.run("migrations", "get", "6d6e")

    assert result.code == ExitCode.USAGE
    assert result.err.startswith("error: '6d6e' is not a full id (a prefix is not enough)")
    assert "organizations/{org}/migrations/{id}" in result.err
    assert "full UUIDs" in result.err
    assert "your organization is used" in result.err


async def test_a_short_prefix_inside_a_full_name_is_refused_as_json(cli: Cli) -> None:
    await cli.login()
    name = f"{cli.owner.org_name}/migrations/6d6e"

    result = await cli.run("migrations", "watch", name, "--json")

    assert result.code == ExitCode.USAGE
    message = json.loads(result.err)["error"]["message"]
    assert message.startswith(f"'6d6e' in {name!r} is not a full id")


async def test_a_verification_with_a_short_migration_id_is_refused(cli: Cli) -> None:
    await cli.login()
    migration = await create_migration(cli.suite, cli.owner, "named")

    result = await cli.run("verifications", "get", f"migrations/{migration.id[:8]}/verifications/x")

    assert result.code == ExitCode.USAGE
    assert "migrations/{id}/verifications/{id}" in result.err


async def test_a_full_id_in_upper_case_still_finds_the_migration(cli: Cli) -> None:
    await cli.login()
    migration = await create_migration(cli.suite, cli.owner, "upper")

    result = await cli.run("migrations", "get", migration.id.upper(), "--json")

    assert result.code == ExitCode.OK, result.err
    assert json.loads(result.out)["id"] == migration.id


async def test_config_numbers_print_as_integers(cli: Cli) -> None:
    await cli.login()
    migration = await create_migration(cli.suite, cli.owner, "ports", CONFIG, CONFIG)

    text = await cli.run("migrations", "get", migration.id)
    as_json = await cli.run("migrations", "get", migration.id, "--json")

    assert text.code == as_json.code == ExitCode.OK, text.err + as_json.err
    assert "postgresql://app@db.internal:5432/shop" in text.out
    assert "5432.0" not in text.out + as_json.out
    port = json.loads(as_json.out)["sourceConfig"]["port"]
    assert port == 5432 and isinstance(port, int)


async def test_writing_one_signing_key_says_key(cli: Cli, tmp_path: Path) -> None:
    listed = await cli.run("certificates", "keys", "--json")
    keys = json.loads(listed.out)["keys"]
    assert len(keys) == 1, "this module's suite starts with one signing key and rotates none"

    written = await cli.run("certificates", "keys", "-o", str(tmp_path / "jwks.json"))

    assert written.code == ExitCode.OK, written.err
    assert written.out == f"wrote 1 signing key to {tmp_path / 'jwks.json'}\n"
