"""A revoked token loses its power: at once on the org service, within 2 s on the others.

Each kind of revocation (API key revoked, user deleted, role changed, organization
deleted) is tried with a token exchanged before it, against all four services over real
gRPC; the demoted admin cannot mint themselves a new admin; a service that lost the
revocation feed fails closed for writes and catches up when the feed is back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2

from sensei.migration.v1 import migration_pb2, migration_pb2_grpc
from sensei.org.v1 import (
    auth_pb2,
    auth_pb2_grpc,
    organization_pb2,
    organization_pb2_grpc,
    user_pb2,
    user_pb2_grpc,
)
from sensei.pattern.v1 import pattern_pb2, pattern_pb2_grpc
from sensei.verification.v1 import verification_pb2, verification_pb2_grpc
from tests.harness import ALL_SERVICES, Identity, Suite, error_info

# The bound the other services keep to (README, "Token freshness").
FEED_BOUND_SECONDS = 2.0

Call = Callable[[Identity], Awaitable[Any]]


def _calls(suite: Suite) -> dict[str, Call]:
    """One read per service that any valid token of the organization may make."""
    orgs = suite.stub("org", organization_pb2_grpc.OrganizationServiceStub)
    migrations = suite.stub("migration", migration_pb2_grpc.MigrationServiceStub)
    verifications = suite.stub("verification", verification_pb2_grpc.VerificationServiceStub)
    patterns = suite.stub("pattern", pattern_pb2_grpc.PatternServiceStub)
    return {
        "org": lambda who: orgs.GetOrganization(
            organization_pb2.GetOrganizationRequest(name=who.org_name), metadata=who.metadata
        ),
        "migration": lambda who: migrations.ListMigrations(
            migration_pb2.ListMigrationsRequest(parent=who.org_name), metadata=who.metadata
        ),
        "verification": lambda who: verifications.ListVerifications(
            verification_pb2.ListVerificationsRequest(parent=f"{who.org_name}/migrations/-"),
            metadata=who.metadata,
        ),
        "pattern": lambda who: patterns.ListPatterns(
            pattern_pb2.ListPatternsRequest(), metadata=who.metadata
        ),
    }


async def _refused_within(call: Call, who: Identity, seconds: float) -> grpc.aio.AioRpcError:
    """The UNAUTHENTICATED error `call` gets within `seconds` (asking every 20 ms)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        try:
            await call(who)
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.OK:
                return exc
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"the token still counts after {seconds} s")
        await asyncio.sleep(0.02)  # polling for the bound, not waiting for an effect


async def _assert_refused_everywhere(suite: Suite, who: Identity) -> None:
    calls = _calls(suite)
    # The org service decides from its own database: at once.
    error = await _refused_within(calls["org"], who, 0)
    assert (error.code(), error_info(error).reason) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "TOKEN_REVOKED",
    )
    for service in ("migration", "verification", "pattern"):
        error = await _refused_within(calls[service], who, FEED_BOUND_SECONDS)
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED, service
        assert error_info(error).reason == "TOKEN_REVOKED", service


async def _admitted_everywhere(suite: Suite, who: Identity) -> None:
    for service, call in _calls(suite).items():
        try:
            await call(who)
        except grpc.aio.AioRpcError as exc:  # pragma: no cover - the failure says which
            raise AssertionError(f"{service}: {exc.code().name} {exc.details()}") from None


@pytest.fixture
async def everything(suite: Suite) -> Suite:
    await suite.start(*ALL_SERVICES)
    return suite


async def _make_viewer(users: Any, who: Identity, owner: Identity) -> None:
    """The owner gives `who` the VIEWER role (their tokens carry the old one)."""
    await users.UpdateUser(
        user_pb2.UpdateUserRequest(
            user=user_pb2.User(
                name=f"{who.org_name}/users/{who.user_id}", role=user_pb2.ROLE_VIEWER
            ),
            update_mask=field_mask_pb2.FieldMask(paths=["role"]),
        ),
        metadata=owner.metadata,
    )


