"""Mutual TLS between the services and towards callers (`SENSEI_TLS_*`, shared/tls.py).

The org and migration services run with TLS and client certificates required; the
suite's cross-service path (migration → org for plans, the revocation feed, the audit
relay) works over it, and callers without a certificate of the services' CA are refused
during the handshake. Certificates are made here, per test (devstack/tls.py).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from devstack.tls import Authority, issue, make_authority, write_pair
from sensei.migration.v1 import migration_pb2, migration_pb2_grpc
from sensei.org.v1 import audit_pb2, audit_pb2_grpc
from shared.tls import TlsSettings, secure_channel
from tests.harness import Suite
from tests.harness.tls import service_tls_env

# Generous bound for the relay to hand the audit event over (it is woken by NOTIFY).
AUDIT_DELIVERY_SECONDS = 20.0


@pytest.fixture
def authority() -> Authority:
    """The CA the services trust."""
    return make_authority("Sensei test CA")


@pytest.fixture
def tls_env(authority: Authority, tmp_path: Path) -> dict[str, str]:
    """Settings of a service with its own certificate, client certificates required."""
    return service_tls_env(authority, tmp_path / "tls")


async def _health(channel: grpc.aio.Channel) -> int:
    response = await health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(), timeout=5
    )
    return int(response.status)


async def test_the_cross_service_path_runs_over_mutual_tls(
    suite: Suite, tls_env: dict[str, str]
) -> None:
    suite.env.update(tls_env)
    await suite.start("org", "migration")
    owner = await suite.owner()
    member = await suite.user("MEMBER")
    migrations = migration_pb2_grpc.MigrationServiceStub(suite.channel("migration"))

    # CreateMigration asks the org service for the organization's plan.
    created = await migrations.CreateMigration(
        migration_pb2.CreateMigrationRequest(
            parent=member.org_name, migration=migration_pb2.Migration(display_name="over mTLS")
        ),
        metadata=member.metadata,
    )

    running = suite.running["migration"].context
    assert running.revocations is not None
    assert await running.revocations.wait_caught_up(5.0)  # WatchTokenRevocations
    relay = running.relay
    assert relay is not None
    deadline = asyncio.get_running_loop().time() + AUDIT_DELIVERY_SECONDS
    while await relay.pending():  # AppendAuditEvents
        assert asyncio.get_running_loop().time() < deadline, "audit event not delivered"
        await relay.relay_once()
        await asyncio.sleep(0.02)  # another batch may be in flight in the relay's own loop
    audit = audit_pb2_grpc.AuditServiceStub(suite.channel("org"))
    page = await audit.ListAuditLogs(
        audit_pb2.ListAuditLogsRequest(parent=owner.org_name, resource_type="migration"),
        metadata=owner.metadata,
    )
    assert [(e.action, e.resource_id, e.service) for e in page.audit_logs] == [
        ("migration.create", created.migration.id, "migration")
    ]


async def test_a_client_without_a_certificate_is_refused(
    suite: Suite, tls_env: dict[str, str]
) -> None:
    suite.env.update(tls_env)
    await suite.start("org")
    trusting = TlsSettings(ca_file=tls_env["SENSEI_TLS_CA_FILE"])  # trusts, shows nothing
    async with secure_channel(suite.address("org"), trusting) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await _health(channel)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert await _health(suite.channel("org")) == health_pb2.HealthCheckResponse.SERVING


async def test_a_client_with_a_certificate_of_another_ca_is_refused(
    suite: Suite, tls_env: dict[str, str], tmp_path: Path
) -> None:
    suite.env.update(tls_env)
    await suite.start("org")
    stranger = make_authority("Someone else's CA")
    cert, key = write_pair(tmp_path, "stranger", issue(stranger, "stranger", server=False))
    foreign = TlsSettings(
        ca_file=tls_env["SENSEI_TLS_CA_FILE"], client_cert_file=str(cert), client_key_file=str(key)
    )
    async with secure_channel(suite.address("org"), foreign) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await _health(channel)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_a_plaintext_client_is_refused(suite: Suite, tls_env: dict[str, str]) -> None:
    suite.env.update(tls_env)
    await suite.start("org")
    async with grpc.aio.insecure_channel(suite.address("org")) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await _health(channel)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
