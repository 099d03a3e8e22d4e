"""What workers do on their own is audited too, with the service as the actor."""

from __future__ import annotations

import asyncio

from sensei.org.v1 import audit_pb2, audit_pb2_grpc
from sensei.verification.v1 import verification_pb2 as pb
from tests.verification.conftest import Stack


async def test_worker_start_and_finish_reach_the_audit_log(stack: Stack) -> None:
    await stack.run_sql("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1);")
    done = await stack.run(pb.VERIFICATION_TYPE_ROW_COUNT)
    service = await stack.suite.service()
    audit = stack.suite.stub("org", audit_pb2_grpc.AuditServiceStub)
    request = audit_pb2.ListAuditLogsRequest(
        parent=stack.owner.org_name, resource_type="verification", resource_id=done.id
    )
    entries: list[audit_pb2.AuditLog] = []
    for _ in range(400):  # bounded wait for the relay; no timing is asserted
        entries = list((await audit.ListAuditLogs(request, metadata=service.metadata)).audit_logs)
        if any(entry.action == "verification.finish" for entry in entries):
            break
        await asyncio.sleep(0.05)
    by_action = {entry.action: entry for entry in entries}
    assert {"verification.create", "verification.start", "verification.finish"} <= set(by_action)
    assert by_action["verification.finish"].actor == "services/verification"
    assert by_action["verification.finish"].details["status"] == "PASSED"
    assert by_action["verification.create"].actor == f"users/{stack.owner.user_id}"
