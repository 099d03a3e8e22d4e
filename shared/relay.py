"""Delivers recorded audit events from a service's outbox to the org service.

One relay runs in every service process. It wakes on a NOTIFY from `shared.outbox.record`
(or every `poll_seconds`), locks the oldest pending events with `FOR UPDATE SKIP LOCKED`
(replicas share the work), delivers them as one batch, and deletes them in the same
transaction. When delivery fails (org service down), the transaction rolls back, the
events stay, and the relay retries with exponential backoff. The org service stores each
event id once, so a crash between delivery and delete cannot duplicate anything.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import grpc

from sensei.org.v1 import audit_pb2, audit_pb2_grpc
from shared import client, protoconv, tracing
from shared.credentials import ServiceCredentials
from shared.db import DATABASE_ERRORS, Connection
from shared.errors import DomainError, InvalidArgument
from shared.listen import Listener, wait_woken
from shared.outbox import NOTIFY_CHANNEL

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutboxEvent:
    """One pending event as stored in the outbox."""

    event_id: str
    org_id: str
    user_id: str | None
    actor: str
    action: str
    resource_type: str
    resource_id: str
    ip_address: str
    details: dict[str, Any]
    occurred_at: datetime
    service: str
    # The request that recorded it (W3C traceparent), when tracing was on.
    traceparent: str | None = None

    def to_proto(self) -> audit_pb2.AuditEvent:
        """The AuditEvent message of this event."""
        return audit_pb2.AuditEvent(
            event_id=self.event_id,
            org_id=self.org_id,
            user_id=self.user_id or "",
            actor=self.actor,
            action=self.action,
            resource_type=self.resource_type,
            resource_id=self.resource_id,
            ip_address=self.ip_address,
            occur_time=protoconv.timestamp(self.occurred_at),
            service=self.service,
            details=protoconv.struct_of(self.details),
        )


Deliver = Callable[[Sequence[OutboxEvent]], Awaitable[None]]


def grpc_delivery(
    org_address: str, credentials: ServiceCredentials
) -> tuple[Deliver, Callable[[], Awaitable[None]]]:
    """A deliverer that calls `AuditService.AppendAuditEvents`, and its closer."""
    channel = client.channel(org_address)
    stub = audit_pb2_grpc.AuditServiceStub(channel)

    async def deliver(events: Sequence[OutboxEvent]) -> None:
        await stub.AppendAuditEvents(
            audit_pb2.AppendAuditEventsRequest(events=[event.to_proto() for event in events]),
            metadata=await credentials.metadata(),
            timeout=10,
        )

    return deliver, channel.close


class OutboxRelay:
    """The delivery loop of one service's outbox."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        dsn: str,
        deliver: Deliver,
        *,
        service: str,
        batch_size: int = 500,
        poll_seconds: float = 2.0,
        max_backoff_seconds: float = 5.0,
    ) -> None:
        self._pool = pool
        self._dsn = dsn
        self._deliver = deliver
        self._service = service
        self._batch_size = batch_size
        self._poll_seconds = poll_seconds
        self._max_backoff = max_backoff_seconds
        self._wake = asyncio.Event()
        self.delivered = 0
        self.dead = 0

    async def run(self) -> None:
        """Relays until cancelled."""
        listener = Listener(
            self._dsn,
            {NOTIFY_CHANNEL: lambda _: self._wake.set()},
            on_reconnect=self._wake.set,
            application_name=f"sensei-{self._service}-audit-relay",
            max_backoff_seconds=self._max_backoff,
        )
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(listener.run(), name=f"{self._service}-audit-relay-listener")
            await self._relay_forever()

    async def _relay_forever(self) -> None:
        backoff = 0.05
        while True:
            try:
                sent = await self.relay_once()
                backoff = 0.05
            except (*DATABASE_ERRORS, grpc.aio.AioRpcError, DomainError) as exc:
                log.warning("audit relay: delivery failed, retrying in %.2fs: %s", backoff, exc)
                await self._sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff)
                continue
            if sent < self._batch_size:
                await self._sleep(self._poll_seconds)

    async def relay_once(self) -> int:
        """Delivers one batch of pending events; returns how many."""
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "SELECT position, event_id::text, org_id::text, user_id::text, actor, action,"
                " resource_type, resource_id, ip_address, details::text, occurred_at, traceparent"
                " FROM audit_outbox WHERE dead_at IS NULL"
                " ORDER BY position LIMIT $1 FOR UPDATE SKIP LOCKED",
                self._batch_size,
            )
            if not rows:
                return 0
            events = [
                OutboxEvent(
                    event_id=row["event_id"],
                    org_id=row["org_id"],
                    user_id=row["user_id"],
                    actor=row["actor"],
                    action=row["action"],
                    resource_type=row["resource_type"],
                    resource_id=row["resource_id"],
                    ip_address=row["ip_address"],
                    details=json.loads(row["details"]),
                    occurred_at=row["occurred_at"],
                    service=self._service,
                    traceparent=row["traceparent"],
                )
                for row in rows
            ]
            positions = [row["position"] for row in rows]
            with tracing.linked_span(
                "audit relay delivery",
                (event.traceparent for event in events),
                {"sensei.audit.events": len(events)},
            ):
                try:
                    await self._deliver(events)
                    delivered = positions
                except Exception as exc:
                    if not _rejected(exc):
                        raise
                    delivered = await self._deliver_one_by_one(conn, events, positions)
            await conn.execute(
                "DELETE FROM audit_outbox WHERE position = ANY($1::bigint[])", delivered
            )
        self.delivered += len(delivered)
        return len(events)

    async def _deliver_one_by_one(
        self, conn: Connection, events: Sequence[OutboxEvent], positions: Sequence[int]
    ) -> list[int]:
        # The batch was refused as invalid: find the culprits, deliver the rest.
        delivered: list[int] = []
        for event, position in zip(events, positions, strict=True):
            try:
                await self._deliver([event])
            except Exception as exc:
                if not _rejected(exc):
                    raise
                log.error("audit relay: event %s refused, set aside: %s", event.event_id, exc)
                await conn.execute(
                    "UPDATE audit_outbox SET dead_at = now(), attempts = attempts + 1,"
                    " last_error = $2 WHERE position = $1",
                    position,
                    str(exc)[:2000],
                )
                self.dead += 1
                continue
            delivered.append(position)
        return delivered

    async def pending(self) -> int:
        """How many events wait in the outbox."""
        async with self._pool.acquire() as conn:
            count: int = await conn.fetchval(
                "SELECT count(*) FROM audit_outbox WHERE dead_at IS NULL"
            )
            return count

    async def _sleep(self, seconds: float) -> None:
        await wait_woken(self._wake, seconds)
        self._wake.clear()


def _rejected(exc: BaseException) -> bool:
    """Whether the audit log refused the events themselves (retrying cannot help)."""
    if isinstance(exc, InvalidArgument):
        return True
    return isinstance(exc, grpc.aio.AioRpcError) and exc.code() == grpc.StatusCode.INVALID_ARGUMENT
