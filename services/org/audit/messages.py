"""Proto ⇄ domain mapping of the audit API: events in, entries, checkpoints and reports out."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sensei.org.v1 import audit_pb2
from services.org.audit.chain import AuditEntry, Checkpoint, EventDraft
from services.org.audit.use_cases import LogQuery
from services.org.audit.verification import ChainReport
from shared import protoconv
from shared.errors import FieldViolation, InvalidArgument


def drafts_of(
    events: Sequence[audit_pb2.AuditEvent],
) -> tuple[list[EventDraft], list[FieldViolation]]:
    """The events as drafts, and what could not even be read (bad details or times)."""
    drafts, violations = [], []
    for index, event in enumerate(events):
        path = f"events[{index}]"
        try:
            details = protoconv.dict_of(event.details, f"{path}.details")
        except InvalidArgument as exc:
            violations.extend(exc.violations)
            details = {}
        occurred_at = None
        if event.HasField("occur_time"):
            try:
                occurred_at = protoconv.to_datetime(event.occur_time)
            except (ValueError, OverflowError):
                violations.append(FieldViolation(f"{path}.occur_time", "is not a valid time"))
        drafts.append(
            EventDraft(
                event_id=event.event_id,
                org_id=event.org_id,
                user_id=event.user_id,
                actor=event.actor,
                action=event.action,
                resource_type=event.resource_type,
                resource_id=event.resource_id,
                ip_address=event.ip_address,
                service=event.service,
                occurred_at=occurred_at,
                details=details,
            )
        )
    return drafts, violations


def audit_log_proto(entry: AuditEntry) -> audit_pb2.AuditLog:
    """The API form of an entry."""
    return audit_pb2.AuditLog(
        name=f"organizations/{entry.org_id}/auditLogs/{entry.id}",
        id=entry.id,
        org_id=entry.org_id,
        user_id=entry.user_id or "",
        actor=entry.actor,
        action=entry.action,
        resource_type=entry.resource_type,
        resource_id=entry.resource_id,
        ip_address=entry.ip_address,
        create_time=protoconv.timestamp(entry.created_at),
        occur_time=protoconv.timestamp(entry.occurred_at),
        event_id=entry.event_id,
        service=entry.service,
        details=protoconv.struct_of(dict(entry.details)),
        seq=entry.seq,
        prev_hash=entry.prev_hash,
        entry_hash=entry.entry_hash,
    )


def checkpoint_proto(checkpoint: Checkpoint) -> audit_pb2.AuditCheckpoint:
    """The API form of a checkpoint."""
    return audit_pb2.AuditCheckpoint(
        org_id=checkpoint.org_id,
        seq=checkpoint.seq,
        head_hash=checkpoint.head_hash,
        create_time=protoconv.timestamp(checkpoint.created_at),
        key_id=checkpoint.key_id,
        signature=checkpoint.signature_b64,
        signed_payload=checkpoint.payload.decode(),
    )


def report_proto(report: ChainReport) -> audit_pb2.VerifyAuditChainResponse:
    """The API form of a verification."""
    response = audit_pb2.VerifyAuditChainResponse(
        valid=report.valid,
        entries_checked=report.entries_checked,
        head_seq=report.head_seq,
        head_hash=report.head_hash,
        checkpoints_checked=report.checkpoints_checked,
    )
    if report.failure is not None:
        response.failure.CopyFrom(
            audit_pb2.ChainFailure(
                kind=audit_pb2.ChainFailureKind.Value(
                    f"CHAIN_FAILURE_KIND_{report.failure.kind.value}"
                ),
                seq=report.failure.seq,
                audit_log_id=report.failure.audit_log_id or "",
                message=report.failure.message,
            )
        )
    return response


def time_filter(request: audit_pb2.ListAuditLogsRequest, field_name: str) -> datetime | None:
    """A time filter of ListAuditLogs (None when unset)."""
    if not request.HasField(field_name):  # type: ignore[arg-type]
        return None
    try:
        return protoconv.to_datetime(getattr(request, field_name))
    except (ValueError, OverflowError):
        raise InvalidArgument.single(field_name, "is not a valid time") from None


def log_query_of(request: audit_pb2.ListAuditLogsRequest) -> LogQuery:
    """ListAuditLogs filters as sent; INVALID_ARGUMENT for a time that is not one."""
    return LogQuery(
        user_id=request.user_id,
        action=request.action,
        resource_type=request.resource_type,
        resource_id=request.resource_id,
        start=time_filter(request, "start_time"),
        end=time_filter(request, "end_time"),
    )
