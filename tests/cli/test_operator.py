"""The CLI as the platform operator: pattern writes and signing keys with `--as-operator`,
and the same commands refused for a tenant's owner."""

from __future__ import annotations

import json

from cli.errors import ExitCode
from tests.cli.conftest import Cli


def _operator_env(cli: Cli) -> dict[str, str]:
    return {"SENSEI_OPERATOR_API_KEY": cli.suite.operator_api_key}


async def test_operator_upserts_reindexes_and_deletes_a_pattern(cli: Cli) -> None:
    await cli.suite.start("pattern")
    cli.env["SENSEI_PATTERN_ADDR"] = cli.suite.address("pattern")
    env = _operator_env(cli)
    upserted = await cli.run(
        "patterns", "upsert", "cli-operator-fp", "--type", "cli-operator",
        "--text", "rename column a to b", "--metadata", '{"source": "cli"}',
        "--as-operator", "--json", env=env,
    )  # fmt: skip
    assert upserted.code == ExitCode.OK, upserted.err
    pattern = json.loads(upserted.out)["pattern"]
    assert pattern["fingerprint"] == "cli-operator-fp"
    reindexed = await cli.run("patterns", "reindex", "--as-operator", "--json", env=env)
    assert reindexed.code == ExitCode.OK, reindexed.err
    assert json.loads(reindexed.out)["phase"] == "REINDEX_PHASE_DONE"
    deleted = await cli.run("patterns", "delete", pattern["name"], "--as-operator", env=env)
    assert deleted.code == ExitCode.OK, deleted.err


async def test_a_tenant_owner_cannot_write_patterns(cli: Cli) -> None:
    await cli.suite.start("pattern")
    cli.env["SENSEI_PATTERN_ADDR"] = cli.suite.address("pattern")
    await cli.login()
    result = await cli.run(
        "patterns", "upsert", "cli-owner-fp", "--type", "t", "--text", "add column c"
    )
    assert result.code == ExitCode.PERMISSION_DENIED
    assert "PLATFORM_ONLY" in result.err


async def test_operator_rotates_and_revokes_signing_keys(cli: Cli) -> None:
    env = _operator_env(cli)
    rotated = await cli.run("signing-keys", "rotate", "--as-operator", "--json", env=env)
    assert rotated.code == ExitCode.OK, rotated.err
    retired = json.loads(rotated.out)["retiredKey"]["keyId"]
    revoked = await cli.run(
        "signing-keys", "revoke", retired, "--reason", "drill", "--as-operator", env=env
    )
    assert revoked.code == ExitCode.OK, revoked.err
    assert retired in revoked.out
    keys = await cli.run("certificates", "keys", "--json")
    assert keys.code == ExitCode.OK, keys.err


async def test_a_tenant_owner_cannot_rotate_signing_keys(cli: Cli) -> None:
    await cli.login()
    result = await cli.run("signing-keys", "rotate")
    assert result.code == ExitCode.PERMISSION_DENIED


async def test_as_operator_without_the_key_says_what_is_missing(cli: Cli) -> None:
    result = await cli.run("signing-keys", "rotate", "--as-operator")
    assert result.code == ExitCode.UNAUTHENTICATED
    assert "SENSEI_OPERATOR_API_KEY" in result.err


async def test_as_operator_with_a_tenant_key_is_refused(cli: Cli) -> None:
    result = await cli.run(
        "signing-keys", "rotate", "--as-operator", env={"SENSEI_OPERATOR_API_KEY": cli.api_key}
    )
    assert result.code == ExitCode.UNAUTHENTICATED
    assert "not the platform operator" in result.err


async def test_as_operator_before_the_command_upserts_and_deletes_by_bare_id(cli: Cli) -> None:
    await cli.suite.start("pattern")
    cli.env["SENSEI_PATTERN_ADDR"] = cli.suite.address("pattern")
    env = _operator_env(cli)
    upserted = await cli.run(
        "--as-operator", "patterns", "upsert", "cli-before-fp", "--type", "cli-operator",
        "--text", "drop column legacy_flag", env=env,
    )  # fmt: skip
    assert upserted.code == ExitCode.OK, upserted.err
    fields = dict(line.split(":", 1) for line in upserted.out.splitlines())
    assert fields["created"].strip() == "yes"
    again = await cli.run(
        "--as-operator", "patterns", "upsert", "cli-before-fp", "--metadata", '{"runs": 3}',
        "--json", env=env,
    )  # fmt: skip
    assert again.code == ExitCode.OK, again.err
    document = json.loads(again.out)
    assert document.get("created", False) is False
    assert document["pattern"]["metadata"] == {"runs": 3}

    name = fields["pattern"].strip()
    deleted = await cli.run("--as-operator", "patterns", "delete", name.split("/")[1], env=env)

    assert deleted.code == ExitCode.OK, deleted.err
    assert deleted.out == f"deleted {name}\n"


async def test_a_short_pattern_id_names_the_forms_that_work(cli: Cli) -> None:
    result = await cli.run("--as-operator", "patterns", "delete", "5b1e", env=_operator_env(cli))

    assert result.code == ExitCode.USAGE
    assert "patterns/{id}" in result.err and "prefix" in result.err


async def test_reindex_reports_its_phases_and_the_count(cli: Cli) -> None:
    await cli.suite.start("pattern")
    cli.env["SENSEI_PATTERN_ADDR"] = cli.suite.address("pattern")

    result = await cli.run("patterns", "reindex", "--as-operator", env=_operator_env(cli))

    assert result.code == ExitCode.OK, result.err
    assert result.out.startswith("reindexed ")
    assert result.err.splitlines()[-1].startswith("done: ")


async def test_operator_logged_in_with_the_key_needs_no_flag(cli: Cli) -> None:
    login = await cli.run("login", "--api-key", cli.suite.operator_api_key)
    assert login.code == ExitCode.OK, login.err

    rotated = await cli.run("signing-keys", "rotate")

    assert rotated.code == ExitCode.OK, rotated.err
    assert rotated.out.startswith("active key:")


async def test_revoking_an_unknown_key_is_not_found(cli: Cli) -> None:
    result = await cli.run(
        "signing-keys", "revoke", "ab" * 32, "--as-operator", env=_operator_env(cli)
    )

    assert result.code == ExitCode.NOT_FOUND, result.err


async def test_a_short_key_id_names_the_forms_that_work(cli: Cli) -> None:
    result = await cli.run(
        "signing-keys", "revoke", "9f2c", "--as-operator", env=_operator_env(cli)
    )

    assert result.code == ExitCode.USAGE
    assert "signingKeys/{id} or the bare id, 64 hex digits" in result.err


async def test_rotate_is_idempotent_by_request_id(cli: Cli) -> None:
    env = _operator_env(cli)
    argv = ("signing-keys", "rotate", "--request-id", "cli-rotate-1", "--as-operator", "--json")

    first = await cli.run(*argv, env=env)
    again = await cli.run(*argv, env=env)

    assert first.code == again.code == ExitCode.OK, first.err + again.err
    key = json.loads(first.out)["signingKey"]["keyId"]
    assert json.loads(again.out)["signingKey"]["keyId"] == key
