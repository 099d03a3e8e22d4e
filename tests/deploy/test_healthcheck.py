"""`python -m shared.healthcheck`, the health check of the compose containers."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from devstack.postgres import free_port
from devstack.tls import make_authority
from tests.harness import Suite
from tests.harness.tls import service_tls_env


async def healthcheck(*args: str, env: Mapping[str, str] | None = None) -> tuple[int, str]:
    plain = {k: v for k, v in os.environ.items() if not k.startswith("SENSEI_TLS_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "shared.healthcheck",
        *args,
        env={**plain, **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode()


async def test_serving_server_passes_overall_and_per_service(suite: Suite) -> None:
    await suite.start("org")
    address = suite.address("org")
    assert (await healthcheck(address))[0] == 0
    status, out = await healthcheck(address, "sensei.org.v1.UserService")
    assert status == 0
    assert "SERVING" in out


async def test_unknown_service_and_unreachable_server_fail(suite: Suite) -> None:
    await suite.start("org")
    assert (await healthcheck(suite.address("org"), "no.such.Service"))[0] == 1
    status, out = await healthcheck(f"127.0.0.1:{free_port()}", "--timeout", "1")
    assert status == 1
    assert "UNAVAILABLE" in out or "DEADLINE_EXCEEDED" in out


async def test_draining_server_fails(suite: Suite) -> None:
    await suite.start("org")
    await suite.running["org"].health.enter_graceful_shutdown()
    assert (await healthcheck(suite.address("org")))[0] == 1


async def test_a_mutual_tls_server_passes_with_the_containers_tls_settings(
    suite: Suite, tmp_path: Path
) -> None:
    tls_env = service_tls_env(make_authority(), tmp_path / "tls")
    suite.env.update(tls_env)
    await suite.start("org")
    address = suite.address("org")
    assert (await healthcheck(address, env=tls_env))[0] == 0  # as compose runs it
    flags = ["--tls-ca", tls_env["SENSEI_TLS_CA_FILE"], "--tls-cert"]
    flags += [tls_env["SENSEI_TLS_CERT_FILE"], "--tls-key", tls_env["SENSEI_TLS_KEY_FILE"]]
    assert (await healthcheck(address, *flags))[0] == 0
    status, out = await healthcheck(address, "--timeout", "2")  # plaintext: refused
    assert status == 1
    assert "UNAVAILABLE" in out
