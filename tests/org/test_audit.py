"""AuditService over a real channel: append, idempotency, concurrency, listing, checkpoints."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections import Counter
from typing import Any

import grpc
import rfc8785
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from google.protobuf import json_format, struct_pb2, timestamp_pb2

from sensei.org.v1 import audit_pb2, auth_pb2, user_pb2
from shared.token_verification import public_key_from_jwk
from tests.harness import Identity, bad_request_fields, error_info
from tests.org.conftest import Org, audit_event, documented_hash, rpc_error, time_text

PLATFORM = "organizations/00000000-0000-0000-0000-000000000000"


async def _append(org: Org, *events: audit_pb2.AuditEvent) -> Any:
    service = await org.suite.service()
    return await org.audit.AppendAuditEvents(
        audit_pb2.AppendAuditEventsRequest(events=list(events)), metadata=service.metadata
    )


async def _list(org: Org, who: Identity | None = None, **fields: Any) -> Any:
    caller = who or await org.suite.service()
    return await org.audit.ListAuditLogs(
        audit_pb2.ListAuditLogsRequest(**fields), metadata=caller.metadata
    )


async def _verify(org: Org, org_id: str, **fields: Any) -> Any:
    service = await org.suite.service()
    return await org.audit.VerifyAuditChain(
        audit_pb2.VerifyAuditChainRequest(parent=f"organizations/{org_id}", **fields),
        metadata=service.metadata,
    )


async def _everything(org: Org, org_id: str, **filters: Any) -> list[audit_pb2.AuditLog]:
    logs: list[audit_pb2.AuditLog] = []
    token = ""
    while True:
        page = await _list(
            org, parent=f"organizations/{org_id}", page_size=1000, page_token=token, **filters
        )
        logs.extend(page.audit_logs)
        token = page.next_page_token
        if not token:
            return logs


async def test_appended_events_form_a_hash_chain_listed_newest_first(org: Org) -> None:
    org_id = str(uuid.uuid4())
    details = struct_pb2.Struct()
    details.update({"count": 3, "ratio": 0.1, "tags": ["a", "é"], "ok": True, "none": None})
    sent = [audit_event(org_id, details=details), audit_event(org_id), audit_event(org_id)]
    response = await _append(org, *sent)
    assert (response.appended_count, response.duplicate_count) == (3, 0)
    logs = (await _list(org, parent=f"organizations/{org_id}")).audit_logs
    assert [log.seq for log in logs] == [3, 2, 1]
    first = logs[-1]
    assert first.name == f"organizations/{org_id}/auditLogs/{first.id}"
    assert (first.event_id, first.actor, first.action) == (
        sent[0].event_id,
        "users/test",
        "thing.update",
    )
    assert (first.user_id, first.ip_address, first.service) == (sent[0].user_id, "10.1.2.3", "test")
    assert first.occur_time.seconds == sent[0].occur_time.seconds
    assert json_format.MessageToDict(first.details) == json_format.MessageToDict(details)
    assert first.prev_hash == "0" * 64
    assert [log.prev_hash for log in logs[:2]] == [logs[1].entry_hash, logs[2].entry_hash]
    assert [log.entry_hash for log in logs] == [documented_hash(log) for log in logs]
    report = await _verify(org, org_id)
    assert report.valid and report.entries_checked == 3
    assert (report.head_seq, report.head_hash) == (3, logs[0].entry_hash)


async def test_details_keep_their_hash_through_storage_whatever_the_numbers(org: Org) -> None:
    org_id = str(uuid.uuid4())
    details = struct_pb2.Struct()
    details.update(
        {
            "huge": 1e300,
            "tiny": 1e-300,
            "negative_zero": -0.0,
            "big_integer": 12345678901234567890.0,
            "third": 1 / 3,
            "nested": {"list": [1, [2.5, {"ключ": "値"}]], "empty": {}},
        }
    )
    await _append(org, audit_event(org_id, details=details))
    (stored,) = (await _list(org, parent=f"organizations/{org_id}")).audit_logs
    # Equal as JSON values (PostgreSQL keeps -0.0 as 0, which RFC 8785 writes alike).
    assert json_format.MessageToDict(stored.details) == json_format.MessageToDict(details)
    assert stored.entry_hash == documented_hash(stored)
    assert (await _verify(org, org_id)).valid


async def test_a_repeated_event_id_is_stored_once(org: Org) -> None:
    org_id = str(uuid.uuid4())
    events = [audit_event(org_id) for _ in range(3)]
    await _append(org, *events)
    again = await _append(org, *events, events[0], audit_event(org_id))
    assert (again.appended_count, again.duplicate_count) == (1, 4)
    logs = await _everything(org, org_id)
    assert len(logs) == 4
    assert Counter(log.event_id for log in logs)[events[0].event_id] == 1


async def test_a_batch_delivered_twice_at_once_is_stored_once(org: Org) -> None:
    org_id = str(uuid.uuid4())
    batch = [audit_event(org_id) for _ in range(50)]
    results = await asyncio.gather(*(_append(org, *batch) for _ in range(4)))
    assert sum(r.appended_count for r in results) == 50
    assert sum(r.duplicate_count for r in results) == 150
    logs = await _everything(org, org_id)
    assert sorted(log.seq for log in logs) == list(range(1, 51))
    assert {log.event_id for log in logs} == {event.event_id for event in batch}
    assert (await _verify(org, org_id)).valid


async def test_fifty_concurrent_appenders_make_one_unbroken_chain(org: Org) -> None:
    org_id = str(uuid.uuid4())

    async def appender() -> None:
        for _ in range(20):
            await _append(org, audit_event(org_id))

    await asyncio.gather(*(appender() for _ in range(50)))
    logs = await _everything(org, org_id)
    assert [log.seq for log in logs] == list(range(1000, 0, -1))
    assert len({log.event_id for log in logs}) == 1000
    report = await _verify(org, org_id)
    assert report.valid, report.failure
    assert (report.entries_checked, report.head_seq) == (1000, 1000)
    # A checkpoint every 100 entries (the default), each signed at a chain head.
    assert report.checkpoints_checked == 10
    service = await org.suite.service()
    latest = await org.audit.GetAuditCheckpoint(
        audit_pb2.GetAuditCheckpointRequest(parent=f"organizations/{org_id}"),
        metadata=service.metadata,
    )
    assert (latest.checkpoint.seq, latest.checkpoint.head_hash) == (1000, logs[0].entry_hash)


async def test_every_invalid_field_of_every_event_is_reported_and_nothing_is_stored(
    org: Org,
) -> None:
    org_id = str(uuid.uuid4())
    nan = struct_pb2.Struct()
    nan.update({"x": float("nan")})
    bad = [
        audit_event(org_id),
        audit_event("not-a-uuid", event_id="", user_id="nope", action="Bad Action"),
        audit_event(org_id, ip_address="999.1.1.1", service="", resource_type="", details=nan),
        audit_pb2.AuditEvent(event_id=str(uuid.uuid4()), org_id=org_id),
    ]
    error = await rpc_error(_append(org, *bad))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request_fields(error) == {
        "events[1].event_id",
        "events[1].org_id",
        "events[1].user_id",
        "events[1].action",
        "events[2].ip_address",
        "events[2].service",
        "events[2].resource_type",
        "events[2].details",
        "events[3].actor",
        "events[3].action",
        "events[3].resource_type",
        "events[3].resource_id",
        "events[3].service",
        "events[3].occur_time",
    }
    assert (
        await org.count("SELECT count(*) FROM audit_logs WHERE org_id = $1", uuid.UUID(org_id)) == 0
    )


async def test_more_than_a_thousand_events_is_invalid(org: Org) -> None:
    org_id = str(uuid.uuid4())
    error = await rpc_error(_append(org, *(audit_event(org_id) for _ in range(1001))))
    assert bad_request_fields(error) == {"events"}


async def test_list_filters_by_user_action_resource_and_time(org: Org) -> None:
    org_id = str(uuid.uuid4())
    user = str(uuid.uuid4())
    resource = str(uuid.uuid4())
    await _append(
        org,
        audit_event(org_id, user_id=user, action="thing.create"),
        audit_event(org_id, action="thing.delete", resource_type="other"),
        audit_event(org_id, resource_id=resource),
    )
    later = [audit_event(org_id, user_id=user), audit_event(org_id, action="thing.delete")]
    await _append(org, *later)
    newest = await _everything(org, org_id)

    async def seqs(**filters: Any) -> list[int]:
        return [log.seq for log in await _everything(org, org_id, **filters)]

    assert await seqs(user_id=user) == [4, 1]
    assert await seqs(action="thing.delete") == [5, 2]
    assert await seqs(resource_type="other") == [2]
    assert await seqs(resource_type="thing", resource_id=resource) == [3]
    assert await seqs(user_id=user, action="thing.create") == [1]
    second_batch = newest[0].create_time
    assert await seqs(start_time=second_batch) == [5, 4]
    assert await seqs(end_time=second_batch) == [3, 2, 1]
    assert await seqs(start_time=second_batch, action="thing.delete") == [5]


async def test_list_pages_with_tokens_bound_to_their_query(org: Org) -> None:
    org_id = str(uuid.uuid4())
    await _append(org, *(audit_event(org_id) for _ in range(25)))
    parent = f"organizations/{org_id}"
    seen: list[int] = []
    token = ""
    pages = 0
    while True:
        page = await _list(org, parent=parent, page_size=10, page_token=token)
        seen.extend(log.seq for log in page.audit_logs)
        pages += 1
        token = page.next_page_token
        if not token:
            break
        second_token = token
    assert (seen, pages) == (list(range(25, 0, -1)), 3)
    for request in (
        audit_pb2.ListAuditLogsRequest(parent=parent, page_token=second_token[:-2] + "xx"),
        audit_pb2.ListAuditLogsRequest(parent=parent, page_token=second_token, action="x.y"),
        audit_pb2.ListAuditLogsRequest(parent=parent, page_size=-1),
    ):
        service = await org.suite.service()
        error = await rpc_error(org.audit.ListAuditLogs(request, metadata=service.metadata))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_bad_list_and_verify_requests_report_every_field(org: Org) -> None:
    service = await org.suite.service()
    start = timestamp_pb2.Timestamp(seconds=2_000_000_000)
    error = await rpc_error(
        org.audit.ListAuditLogs(
            audit_pb2.ListAuditLogsRequest(
                parent=f"organizations/{org.suite.org_id}",
                user_id="x",
                page_size=-5,
                start_time=start,
                end_time=timestamp_pb2.Timestamp(seconds=1),
            ),
            metadata=service.metadata,
        )
    )
    assert bad_request_fields(error) == {"user_id", "page_size", "end_time"}
    error = await rpc_error(
        org.audit.VerifyAuditChain(
            audit_pb2.VerifyAuditChainRequest(
                parent=f"organizations/{org.suite.org_id}", start_seq=9, end_seq=3
            ),
            metadata=service.metadata,
        )
    )
    assert bad_request_fields(error) == {"end_seq"}


async def test_the_org_services_own_mutations_reach_the_log_without_a_call(org: Org) -> None:
    admin = await org.suite.user("ADMIN")
    created = await org.users.CreateUser(
        user_pb2.CreateUserRequest(
            parent=admin.org_name,
            user=user_pb2.User(email=f"a-{uuid.uuid4().hex[:8]}@example.test", display_name="A"),
        ),
        metadata=admin.metadata,
    )
    await org.audit_settled()
    logs = await _everything(org, admin.org_id, resource_id=created.user.id)
    assert [(log.action, log.service, log.user_id) for log in logs] == [
        ("user.create", "org", admin.user_id)
    ]
    assert logs[0].actor == f"users/{admin.user_id}"
    assert logs[0].ip_address == "127.0.0.1"
    # An admin of the organization reads its own trail.
    mine = await _list(org, admin, parent=admin.org_name, action="user.create")
    assert created.user.id in {log.resource_id for log in mine.audit_logs}
    assert (await _verify(org, admin.org_id)).valid


async def test_platform_actions_are_audited_on_the_platform_chain(org: Org) -> None:
    service = await org.suite.service()
    rotated = await org.auth.RotateTokenSigningKey(
        auth_pb2.RotateTokenSigningKeyRequest(), metadata=service.metadata
    )
    account = await org.auth.CreateServiceAccount(
        auth_pb2.CreateServiceAccountRequest(
            service_account=auth_pb2.ServiceAccount(display_name="worker")
        ),
        metadata=service.metadata,
    )
    await org.audit_settled()
    logs = (await _list(org, parent=PLATFORM)).audit_logs
    assert {(log.action, log.resource_id) for log in logs} >= {
        ("token_signing_key.rotate", rotated.key.kid),
        ("service_account.create", account.service_account.id),
    }
    owner = await org.suite.owner()
    error = await rpc_error(
        org.audit.ListAuditLogs(
            audit_pb2.ListAuditLogsRequest(parent=PLATFORM), metadata=owner.metadata
        )
    )
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_a_checkpoint_is_signed_with_a_published_key(org: Org) -> None:
    org_id = str(uuid.uuid4())
    await _append(org, *(audit_event(org_id) for _ in range(100)))
    service = await org.suite.service()
    checkpoint = (
        await org.audit.GetAuditCheckpoint(
            audit_pb2.GetAuditCheckpointRequest(parent=f"organizations/{org_id}"),
            metadata=service.metadata,
        )
    ).checkpoint
    head = (await _list(org, parent=f"organizations/{org_id}", page_size=1)).audit_logs[0]
    assert (checkpoint.org_id, checkpoint.seq, checkpoint.head_hash) == (
        org_id,
        100,
        head.entry_hash,
    )
    payload = json.loads(checkpoint.signed_payload)
    assert payload == {
        "type": "sensei.audit.checkpoint.v1",
        "org_id": org_id,
        "seq": 100,
        "head_hash": head.entry_hash,
        "key_id": checkpoint.key_id,
        "time": time_text(checkpoint.create_time),
    }
    assert checkpoint.signed_payload.encode() == rfc8785.dumps(payload)
    jwks = await org.auth.GetJwks(auth_pb2.GetJwksRequest())
    jwk = next(k for k in jwks.keys if k.kid == checkpoint.key_id)
    key = public_key_from_jwk({"kty": jwk.kty, "crv": jwk.crv, "x": jwk.x, "y": jwk.y})
    key.verify(
        base64.b64decode(checkpoint.signature),
        checkpoint.signed_payload.encode(),
        ec.ECDSA(hashes.SHA256()),
    )


async def test_there_is_no_checkpoint_before_a_chain_has_one(org: Org) -> None:
    service = await org.suite.service()
    error = await rpc_error(
        org.audit.GetAuditCheckpoint(
            audit_pb2.GetAuditCheckpointRequest(parent=f"organizations/{uuid.uuid4()}"),
            metadata=service.metadata,
        )
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert error_info(error).reason == "AUDIT_CHECKPOINT_NOT_FOUND"
