"""The verification API's contract: validation, tenancy, idempotency, listing, audit."""

from __future__ import annotations

import uuid

import asyncpg
import grpc
import pytest

from sensei.verification.v1 import verification_pb2
from tests.harness import bad_request_fields, error_info
from tests.verification.conftest import Stack

pb = verification_pb2


async def test_invalid_request_lists_every_violation(stack: Stack) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stack.verifications.CreateVerification(
            pb.CreateVerificationRequest(
                parent=stack.migration,
                verification=pb.Verification(tables=["public.", "orders", "public.orders"]),
            ),
            metadata=stack.owner.metadata,
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request_fields(caught.value) == {
        "verification.type",
        "verification.tables[0]",
        "verification.tables[2]",
    }


async def test_unknown_migration_is_not_found(stack: Stack) -> None:
    missing = f"{stack.owner.org_name}/migrations/{uuid.uuid4()}"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stack.create(pb.VERIFICATION_TYPE_ROW_COUNT, migration=missing)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_another_organization_is_denied_before_any_lookup(stack: Stack) -> None:
    done = await stack.run(pb.VERIFICATION_TYPE_ROW_COUNT)
    _, stranger = await stack.suite.new_org()

    calls = [
        stack.create(pb.VERIFICATION_TYPE_ROW_COUNT, caller=stranger),
        stack.verifications.GetVerification(
            pb.GetVerificationRequest(name=done.name), metadata=stranger.metadata
        ),
        stack.verifications.GetCertificate(
            pb.GetCertificateRequest(name=done.certificate), metadata=stranger.metadata
        ),
        stack.verifications.ListVerifications(
            pb.ListVerificationsRequest(parent=stack.migration), metadata=stranger.metadata
        ),
    ]
    for call in calls:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert error_info(caught.value).reason == "OTHER_ORGANIZATION"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in stack.verifications.WatchVerification(
            pb.WatchVerificationRequest(name=done.name), metadata=stranger.metadata
        ):
            pass
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_viewer_cannot_create_a_verification(stack: Stack) -> None:
    viewer = await stack.suite.user("VIEWER")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stack.create(pb.VERIFICATION_TYPE_ROW_COUNT, caller=viewer)
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error_info(caught.value).reason == "ROLE_TOO_LOW"


async def test_repeated_request_id_returns_the_first_verification(stack: Stack) -> None:
    first = await stack.create(pb.VERIFICATION_TYPE_ROW_COUNT, request_id="once")
    again = await stack.create(pb.VERIFICATION_TYPE_ROW_COUNT, request_id="once")
    assert again.id == first.id
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stack.create(pb.VERIFICATION_TYPE_CHECKSUM, request_id="once")
    assert error_info(caught.value).reason == "REQUEST_ID_REUSED"
    conn = await asyncpg.connect(stack.suite.database_url)
    try:
        jobs = await conn.fetchval("SELECT count(*) FROM verification.jobs")
    finally:
        await conn.close()
    assert jobs == 1


async def test_list_pages_filters_and_refuses_tampered_tokens(stack: Stack) -> None:
    created = [
        await stack.create(kind)
        for kind in (
            pb.VERIFICATION_TYPE_ROW_COUNT,
            pb.VERIFICATION_TYPE_SCHEMA_PARITY,
            pb.VERIFICATION_TYPE_ROW_COUNT,
        )
    ]
    list_call = stack.verifications.ListVerifications
    first = await list_call(
        pb.ListVerificationsRequest(parent=stack.migration, page_size=2),
        metadata=stack.owner.metadata,
    )
    second = await list_call(
        pb.ListVerificationsRequest(
            parent=stack.migration, page_size=2, page_token=first.next_page_token
        ),
        metadata=stack.owner.metadata,
    )
    assert [v.id for v in [*first.verifications, *second.verifications]] == [v.id for v in created]
    assert second.next_page_token == ""
    across = await list_call(
        pb.ListVerificationsRequest(
            parent=f"{stack.owner.org_name}/migrations/-", type=pb.VERIFICATION_TYPE_ROW_COUNT
        ),
        metadata=stack.owner.metadata,
    )
    assert [v.id for v in across.verifications] == [created[0].id, created[2].id]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await list_call(
            pb.ListVerificationsRequest(
                parent=stack.migration, page_size=2, page_token=first.next_page_token[:-2] + "xx"
            ),
            metadata=stack.owner.metadata,
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await list_call(
            pb.ListVerificationsRequest(parent=stack.migration, page_size=-1),
            metadata=stack.owner.metadata,
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_create_records_an_audit_event_with_the_change(stack: Stack) -> None:
    # With the org service down, the event waits in the outbox (it was written with the job).
    await stack.create(pb.VERIFICATION_TYPE_ROW_COUNT)
    await stack.suite.stop("org")
    created = await stack.create(pb.VERIFICATION_TYPE_CHECKSUM)
    conn = await asyncpg.connect(stack.suite.database_url)
    try:
        row = await conn.fetchrow(
            "SELECT org_id::text, user_id::text, action, resource_type, details::text"
            " FROM verification.audit_outbox WHERE resource_id = $1",
            created.id,
        )
    finally:
        await conn.close()
    assert row is not None
    assert row["org_id"] == stack.owner.org_id
    assert row["user_id"] == stack.owner.user_id
    assert (row["action"], row["resource_type"]) == ("verification.create", "verification")
    assert '"type": "CHECKSUM"' in row["details"]


async def test_list_under_another_organizations_migration_id_is_not_found(stack: Stack) -> None:
    # The victim's migration has verifications; its id under my organization's name is unknown.
    await stack.create(pb.VERIFICATION_TYPE_ROW_COUNT)
    _, me = await stack.suite.new_org()
    migration_id = stack.migration.rsplit("/", 1)[1]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stack.verifications.ListVerifications(
            pb.ListVerificationsRequest(parent=f"{me.org_name}/migrations/{migration_id}"),
            metadata=me.metadata,
        )
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_list_under_a_migration_that_never_existed_is_not_found(stack: Stack) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stack.verifications.ListVerifications(
            pb.ListVerificationsRequest(parent=f"{stack.owner.org_name}/migrations/{uuid.uuid4()}"),
            metadata=stack.owner.metadata,
        )
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    # The parent of every migration stays a valid (empty) listing.
    response = await stack.verifications.ListVerifications(
        pb.ListVerificationsRequest(parent=f"{stack.owner.org_name}/migrations/-"),
        metadata=stack.owner.metadata,
    )
    assert list(response.verifications) == []
