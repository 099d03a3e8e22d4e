"""Prometheus metrics: scraped over HTTP from services started in-process."""

from __future__ import annotations

import asyncio
import urllib.request
import uuid

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from sensei.migration.v1 import migration_pb2, migration_pb2_grpc
from sensei.org.v1 import organization_pb2, organization_pb2_grpc
from shared.metrics import ServiceMetrics, default_port
from tests.harness import Suite

EPHEMERAL = {
    f"SENSEI_{name.upper()}_METRICS_PORT": "0"
    for name in ("org", "migration", "verification", "pattern")
}
ORG_SERVICE = "sensei.org.v1.OrganizationService"
MIGRATION_SERVICE = "sensei.migration.v1.MigrationService"


async def scrape(port: int) -> str:
    """The text of `/metrics` on a local port."""

    def get() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            body: bytes = response.read()
            return body.decode()

    return await asyncio.to_thread(get)


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of the sample `name` whose labels include `labels` (None if absent)."""
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and labels.items() <= s.labels.items():
                return float(s.value)
    return None


def handled(text: str, service: str, method: str, code: str) -> float | None:
    return sample(
        text, "grpc_server_handled_total", grpc_service=service, grpc_method=method, grpc_code=code
    )


async def test_calls_are_counted_and_timed_by_method_and_status_code(suite: Suite) -> None:
    await suite.start("org", env=EPHEMERAL)
    owner = await suite.owner()
    orgs = suite.stub("org", organization_pb2_grpc.OrganizationServiceStub)
    request = organization_pb2.GetOrganizationRequest(name=owner.org_name)
    await orgs.GetOrganization(request, metadata=owner.metadata)
    await orgs.GetOrganization(request, metadata=owner.metadata)
    other = organization_pb2.GetOrganizationRequest(name=f"organizations/{uuid.uuid4()}")
    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await orgs.GetOrganization(other, metadata=owner.metadata)
    with pytest.raises(grpc.aio.AioRpcError) as anonymous:
        await orgs.GetOrganization(request)

    text = await scrape(suite.running["org"].metrics_port)

    assert handled(text, ORG_SERVICE, "GetOrganization", "OK") == 2
    assert handled(text, ORG_SERVICE, "GetOrganization", denied.value.code().name) == 1
    assert handled(text, ORG_SERVICE, "GetOrganization", "UNAUTHENTICATED") == 1
    assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert (
        sample(
            text,
            "grpc_server_handling_seconds_count",
            grpc_type="unary",
            grpc_method="GetOrganization",
            grpc_code="OK",
        )
        == 2
    )
    # Methods not called yet are there at zero, so rates exist from the start.
    assert handled(text, ORG_SERVICE, "DeleteOrganization", "OK") == 0


async def test_streams_are_counted_with_the_code_they_end_with(suite: Suite) -> None:
    await suite.start("migration", env=EPHEMERAL)
    owner = await suite.owner()
    migrations = suite.stub("migration", migration_pb2_grpc.MigrationServiceStub)
    created = await migrations.CreateMigration(
        migration_pb2.CreateMigrationRequest(
            parent=owner.org_name, migration=migration_pb2.Migration(display_name="metrics")
        ),
        metadata=owner.metadata,
    )
    request = migration_pb2.WatchMigrationRequest(name=created.migration.name)
    with pytest.raises(grpc.aio.AioRpcError):
        async for _ in migrations.WatchMigration(request):
            pass
    watch = migrations.WatchMigration(request, metadata=owner.metadata)
    await asyncio.wait_for(watch.read(), 10)  # the snapshot: the stream is being served
    watch.cancel()

    port = suite.running["migration"].metrics_port
    labels = {"grpc_service": MIGRATION_SERVICE, "grpc_method": "WatchMigration"}
    text = await scrape(port)
    assert (
        sample(
            text,
            "grpc_server_handled_total",
            grpc_type="server_stream",
            grpc_code="UNAUTHENTICATED",
            **labels,
        )
        == 1
    )
    # The server learns of the cancellation asynchronously.
    deadline = asyncio.get_running_loop().time() + 10
    while sample(text, "grpc_server_handled_total", grpc_code="CANCELLED", **labels) != 1:
        assert asyncio.get_running_loop().time() < deadline, "cancelled stream not counted"
        await asyncio.sleep(0.05)
        text = await scrape(port)


async def test_pool_and_outbox_are_exported_per_service(suite: Suite) -> None:
    await suite.start("org", "migration", env=EPHEMERAL)
    org_port = suite.running["org"].metrics_port
    migration_port = suite.running["migration"].metrics_port
    assert org_port != migration_port
    org_text, migration_text = await scrape(org_port), await scrape(migration_port)

    for text in (org_text, migration_text):
        assert (sample(text, "sensei_db_pool_max_connections") or 0) >= 1
        assert (sample(text, "sensei_db_pool_connections") or 0) >= 1
        assert sample(text, "sensei_db_pool_idle_connections") is not None
        assert sample(text, "sensei_audit_outbox_backlog") is not None
        assert sample(text, "sensei_audit_events_relayed_total") is not None
    # Each service has its own registry: no method of one shows in the other's.
    assert f'grpc_service="{MIGRATION_SERVICE}"' not in org_text
    assert f'grpc_service="{ORG_SERVICE}"' not in migration_text


async def test_a_service_adds_gauges_read_when_scraped() -> None:
    metrics = ServiceMetrics()
    queued = [3]

    async def queue_depth() -> int:
        await asyncio.sleep(0)
        return queued[0]

    async def broken() -> int:
        raise OSError("the database is down")

    metrics.gauge("sensei_test_jobs_queued", "Jobs waiting.", queue_depth)
    metrics.gauge("sensei_test_broken", "Never readable.", broken)
    metrics.gauge("sensei_test_constant", "A plain function.", lambda: 7)
    port = metrics.serve("127.0.0.1", 0)
    try:
        text = await scrape(port)
        assert sample(text, "sensei_test_jobs_queued") == 3
        assert sample(text, "sensei_test_constant") == 7
        assert sample(text, "sensei_test_broken") is None  # left out, the rest still served
        queued[0] = 5
        assert sample(await scrape(port), "sensei_test_jobs_queued") == 5
    finally:
        await metrics.close()
    with pytest.raises(OSError):
        await scrape(port)


def test_metrics_port_defaults_to_the_grpc_port_plus_1000() -> None:
    assert default_port(50051) == 51051
    assert default_port(0) == 0
