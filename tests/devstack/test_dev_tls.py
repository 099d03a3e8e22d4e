"""`make run TLS=1`: the dev stack's throwaway CA and certificates give working mutual TLS.

The certificates are made by `devstack.tls.write_dev_tls` into the test's directory; the
services run with its settings, the CLI's settings and the printed grpcurl flags reach them.
"""

from __future__ import annotations

import asyncio
import shlex
import sys
from pathlib import Path

from devstack.__main__ import REPO, grpcurl_flags
from devstack.tls import write_dev_tls
from shared import settings
from shared.tls import TlsSettings, secure_channel
from tests.cli.conftest import Cli
from tests.harness import Suite

GRPCURL = Path(sys.executable).parent / "grpcurl"


async def test_the_dev_certificates_pass_the_start_checks(tmp_path: Path) -> None:
    services, people = write_dev_tls(tmp_path / "tls")
    for service in ("org", "migration", "verification", "pattern"):
        assert settings.problems(service, services) == []
    assert settings.problems("org", people) == []
    assert (tmp_path / "tls" / "server.key").stat().st_mode & 0o077 == 0


async def test_the_dev_stack_runs_over_mutual_tls_and_its_clients_reach_it(
    suite: Suite, tmp_path: Path
) -> None:
    services, people = write_dev_tls(tmp_path / "tls")
    suite.env.update(services)
    await suite.start("migration")  # and org: the plan, the revocation feed, the audit relay
    env = {
        "SENSEI_CLI_HOME": str(tmp_path / "cli-home"),
        **{f"SENSEI_{s.upper()}_ADDR": suite.address(s) for s in suite.running},
        **people,  # what .sensei/dev.env gets
    }
    cli = Cli(suite, tmp_path / "cli-home", await suite.owner(), suite.owner_api_key, env)
    await cli.login()
    created = await cli.run("migrations", "create", "dev over mTLS")
    assert created.code == 0, created.err

    tls = TlsSettings.from_env(people)
    assert tls is not None
    async with secure_channel(suite.address("org"), tls) as channel:
        await channel.channel_ready()

    command = f"{shlex.quote(str(GRPCURL))} {grpcurl_flags(people)} {suite.address('org')} list"
    process = await asyncio.create_subprocess_shell(
        command, cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    assert "sensei.org.v1.AuthService" in out.decode()
