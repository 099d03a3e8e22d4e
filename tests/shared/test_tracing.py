"""OpenTelemetry tracing (shared/tracing.py): one trace across services and the database,
queued work (audit outbox, verification jobs) linked to the request that queued it, trace
ids in log lines. Spans are collected in memory; services, channels and PostgreSQL are real.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Any

import asyncpg
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from sensei.migration.v1 import migration_pb2, migration_pb2_grpc
from sensei.verification.v1 import verification_pb2
from services.verification import store as verification_store
from services.verification.domain import NewVerification, VerificationType, new_id
from shared import client, outbox, tracing
from shared.db import create_pool
from shared.logs import JsonFormatter
from shared.relay import OutboxEvent, OutboxRelay
from tests.harness import Suite
from tests.verification.conftest import start_stack

ORG = "6f1c1e52-7a0e-4c4e-9a10-0000000000aa"


@pytest.fixture(scope="session")
def provider() -> tuple[TracerProvider, InMemorySpanExporter]:
    """One provider per process (OpenTelemetry sets it once), exporting to memory."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


@pytest.fixture
def spans(provider: tuple[TracerProvider, InMemorySpanExporter]) -> Iterator[InMemorySpanExporter]:
    """Tracing on for this test: what it started records spans into the exporter."""
    tracing.install(provider[0])
    try:
        yield provider[1]
    finally:
        tracing.uninstall()
        provider[1].clear()


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on the migration schema of a fresh database (no service, so no relay)."""
    opened = await create_pool(database_url, "migration")
    try:
        yield opened
    finally:
        await opened.close()


def _names(span: trace.Span, traceparent: str | None) -> bool:
    """Whether a W3C traceparent names `span` (version 00; flags aside)."""
    context = span.get_span_context()
    return (traceparent or "").startswith(f"00-{context.trace_id:032x}-{context.span_id:016x}-")


def _server_of(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> str:
    """The gRPC service of the nearest server span above `span` ("" when none)."""
    current: ReadableSpan | None = span
    while current is not None:
        if current.kind == trace.SpanKind.SERVER:
            return str((current.attributes or {}).get("rpc.service", ""))
        parent = current.parent
        current = by_id.get(parent.span_id) if parent is not None else None
    return ""


async def test_one_trace_spans_two_services_and_their_sql(
    suite: Suite, spans: InMemorySpanExporter
) -> None:
    await suite.start("migration")
    owner = await suite.owner()
    channel = client.channel(suite.address("migration"))
    tracer = trace.get_tracer("tests")
    try:
        with tracer.start_as_current_span("caller") as caller:
            await migration_pb2_grpc.MigrationServiceStub(channel).CreateMigration(
                migration_pb2.CreateMigrationRequest(
                    parent=f"organizations/{suite.org_id}",
                    request_id=str(uuid.uuid4()),
                    migration=migration_pb2.Migration(display_name="traced"),
                ),
                metadata=owner.metadata,
                timeout=10,
            )
    finally:
        await channel.close()

    trace_id = caller.get_span_context().trace_id
    ours = [span for span in spans.get_finished_spans() if span.context.trace_id == trace_id]
    by_id = {span.context.span_id: span for span in ours}
    servers = {
        str((span.attributes or {}).get("rpc.method"))
        for span in ours
        if span.kind == trace.SpanKind.SERVER
    }
    assert {"CreateMigration", "GetOrganization"} <= servers
    sql_by_service = {
        _server_of(span, by_id)
        for span in ours
        if (span.attributes or {}).get("db.system") == "postgresql"
    }
    assert {"sensei.migration.v1.MigrationService", "sensei.org.v1.OrganizationService"} <= (
        sql_by_service
    )


async def test_the_relay_links_its_delivery_to_the_request_that_recorded_the_event(
    pool: asyncpg.Pool, database_url: str, spans: InMemorySpanExporter
) -> None:
    tracer = trace.get_tracer("tests")
    with tracer.start_as_current_span("request") as request:
        async with pool.acquire() as conn, conn.transaction():
            await outbox.record(
                conn,
                action="migration.create",
                resource_type="migration",
                resource_id=str(uuid.uuid4()),
                org_id=ORG,
                actor="serviceAccounts/test",
            )
    delivered: list[tuple[Sequence[OutboxEvent], Any]] = []

    async def deliver(events: Sequence[OutboxEvent]) -> None:
        delivered.append((events, trace.get_current_span().get_span_context()))

    relay = OutboxRelay(pool, database_url, deliver, service="migration")
    assert await relay.relay_once() == 1

    [(events, delivering)] = delivered
    assert [_names(request, event.traceparent) for event in events] == [True]
    # (Relays of services a previous test stopped may still finish a delivery meanwhile.)
    [relayed] = [
        span
        for span in spans.get_finished_spans()
        if span.name == "audit relay delivery" and span.context.span_id == delivering.span_id
    ]  # the AppendAuditEvents call's parent
    assert relayed.context.trace_id != request.get_span_context().trace_id
    assert [link.context.span_id for link in relayed.links] == [request.get_span_context().span_id]


async def test_a_job_keeps_the_traceparent_of_the_request_that_queued_it(
    database_url: str, spans: InMemorySpanExporter
) -> None:
    conn = await asyncpg.connect(database_url, server_settings={"search_path": "verification"})
    tracer = trace.get_tracer("tests")
    try:
        with tracer.start_as_current_span("CreateVerification") as request:
            new = NewVerification(ORG, str(uuid.uuid4()), VerificationType.ROW_COUNT, ())
            async with conn.transaction():
                created = await verification_store.insert_verification(
                    conn, new_id(), new, "users/test"
                )
                await verification_store.enqueue_job(conn, created.id)
        lease = await verification_store.claim_next_job(conn, "worker-1", 30)
    finally:
        await conn.close()

    assert lease is not None
    assert _names(request, lease.traceparent)
    with tracing.linked_span("verification job", [lease.traceparent]):
        job = trace.get_current_span().get_span_context()
    [span] = [span for span in spans.get_finished_spans() if span.name == "verification job"]
    assert span.context.span_id == job.span_id
    assert [link.context.trace_id for link in span.links] == [request.get_span_context().trace_id]


def test_log_lines_carry_the_trace_and_span_ids(spans: InMemorySpanExporter) -> None:
    record = logging.LogRecord("tests", logging.INFO, __file__, 0, "hello", (), None)
    with trace.get_tracer("tests").start_as_current_span("call") as span:
        line = json.loads(JsonFormatter("migration").format(record))
    context = span.get_span_context()
    assert line["trace_id"] == f"{context.trace_id:032x}"
    assert line["span_id"] == f"{context.span_id:016x}"
    assert "trace_id" not in json.loads(JsonFormatter("migration").format(record))


def test_tracing_stays_off_without_an_otlp_endpoint() -> None:
    assert tracing.configure("migration", environ={}) is False
    assert tracing.server_interceptors() == []
    assert tracing.client_interceptors() == []
    assert tracing.current_traceparent() is None


async def test_a_workers_job_span_links_to_the_create_verification_call(
    suite: Suite,
    make_sample_database: Callable[[], Awaitable[str]],
    spans: InMemorySpanExporter,
) -> None:
    stack = await start_stack(suite, make_sample_database)
    created = await stack.create(verification_pb2.VERIFICATION_TYPE_ROW_COUNT)
    finished = await stack.finished(created.name)
    assert finished.status == verification_pb2.VERIFICATION_STATUS_PASSED

    done = spans.get_finished_spans()
    [create] = [
        span
        for span in done
        if span.kind == trace.SpanKind.SERVER
        and (span.attributes or {}).get("rpc.method") == "CreateVerification"
    ]
    jobs = [
        span
        for span in done
        if span.name == "verification job"
        and (span.attributes or {}).get("sensei.verification.id") == created.id
    ]
    assert jobs  # the real worker ran it inside its job span
    for job in jobs:
        assert job.context.trace_id != create.context.trace_id  # its own trace
        assert [link.context.span_id for link in job.links] == [create.context.span_id]
