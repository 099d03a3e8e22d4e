"""The gRPC side of the load generator: request sources and the driver that sends them."""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import Sequence
from typing import Any, Protocol

import grpc
from google.protobuf import struct_pb2, timestamp_pb2

from benchmarks.workload import Prepared, Workload
from sensei.org.v1 import audit_pb2

# Several channels: so_reuseport spreads connections, not calls, over processes.
_CHANNEL_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.use_local_subchannel_pool", 1),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
]


class RequestSource(Protocol):
    """Serialized requests for a gRPC workload."""

    def next(self, worker: int) -> Prepared:
        """The next request of `worker`."""
        ...


class FixedRequests:
    """Cycles through pre-serialized payloads (each worker from its own offset)."""

    def __init__(self, payloads: Sequence[bytes], labels: Sequence[str] = ()) -> None:
        if not payloads:
            raise ValueError("fixed requests need at least one payload")
        self._payloads = list(payloads)
        self._labels = list(labels) or [""] * len(self._payloads)
        self._positions: dict[int, int] = {}

    def next(self, worker: int) -> Prepared:
        position = self._positions.get(worker, worker * 7919) % len(self._payloads)
        self._positions[worker] = position + 1
        return Prepared(self._payloads[position], 1, self._labels[position])


class AuditBatches:
    """AppendAuditEventsRequest batches of fresh events, one organization per worker."""

    def __init__(self, org_ids: Sequence[str], batch: int, actor: str, service: str) -> None:
        self._org_ids = list(org_ids)
        self._batch = batch
        self._actor = actor
        self._service = service

    def next(self, worker: int) -> Prepared:
        org_id = self._org_ids[worker % len(self._org_ids)]
        occurred = timestamp_pb2.Timestamp()
        occurred.GetCurrentTime()
        details = struct_pb2.Struct()
        details.update({"display_name": "bench"})
        events = [
            audit_pb2.AuditEvent(
                event_id=str(uuid.uuid4()),
                org_id=org_id,
                actor=self._actor,
                action="bench.event",
                resource_type="bench",
                resource_id=str(uuid.uuid4()),
                ip_address="127.0.0.1",
                occur_time=occurred,
                service=self._service,
                details=details,
            )
            for _ in range(self._batch)
        ]
        request = audit_pb2.AppendAuditEventsRequest(events=events)
        return Prepared(request.SerializeToString(), self._batch)


def request_source(spec: dict[str, Any]) -> RequestSource:
    """`{"kind": "fixed", "payloads": [base64...], "labels": [...]}` (labels optional) or
    `{"kind": "audit_batch", ...}`."""
    kind = spec.get("kind")
    if kind == "fixed":
        return FixedRequests(
            [base64.b64decode(p) for p in spec["payloads"]], spec.get("labels", ())
        )
    if kind == "audit_batch":
        return AuditBatches(spec["org_ids"], int(spec["batch"]), spec["actor"], spec["service"])
    raise ValueError(f"unknown request source: {kind!r}")


class GrpcDriver:
    """Unary calls with raw bytes in and out (no client-side (de)serialization)."""

    def __init__(self, workload: Workload) -> None:
        self._workload = workload
        self._source = request_source(workload.requests)
        self._channels = [
            grpc.aio.insecure_channel(
                workload.target, options=[*_CHANNEL_OPTIONS, ("bench.channel", index)]
            )
            for index in range(max(1, workload.channels))
        ]
        self._calls = [channel.unary_unary(workload.method) for channel in self._channels]

    async def connect(self) -> None:
        """Waits until every channel is connected."""
        for channel in self._channels:
            await asyncio.wait_for(channel.channel_ready(), timeout=self._workload.timeout)

    def prepare(self, worker: int) -> Prepared:
        return self._source.next(worker)

    async def execute(self, worker: int, prepared: Prepared) -> None:
        call = self._calls[worker % len(self._calls)]
        await call(
            prepared.payload, metadata=self._workload.metadata, timeout=self._workload.timeout
        )

    async def close(self) -> None:
        for channel in self._channels:
            await channel.close()
