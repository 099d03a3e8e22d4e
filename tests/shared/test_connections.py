"""Connection hygiene of the gRPC and metrics servers, attacked over real sockets.

Half-open connections (a partial HTTP/2 preface, a byte at a time) are closed after the
handshake timeout while normal calls keep being served; idle connections get closed; the
process holds no more connections than its cap; the metrics endpoint bounds its threads.
Deadlines here are upper bounds to poll against, never expected durations.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import urllib.request

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from shared import config as config_module
from shared.server import server_options
from tests.harness import Suite

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
HALF_OPEN = 500
# Upper bound for the server to close what it must close (generous: 2 shared cores).
CLOSE_DEADLINE_SECONDS = 60.0


async def _half_open(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(PREFACE[:3])
    await writer.drain()
    return reader, writer


async def _closed_by_server(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, trickle: bool
) -> None:
    """Returns once the server closed the connection; trickles the preface meanwhile."""
    sent = 3
    try:
        while True:
            if trickle and sent < len(PREFACE) - 1:  # never the whole preface
                writer.write(PREFACE[sent : sent + 1])
                sent += 1
                await writer.drain()
            with contextlib.suppress(TimeoutError):
                if await asyncio.wait_for(reader.read(4096), 0.5) == b"":
                    return
    except (ConnectionError, OSError):
        return
    finally:
        writer.close()


async def _serving(suite: Suite) -> None:
    health = health_pb2_grpc.HealthStub(suite.channel("org"))
    response = await health.Check(health_pb2.HealthCheckRequest(), timeout=10)
    assert response.status == health_pb2.HealthCheckResponse.SERVING
    # A real API call too: token exchange reads the database.
    assert await suite.exchange(suite.owner_api_key)


async def test_half_open_connections_are_closed_after_the_handshake_timeout(
    suite: Suite,
) -> None:
    await suite.start("org", env={"SENSEI_HANDSHAKE_TIMEOUT_SECONDS": "1"})
    await _serving(suite)  # the test's own channel is connected before the attack
    port = suite.running["org"].port
    connections = [await _half_open(port) for _ in range(HALF_OPEN)]
    closing = [asyncio.create_task(_closed_by_server(r, w, trickle=True)) for r, w in connections]
    # Meanwhile the server keeps answering real calls.
    for _ in range(3):
        await _serving(suite)
    _, pending = await asyncio.wait(closing, timeout=CLOSE_DEADLINE_SECONDS)
    for task in pending:
        task.cancel()
    assert not pending, f"{len(pending)} of {HALF_OPEN} half-open connections still open"
    await _serving(suite)


async def test_an_idle_connection_is_closed_after_the_idle_limit(suite: Suite) -> None:
    await suite.start("org", env={"SENSEI_CONNECTION_IDLE_SECONDS": "1"})
    async with grpc.aio.insecure_channel(suite.address("org")) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        await health.Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert channel.get_state() == grpc.ChannelConnectivity.READY
        # The client's own idle timer is 30 minutes: leaving READY sooner is the server's GOAWAY.
        async with asyncio.timeout(CLOSE_DEADLINE_SECONDS):
            while channel.get_state() == grpc.ChannelConnectivity.READY:
                await channel.wait_for_state_change(grpc.ChannelConnectivity.READY)
        # The channel reconnects on the next call.
        await health.Check(health_pb2.HealthCheckRequest(), timeout=10)


async def test_connections_beyond_the_cap_are_closed_at_once(suite: Suite) -> None:
    cap = 4
    # A handshake timeout far beyond the deadline: a closure within it is the cap's doing.
    await suite.start(
        "org",
        env={"SENSEI_MAX_CONNECTIONS": str(cap), "SENSEI_HANDSHAKE_TIMEOUT_SECONDS": "600"},
    )
    port = suite.running["org"].port
    connections = [await _half_open(port) for _ in range(cap + 1)]
    closing = [asyncio.create_task(_closed_by_server(r, w, trickle=False)) for r, w in connections]
    done, _ = await asyncio.wait(
        closing, timeout=CLOSE_DEADLINE_SECONDS, return_when=asyncio.FIRST_COMPLETED
    )
    assert done, "no connection beyond the cap was closed"
    for task in closing:
        task.cancel()
    await asyncio.gather(*closing, return_exceptions=True)
    # Once the attackers are gone, callers get in again.
    async with grpc.aio.insecure_channel(suite.address("org")) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        response = await health.Check(
            health_pb2.HealthCheckRequest(), timeout=CLOSE_DEADLINE_SECONDS, wait_for_ready=True
        )
        assert response.status == health_pb2.HealthCheckResponse.SERVING


# --- the metrics endpoint -------------------------------------------------------------------


async def _scrape(port: int) -> str:
    def get() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            body: bytes = response.read()
            return body.decode()

    return await asyncio.to_thread(get)


@pytest.mark.skipif(shutil.which("ss") is None, reason="needs `ss` to read the listen backlog")
async def test_the_metrics_port_listens_with_the_configured_backlog(suite: Suite) -> None:
    await suite.start("org", env={"SENSEI_METRICS_BACKLOG": "512"})
    port = suite.running["org"].metrics_port
    process = await asyncio.create_subprocess_exec(
        "ss", "-ltnH", f"sport = :{port}", stdout=asyncio.subprocess.PIPE
    )
    stdout, _ = await process.communicate()
    listing = stdout.decode().split()
    # State, Recv-Q, Send-Q (the backlog of a listening socket), local address, peer.
    assert listing[0] == "LISTEN" and listing[2] == "512", listing


async def test_idle_metrics_connections_are_closed_and_bounded(suite: Suite) -> None:
    await suite.start(
        "org",
        env={"SENSEI_METRICS_TIMEOUT_SECONDS": "1", "SENSEI_METRICS_MAX_CONNECTIONS": "2"},
    )
    port = suite.running["org"].metrics_port
    # Two silent connections take both slots; a third is closed at once, not given a thread.
    silent = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
    closing = [asyncio.create_task(_closed_by_server(r, w, trickle=False)) for r, w in silent]
    _, pending = await asyncio.wait(closing, timeout=CLOSE_DEADLINE_SECONDS)
    for task in pending:
        task.cancel()
    assert not pending, "silent metrics connections were kept open"
    assert "grpc_server_handled_total" in await _scrape(port)


# --- the settings ---------------------------------------------------------------------------


def test_connection_settings_become_grpc_channel_arguments() -> None:
    config = config_module.load(
        "org",
        {
            "SENSEI_DATABASE_URL": "postgresql://unused",
            "SENSEI_HANDSHAKE_TIMEOUT_SECONDS": "2.5",
            "SENSEI_CONNECTION_IDLE_SECONDS": "0",
            "SENSEI_MAX_CONNECTIONS": "10",
        },
    )
    options = dict(server_options(config))
    assert options["grpc.server_handshake_timeout_ms"] == 2500
    assert options["grpc.max_connection_idle_ms"] == 2**31 - 1  # 0: no limit
    assert options["grpc.max_connection_age_ms"] == 1_800_000
    assert options["grpc.max_connection_age_grace_ms"] == 300_000
    assert options["grpc.max_allowed_incoming_connections"] == 10
    assert options["grpc.max_concurrent_streams"] == 256


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SENSEI_HANDSHAKE_TIMEOUT_SECONDS", "0"),
        ("SENSEI_CONNECTION_IDLE_SECONDS", "-1"),
        ("SENSEI_CONNECTION_MAX_AGE_SECONDS", "soon"),
        ("SENSEI_MAX_CONNECTIONS", "0"),
        ("SENSEI_METRICS_BACKLOG", "-5"),
        ("SENSEI_METRICS_TIMEOUT_SECONDS", "0"),
    ],
)
def test_a_bad_connection_setting_is_a_config_error(name: str, value: str) -> None:
    with pytest.raises(config_module.ConfigError, match=name):
        config_module.load("org", {"SENSEI_DATABASE_URL": "postgresql://unused", name: value})
