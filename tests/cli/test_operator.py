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
