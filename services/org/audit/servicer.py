"""sensei.org.v1.AuditService: protos in, audit trail calls, protos out. No rules here.

Also the org service's own audit delivery: its outbox relay hands events straight to the
same append path AppendAuditEvents takes, instead of calling itself over gRPC.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeAlias

import grpc

from sensei.org.v1 import audit_pb2, audit_pb2_grpc
from services.org.audit.messages import (
    audit_log_proto,
    checkpoint_proto,
    drafts_of,
    log_query_of,
    report_proto,
)
from services.org.audit.use_cases import AuditTrail
from shared.relay import Deliver, OutboxEvent

_CONTEXT: TypeAlias = grpc.aio.ServicerContext


def in_process_delivery(trail: AuditTrail) -> Deliver:
    """The org service's outbox deliverer: appends like AppendAuditEvents, without a call."""

    async def deliver(events: Sequence[OutboxEvent]) -> None:
        drafts, violations = drafts_of([event.to_proto() for event in events])
        await trail.append(drafts, violations)

    return deliver


class AuditServicer(audit_pb2_grpc.AuditServiceServicer):
    """sensei.org.v1.AuditService."""

    def __init__(self, trail: AuditTrail) -> None:
        self._trail = trail

    async def AppendAuditEvents(
        self, request: audit_pb2.AppendAuditEventsRequest, context: _CONTEXT
    ) -> audit_pb2.AppendAuditEventsResponse:
        drafts, violations = drafts_of(request.events)
        result = await self._trail.append(drafts, violations)
        return audit_pb2.AppendAuditEventsResponse(
            appended_count=result.appended, duplicate_count=result.duplicates
        )

    async def ListAuditLogs(
        self, request: audit_pb2.ListAuditLogsRequest, context: _CONTEXT
    ) -> audit_pb2.ListAuditLogsResponse:
        query = log_query_of(request)
        page = await self._trail.list_logs(
            request.parent, query, request.page_size, request.page_token
        )
        return audit_pb2.ListAuditLogsResponse(
            audit_logs=[audit_log_proto(entry) for entry in page.items],
            next_page_token=page.next_page_token,
        )

    async def VerifyAuditChain(
        self, request: audit_pb2.VerifyAuditChainRequest, context: _CONTEXT
    ) -> audit_pb2.VerifyAuditChainResponse:
        report = await self._trail.verify(request.parent, request.start_seq, request.end_seq)
        return report_proto(report)

    async def GetAuditCheckpoint(
        self, request: audit_pb2.GetAuditCheckpointRequest, context: _CONTEXT
    ) -> audit_pb2.GetAuditCheckpointResponse:
        checkpoint = await self._trail.latest_checkpoint(request.parent)
        return audit_pb2.GetAuditCheckpointResponse(checkpoint=checkpoint_proto(checkpoint))
