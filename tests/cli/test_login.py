"""`sensei login` / `logout` and how later commands find their credentials."""

from __future__ import annotations

import base64
import json
import stat
import time

from cli import session as sessions
from cli.errors import ExitCode
from tests.cli.conftest import Cli, create_migration


async def test_login_stores_token_and_addresses_readable_by_the_owner_only(cli: Cli) -> None:
    result = await cli.run(
        "login",
        "--api-key",
        cli.api_key,
        "--org-addr",
        cli.suite.address("org"),
    )

    assert result.code == ExitCode.OK, result.err
    assert f"in organizations/{cli.owner.org_id}" in result.out
    assert "(OWNER)" in result.out
    path = cli.home / "session.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(cli.home.stat().st_mode) == 0o700
    stored = json.loads(path.read_text())
    assert sessions.claims_of(stored["token"]).org_id == cli.owner.org_id
    assert stored["addresses"]["org"] == cli.suite.address("org")
    assert stored["addresses"]["migration"] == cli.suite.address("migration")
    assert "api_key" not in stored, "the API key is kept only with --remember-key"


async def test_later_commands_use_the_stored_login_and_addresses(cli: Cli) -> None:
    await cli.login()
    owner = cli.owner
    await create_migration(cli.suite, owner, "stored-login")

    # No address variables any more: the session remembers where the services are.
    result = await cli.run("migrations", "list", env={"SENSEI_MIGRATION_ADDR": "127.0.0.1:1"})

    assert result.code == ExitCode.OK, result.err
    assert "stored-login" in result.out


async def test_json_login_reports_who_and_until_when(cli: Cli) -> None:
    result = await cli.run("login", "--json", "--api-key", cli.api_key)

    assert result.code == ExitCode.OK, result.err
    document = json.loads(result.out)
    assert document["organization"] == f"organizations/{cli.owner.org_id}"
    assert document["role"] == "OWNER"
    assert document["session"] == str(cli.home / "session.json")


async def test_a_wrong_api_key_is_unauthenticated_with_its_reason(cli: Cli) -> None:
    result = await cli.run("login", "--api-key", "sk_not_a_real_key")

    assert result.code == ExitCode.UNAUTHENTICATED
    assert result.err.startswith("error: UNAUTHENTICATED: ")
    assert not (cli.home / "session.json").exists()


async def test_an_unreachable_org_service_is_unavailable(cli: Cli) -> None:
    result = await cli.run(
        "login", "--api-key", "whatever", "--org-addr", "127.0.0.1:1", "--timeout", "2"
    )

    assert result.code == ExitCode.UNAVAILABLE
    assert "cannot reach the org service at 127.0.0.1:1" in result.err


async def test_without_login_a_command_says_how_to_log_in(cli: Cli) -> None:
    result = await cli.run("migrations", "list")

    assert result.code == ExitCode.UNAUTHENTICATED
    assert "not logged in" in result.err
    assert "sensei login" in result.err


async def test_an_expired_login_asks_to_log_in_again(cli: Cli) -> None:
    token = cli.owner.token
    expired = _with_claims(token, exp=int(time.time()) - 60)
    sessions.save(cli.home, sessions.Session(token=expired, addresses={}))

    result = await cli.run("migrations", "list")

    assert result.code == ExitCode.UNAUTHENTICATED
    assert "expired" in result.err


async def test_an_api_key_in_the_environment_works_without_login(cli: Cli) -> None:
    result = await cli.run("migrations", "list", env={"SENSEI_API_KEY": cli.api_key})

    assert result.code == ExitCode.OK, result.err
    assert not (cli.home / "session.json").exists()


async def test_a_remembered_key_renews_an_expired_token(cli: Cli) -> None:
    result = await cli.run("login", "--api-key", cli.api_key, "--remember-key")
    assert result.code == ExitCode.OK, result.err
    stored = sessions.load(cli.home)
    assert stored is not None and stored.api_key == cli.api_key
    expired = _with_claims(stored.token, exp=int(time.time()) - 60)
    sessions.save(cli.home, sessions.Session(expired, stored.addresses, stored.api_key))

    result = await cli.run("migrations", "list")

    assert result.code == ExitCode.OK, result.err
    renewed = sessions.load(cli.home)
    assert renewed is not None and not renewed.claims.expired()


async def test_logout_forgets_the_session(cli: Cli) -> None:
    await cli.login()

    result = await cli.run("logout")

    assert result.code == ExitCode.OK
    assert not (cli.home / "session.json").exists()
    assert (await cli.run("migrations", "list")).code == ExitCode.UNAUTHENTICATED


def _with_claims(token: str, **claims: object) -> str:
    """The token with changed claims (its signature no longer matches; the CLI only reads it)."""
    header, payload, signature = token.split(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data.update(claims)
    encoded = base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    return f"{header}.{encoded}.{signature}"