async def _users(suite: Suite) -> Any:
    return suite.stub("org", user_pb2_grpc.UserServiceStub)


async def test_a_token_of_a_revoked_api_key_is_refused_by_every_service(
    everything: Suite,
) -> None:
    member = await everything.user("MEMBER")
    await _admitted_everywhere(everything, member)
    users = await _users(everything)
    keys = await users.ListApiKeys(
        user_pb2.ListApiKeysRequest(
            parent=member.org_name, user=f"{member.org_name}/users/{member.user_id}"
        ),
        metadata=(await everything.owner()).metadata,
    )
    (key,) = keys.api_keys
    await users.RevokeApiKey(
        user_pb2.RevokeApiKeyRequest(name=key.name), metadata=(await everything.owner()).metadata
    )
    await _assert_refused_everywhere(everything, member)


async def test_a_token_of_a_deleted_user_is_refused_by_every_service(everything: Suite) -> None:
    member = await everything.user("MEMBER")
    await _admitted_everywhere(everything, member)
    owner = await everything.owner()
    users = await _users(everything)
    name = f"{member.org_name}/users/{member.user_id}"
    current = await users.GetUser(user_pb2.GetUserRequest(name=name), metadata=owner.metadata)
    await users.DeleteUser(
        user_pb2.DeleteUserRequest(name=name, etag=current.user.etag), metadata=owner.metadata
    )
    await _assert_refused_everywhere(everything, member)


async def test_a_token_that_carries_an_old_role_is_refused_by_every_service(
    everything: Suite,
) -> None:
    member = await everything.user("MEMBER")
    owner = await everything.owner()
    users = await _users(everything)
    await _make_viewer(users, member, owner)
    await _assert_refused_everywhere(everything, member)


async def test_a_token_of_a_deleted_organization_is_refused_by_every_service(
    everything: Suite,
) -> None:
    org, owner = await everything.new_org()
    await _admitted_everywhere(everything, owner)
    orgs = everything.stub("org", organization_pb2_grpc.OrganizationServiceStub)
    await orgs.DeleteOrganization(
        organization_pb2.DeleteOrganizationRequest(name=org.name), metadata=owner.metadata
    )
    await _assert_refused_everywhere(everything, owner)


async def test_a_demoted_admin_cannot_mint_a_new_admin_with_the_old_token(
    everything: Suite,
) -> None:
    admin = await everything.user("ADMIN")
    owner = await everything.owner()
    users = await _users(everything)
    await _make_viewer(users, admin, owner)
    attempts = [
        users.CreateUser(
            user_pb2.CreateUserRequest(
                parent=admin.org_name,
                user=user_pb2.User(
                    email="backdoor@example.test", display_name="B", role=user_pb2.ROLE_ADMIN
                ),
            ),
            metadata=admin.metadata,
        ),
        users.CreateApiKey(
            user_pb2.CreateApiKeyRequest(
                parent=admin.org_name,
                api_key=user_pb2.ApiKey(
                    user=f"{owner.org_name}/users/{owner.user_id}", display_name="backdoor"
                ),
            ),
            metadata=admin.metadata,
        ),
        users.RevokeApiKey(
            user_pb2.RevokeApiKeyRequest(name=f"{admin.org_name}/apiKeys/{admin.user_id}"),
            metadata=admin.metadata,
        ),
    ]
    for attempt in attempts:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await attempt
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert error_info(caught.value).reason == "TOKEN_REVOKED"
    listed = await users.ListUsers(
        user_pb2.ListUsersRequest(parent=owner.org_name), metadata=owner.metadata
    )
    assert "backdoor@example.test" not in {user.email for user in listed.users}


