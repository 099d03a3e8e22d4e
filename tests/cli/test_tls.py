"""The CLI against services that require client certificates: --tls-* flags or SENSEI_TLS_*."""

from __future__ import annotations

from pathlib import Path

from devstack.tls import issue, make_authority, write_pair
from tests.cli.conftest import Cli
from tests.harness import Suite
from tests.harness.tls import service_tls_env


async def _cli(suite: Suite, tmp_path: Path) -> tuple[Cli, dict[str, str]]:
    authority = make_authority()
    suite.env.update(service_tls_env(authority, tmp_path / "tls"))
    await suite.start("migration")
    cert, key = write_pair(tmp_path / "tls", "person", issue(authority, "person", server=False))
    env = {"SENSEI_CLI_HOME": str(tmp_path / "cli-home")}
    for service in suite.running:
        env[f"SENSEI_{service.upper()}_ADDR"] = suite.address(service)
    files = {"ca": suite.env["SENSEI_TLS_CA_FILE"], "cert": str(cert), "key": str(key)}
    return Cli(suite, tmp_path / "cli-home", await suite.owner(), suite.owner_api_key, env), files


async def test_the_tls_flags_log_in_and_call_over_mutual_tls(suite: Suite, tmp_path: Path) -> None:
    cli, files = await _cli(suite, tmp_path)
    flags = ["--tls-ca", files["ca"], "--tls-cert", files["cert"], "--tls-key", files["key"]]
    login = await cli.run("login", "--api-key", cli.api_key, *flags)
    assert login.code == 0, login.err
    listed = await cli.run("migrations", "list", *flags)
    assert listed.code == 0, listed.err


async def test_the_tls_settings_serve_as_well_as_the_flags(suite: Suite, tmp_path: Path) -> None:
    cli, files = await _cli(suite, tmp_path)
    env = {
        "SENSEI_TLS_CA_FILE": files["ca"],
        "SENSEI_TLS_CLIENT_CERT_FILE": files["cert"],
        "SENSEI_TLS_CLIENT_KEY_FILE": files["key"],
        "SENSEI_API_KEY": cli.api_key,
    }
    listed = await cli.run("migrations", "list", env=env)
    assert listed.code == 0, listed.err


async def test_without_a_certificate_the_cli_cannot_reach_the_services(
    suite: Suite, tmp_path: Path
) -> None:
    cli, files = await _cli(suite, tmp_path)
    refused = await cli.run("login", "--api-key", cli.api_key, "--tls-ca", files["ca"])
    assert refused.code == 9, refused.err  # unavailable
