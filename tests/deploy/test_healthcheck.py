"""`python -m shared.healthcheck`, the health check of the compose containers."""

from __future__ import annotations

import asyncio
import sys

from devstack.postgres import free_port
from tests.harness import Suite


async def healthcheck(*args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "shared.healthcheck",
        *args,
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