async def test_writes_fail_closed_while_the_feed_is_lost_and_recover_with_it(
    suite: Suite,
) -> None:
    env = {"SENSEI_REVOCATION_MAX_STALENESS_SECONDS": "1"}
    await suite.start("migration", env=env)
    member = await suite.user("MEMBER")
    migrations = suite.stub("migration", migration_pb2_grpc.MigrationServiceStub)
    created = await migrations.CreateMigration(
        migration_pb2.CreateMigrationRequest(
            parent=member.org_name, migration=migration_pb2.Migration(display_name="m")
        ),
        metadata=member.metadata,
    )

    def update() -> Awaitable[Any]:
        return migrations.UpdateMigration(
            migration_pb2.UpdateMigrationRequest(
                migration=migration_pb2.Migration(name=created.migration.name, description="x"),
                update_mask=field_mask_pb2.FieldMask(paths=["description"]),
            ),
            metadata=member.metadata,
        )

    await update()
    await suite.stop("org")
    error = await _refused_within(lambda _who: update(), member, 10)
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert error_info(error).reason == "REVOCATIONS_UNAVAILABLE"
    # Reads still pass on the last known view.
    await migrations.GetMigration(
        migration_pb2.GetMigrationRequest(name=created.migration.name), metadata=member.metadata
    )

    await suite.restart("org", env=env)
    for _ in range(250):  # the feed reconnects with backoff (at most 2 s apart)
        try:
            await update()
            break
        except grpc.aio.AioRpcError as exc:
            assert exc.code() == grpc.StatusCode.UNAVAILABLE
            await asyncio.sleep(0.02)
    else:
        raise AssertionError("writes did not recover with the feed")
    # And the feed is current again: a revocation made now reaches the service.
    users = suite.stub("org", user_pb2_grpc.UserServiceStub)
    owner = await suite.owner()
    await _make_viewer(users, member, owner)
    error = await _refused_within(lambda _who: update(), member, FEED_BOUND_SECONDS)
    assert error_info(error).reason == "TOKEN_REVOKED"


async def test_only_service_principals_follow_the_feed(everything: Suite) -> None:
    auth = everything.stub("org", auth_pb2_grpc.AuthServiceStub)
    for who in (await everything.owner(), await everything.operator()):
        stream = auth.WatchTokenRevocations(
            auth_pb2.WatchTokenRevocationsRequest(), metadata=who.metadata
        )
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stream.read()
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    service = await everything.service()
    stream = auth.WatchTokenRevocations(
        auth_pb2.WatchTokenRevocationsRequest(after_sequence=-1), metadata=service.metadata
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stream.read()
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_the_feed_replays_then_streams_each_revocation_in_order(everything: Suite) -> None:
    auth = everything.stub("org", auth_pb2_grpc.AuthServiceStub)
    service = await everything.service()
    first = await everything.user("VIEWER")
    users = await _users(everything)
    owner = await everything.owner()

    async def delete(who: Identity) -> None:
        name = f"{who.org_name}/users/{who.user_id}"
        current = await users.GetUser(user_pb2.GetUserRequest(name=name), metadata=owner.metadata)
        await users.DeleteUser(
            user_pb2.DeleteUserRequest(name=name, etag=current.user.etag), metadata=owner.metadata
        )

    await delete(first)
    stream = auth.WatchTokenRevocations(
        auth_pb2.WatchTokenRevocationsRequest(), metadata=service.metadata
    )
    replay = await stream.read()
    assert replay.caught_up
    assert f"users/{first.user_id}" in {r.subject for r in replay.revocations}
    assert replay.heartbeat_interval.ToTimedelta().total_seconds() > 0
    second = await everything.user("VIEWER")
    await delete(second)
    async with asyncio.timeout(FEED_BOUND_SECONDS):
        while True:
            batch = await stream.read()
            if batch.revocations:
                break
    assert [r.subject for r in batch.revocations] == [f"users/{second.user_id}"]
    assert batch.revocations[0].current_role == ""
    assert batch.sequence > replay.sequence
    stream.cancel()
