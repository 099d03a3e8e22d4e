"""Fixtures of the reliability suite: all four services on a database of the module's own,
callers of every role, and helpers that read outcomes as status codes.

`stack` runs org, migration, verification and pattern once per test module (the root
`suite` fixture is per test); tests that stop, restart or break something start their own
services with the root `suite` instead.

Tests marked `soak` are long runs for `make soak`. Until `pyproject.toml` registers the
marker and deselects it by default (`addopts = ... -m "not soak"`), this conftest does both,
so `make test` never runs them.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from sensei.org.v1 import audit_pb2, audit_pb2_grpc
from tests.conftest import Cluster, sample_env
from tests.harness import ALL_SERVICES, Identity, Suite

T = TypeVar("T")

# A small message limit keeps "bigger than the limit" requests cheap to build and send.
MAX_MESSAGE_BYTES = 256 * 1024
STACK_ENV: dict[str, str] = {
    "SENSEI_MAX_MESSAGE_BYTES": str(MAX_MESSAGE_BYTES),
    # The plan of an organization survives an org outage (docs/architecture.md#who-calls-whom).
    "SENSEI_MIGRATION_PLAN_CACHE_SECONDS": "600",
    "SENSEI_PATTERN_INDEXER_POLL_SECONDS": "0.5",
    "SENSEI_PATTERN_INDEXER_MAX_BACKOFF_SECONDS": "0.3",
    "SENSEI_VERIFICATION_POLL_SECONDS": "0.2",
    "SENSEI_VERIFICATION_CONNECT_TIMEOUT_SECONDS": "2",
}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "soak: long reliability runs, only with `make soak` (pytest -m soak)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Until pyproject's addopts says `-m "not soak"`: no marker expression means no soak.
    if config.option.markexpr:
        return
    soak = [item for item in items if item.get_closest_marker("soak") is not None]
    if soak:
        config.hook.pytest_deselected(items=soak)
        items[:] = [item for item in items if item.get_closest_marker("soak") is None]


class Stack:
    """Running services of the four kinds and callers of every role.

    A plain class, not a dataclass: hypothesis prints test arguments, and a short repr
    keeps failure reports readable (no tokens).
    """

    def __init__(self, suite: Suite, people: Mapping[str, Identity]) -> None:
        self.suite = suite
        self.owner = people["OWNER"]
        self.admin = people["ADMIN"]
        self.member = people["MEMBER"]
        self.viewer = people["VIEWER"]
        self.service = people["SERVICE"]

    def __repr__(self) -> str:
        return f"Stack(org {self.owner.org_id}, services {sorted(self.suite.running)})"

    def channel(self, service: str) -> grpc.aio.Channel:
        """The (cached) channel to a running service."""
        return self.suite.channel(service)

    def stub(self, service: str, stub_class: type[T]) -> T:
        """A generated stub on a channel to `service`."""
        stub: T = self.suite.stub(service, stub_class)
        return stub

    async def db(self, schema: str) -> asyncpg.Connection:
        """A connection to the stack's database with `schema` first on the search path."""
        return await asyncpg.connect(
            self.suite.database_url, server_settings={"search_path": schema}
        )

    async def fetchval(self, schema: str, sql: str, *args: Any) -> Any:
        """The single value a query in `schema` returns."""
        conn = await self.db(schema)
        try:
            return await conn.fetchval(sql, *args)
        finally:
            await conn.close()


async def identities(suite: Suite) -> dict[str, Identity]:
    """The bootstrap owner, a new admin, member and viewer, and the service account."""
    return {
        "OWNER": await suite.owner(),
        "ADMIN": await suite.user("ADMIN"),
        "MEMBER": await suite.user("MEMBER"),
        "VIEWER": await suite.user("VIEWER"),
        "SERVICE": await suite.service(),
    }


async def start_stack(suite: Suite, env: Mapping[str, str] | None = None) -> Stack:
    """Starts all four services of `suite` and makes callers of every role."""
    await suite.start(*ALL_SERVICES, env={**STACK_ENV, **(env or {})})
    return Stack(suite, await identities(suite))


@pytest.fixture(scope="module")
async def stack(
    postgres: Cluster,
    template_database: str,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> AsyncIterator[Stack]:
    """All four services, shared by the tests of one module, on a database of their own."""
    name = f"sensei_rel_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(postgres.dsn("postgres"))
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
        suite = Suite(
            postgres.dsn(name),
            Path(tmp_path_factory.mktemp("reliability")),
            sample_env(request),
        )
        try:
            yield await start_stack(suite)
        finally:
            await suite.close()
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def code_of(call: Awaitable[Any]) -> grpc.StatusCode:
    """The status code an RPC ends with (OK when it succeeds)."""
    try:
        await call
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


async def stream_code(stream: Any, *, first_only: bool = True) -> grpc.StatusCode:
    """The status a server stream ends with; OK once it sent a first message (`first_only`)."""
    try:
        async for _ in stream:
            if first_only:
                stream.cancel()
                return grpc.StatusCode.OK
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


async def health_status(address: str, service: str = "") -> int:
    """The health status (`HealthCheckResponse.ServingStatus`) a server reports."""
    async with grpc.aio.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        response = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        return int(response.status)


async def eventually(
    check: Callable[[], Awaitable[bool]], *, seconds: float = 20.0, every: float = 0.05
) -> None:
    """Waits until `check()` is true (fails the test after `seconds`)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"not true after {seconds} s: {check.__name__}")
        await asyncio.sleep(every)


SERVING = health_pb2.HealthCheckResponse.SERVING


async def audit_drained(suite: Suite) -> bool:
    """Whether every running service's audit outbox is empty."""
    for running in suite.running.values():
        relay = running.context.relay
        if relay is not None and await relay.pending():
            return False
    return True


async def audit_entries(suite: Suite, owner: Identity) -> list[audit_pb2.AuditLog]:
    """Every audit entry of the owner's organization, page by page."""
    audit = audit_pb2_grpc.AuditServiceStub(suite.channel("org"))
    entries: list[audit_pb2.AuditLog] = []
    token = ""
    while True:
        page = await audit.ListAuditLogs(
            audit_pb2.ListAuditLogsRequest(parent=owner.org_name, page_size=200, page_token=token),
            metadata=owner.metadata,
        )
        entries.extend(page.audit_logs)
        token = page.next_page_token
        if not token:
            return entries


def report_figures(name: str, **figures: Any) -> None:
    """Appends a test's figures to $SENSEI_RELIABILITY_REPORT (JSON lines), when set.

    RELIABILITY.md quotes them; `make soak` sets the variable.
    """
    target = os.environ.get("SENSEI_RELIABILITY_REPORT")
    if target:
        with open(target, "a", encoding="utf-8") as out:
            out.write(json.dumps({"test": name, **figures}) + "\n")
