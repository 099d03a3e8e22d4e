"""UserService users over a real channel: validation, uniqueness, roles, owners, paging."""

from __future__ import annotations

import uuid

import grpc
from google.protobuf import field_mask_pb2

from sensei.org.v1 import user_pb2
from tests.harness import Identity, bad_request_fields, error_info
from tests.org.conftest import Org, rpc_error

User = user_pb2.User


def _new(
    parent: str, email: str | None = None, role: int = 0, request_id: str = "", **kw: str
) -> user_pb2.CreateUserRequest:
    return user_pb2.CreateUserRequest(
        parent=parent,
        user=User(
            email=email or f"u-{uuid.uuid4().hex[:8]}@example.test",
            display_name=kw.get("display_name", "Some One"),
            role=role,  # type: ignore[arg-type]
            avatar_url=kw.get("avatar_url", ""),
        ),
        request_id=request_id,
    )


def _update(
    user: User, paths: list[str], etag: str | None = None, **values: object
) -> user_pb2.UpdateUserRequest:
    changed = User(name=user.name, etag=user.etag if etag is None else etag)
    for key, value in values.items():
        setattr(changed, key, value)
    return user_pb2.UpdateUserRequest(
        user=changed, update_mask=field_mask_pb2.FieldMask(paths=paths)
    )


async def _get(org: Org, who: Identity, name: str) -> User:
    got = await org.users.GetUser(user_pb2.GetUserRequest(name=name), metadata=who.metadata)
    return got.user


async def _owner_user(org: Org) -> User:
    owner = await org.suite.owner()
    return await _get(org, owner, f"{owner.org_name}/users/{owner.user_id}")


async def test_admin_creates_a_member_by_default_with_a_lowercased_email(org: Org) -> None:
    admin = await org.suite.user("ADMIN")
    created = await org.users.CreateUser(
        _new(admin.org_name, "Mixed.Case@Example.TEST", avatar_url="https://img.example/a.png"),
        metadata=admin.metadata,
    )
    user = created.user
    assert user.role == user_pb2.ROLE_MEMBER
    assert user.email == "mixed.case@example.test"
    assert user.name == f"{admin.org_name}/users/{user.id}"
    assert user.org_id == admin.org_id and user.etag
    assert await _get(org, admin, user.name) == user
    assert await org.audit_count("action = 'user.create' AND resource_id = $1", user.id) == 1


async def test_create_reports_every_violation_at_once(org: Org) -> None:
    admin = await org.suite.user("ADMIN")
    error = await rpc_error(
        org.users.CreateUser(
            _new(admin.org_name, "not-an-email", role=9, display_name="", avatar_url="ftp://x"),
            metadata=admin.metadata,
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request_fields(error) == {
        "user.email",
        "user.display_name",
        "user.role",
        "user.avatar_url",
    }


async def test_email_is_unique_across_organizations_ignoring_case(org: Org) -> None:
    _, other_owner = await org.suite.new_org()
    admin = await org.suite.user("ADMIN")
    await org.users.CreateUser(_new(admin.org_name, "dup@example.test"), metadata=admin.metadata)
    for who, email in ((admin, "DUP@example.test"), (other_owner, "dup@EXAMPLE.test")):
        error = await rpc_error(
            org.users.CreateUser(_new(who.org_name, email), metadata=who.metadata)
        )
        assert error.code() == grpc.StatusCode.ALREADY_EXISTS
        assert error_info(error).reason == "USER_ALREADY_EXISTS"


async def test_repeated_request_id_creates_one_user(org: Org) -> None:
    admin = await org.suite.user("ADMIN")
    request = _new(admin.org_name, request_id="create-user-1")
    first = await org.users.CreateUser(request, metadata=admin.metadata)
    second = await org.users.CreateUser(request, metadata=admin.metadata)
    assert first == second
    assert await org.count("SELECT count(*) FROM users WHERE email = $1", request.user.email) == 1
    assert await org.audit_count("resource_id = $1", first.user.id) == 1


async def test_only_an_owner_creates_an_owner(org: Org) -> None:
    admin = await org.suite.user("ADMIN")
    owner = await org.suite.owner()
    error = await rpc_error(
        org.users.CreateUser(
            _new(admin.org_name, role=user_pb2.ROLE_OWNER), metadata=admin.metadata
        )
    )
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error_info(error).reason == "ROLE_GRANT_DENIED"
    created = await org.users.CreateUser(
        _new(owner.org_name, role=user_pb2.ROLE_OWNER), metadata=owner.metadata
    )
    assert created.user.role == user_pb2.ROLE_OWNER


async def test_admin_cannot_promote_to_owner_nor_touch_an_owner(org: Org) -> None:
    admin = await org.suite.user("ADMIN")
    member = (await org.users.CreateUser(_new(admin.org_name), metadata=admin.metadata)).user
    promote = await rpc_error(
        org.users.UpdateUser(
            _update(member, ["role"], role=user_pb2.ROLE_OWNER), metadata=admin.metadata
        )
    )
    assert promote.code() == grpc.StatusCode.PERMISSION_DENIED
    owner_user = await _owner_user(org)
    for call in (
        org.users.UpdateUser(
            _update(owner_user, ["display_name"], display_name="X"), metadata=admin.metadata
        ),
        org.users.DeleteUser(
            user_pb2.DeleteUserRequest(name=owner_user.name), metadata=admin.metadata
        ),
    ):
        error = await rpc_error(call)
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED
        assert error_info(error).reason == "USER_ABOVE_CALLER"


async def test_admin_changes_roles_up_to_admin(org: Org) -> None:
    admin = await org.suite.user("ADMIN")
    member = (await org.users.CreateUser(_new(admin.org_name), metadata=admin.metadata)).user
    updated = await org.users.UpdateUser(
        _update(
            member, ["role", "display_name"], role=user_pb2.ROLE_ADMIN, display_name="Promoted"
        ),
        metadata=admin.metadata,
    )
    assert updated.user.role == user_pb2.ROLE_ADMIN
    assert updated.user.display_name == "Promoted"
    assert updated.user.etag != member.etag


async def test_the_last_owner_cannot_be_demoted_or_deleted(org: Org) -> None:
    owner = await org.suite.owner()
    me = await _owner_user(org)
    demote = await rpc_error(
        org.users.UpdateUser(
            _update(me, ["role"], role=user_pb2.ROLE_ADMIN), metadata=owner.metadata
        )
    )
    assert demote.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_info(demote).reason == "LAST_OWNER"
    delete = await rpc_error(
        org.users.DeleteUser(user_pb2.DeleteUserRequest(name=me.name), metadata=owner.metadata)
    )
    assert delete.code() == grpc.StatusCode.FAILED_PRECONDITION
    service = await org.suite.service()
    by_service = await rpc_error(
        org.users.DeleteUser(user_pb2.DeleteUserRequest(name=me.name), metadata=service.metadata)
    )
    assert by_service.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_an_owner_can_be_demoted_while_another_remains(org: Org) -> None:
    owner = await org.suite.owner()
    second = (
        await org.users.CreateUser(
            _new(owner.org_name, role=user_pb2.ROLE_OWNER), metadata=owner.metadata
        )
    ).user
    demoted = await org.users.UpdateUser(
        _update(second, ["role"], role=user_pb2.ROLE_VIEWER), metadata=owner.metadata
    )
    assert demoted.user.role == user_pb2.ROLE_VIEWER
    me = await _owner_user(org)
    error = await rpc_error(
        org.users.UpdateUser(
            _update(me, ["role"], role=user_pb2.ROLE_ADMIN), metadata=owner.metadata
        )
    )
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_stale_etag_is_aborted_on_update_and_delete(org: Org) -> None:
    admin = await org.suite.user("ADMIN")
    member = (await org.users.CreateUser(_new(admin.org_name), metadata=admin.metadata)).user
    await org.users.UpdateUser(
        _update(member, ["display_name"], display_name="New"), metadata=admin.metadata
    )
    for call in (
        org.users.UpdateUser(
            _update(member, ["display_name"], display_name="Newer"), metadata=admin.metadata
        ),
        org.users.DeleteUser(
            user_pb2.DeleteUserRequest(name=member.name, etag=member.etag), metadata=admin.metadata
        ),
    ):
        error = await rpc_error(call)
        assert error.code() == grpc.StatusCode.ABORTED


async def test_update_reports_bad_mask_and_values_together(org: Org) -> None:
    admin = await org.suite.user("ADMIN")
    member = (await org.users.CreateUser(_new(admin.org_name), metadata=admin.metadata)).user
    error = await rpc_error(
        org.users.UpdateUser(
            _update(
                member, ["org_id", "email", "avatar_url", "nickname"], email="x@", avatar_url="nope"
            ),
            metadata=admin.metadata,
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request_fields(error) == {"update_mask", "user.email", "user.avatar_url"}


async def test_changing_email_to_a_taken_one_is_already_exists(org: Org) -> None:
    admin = await org.suite.user("ADMIN")
    a = (
        await org.users.CreateUser(_new(admin.org_name, "a@example.test"), metadata=admin.metadata)
    ).user
    await org.users.CreateUser(_new(admin.org_name, "b@example.test"), metadata=admin.metadata)
    error = await rpc_error(
        org.users.UpdateUser(_update(a, ["email"], email="B@example.test"), metadata=admin.metadata)
    )
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS


async def test_delete_user_removes_them_and_their_keys(org: Org) -> None:
    admin = await org.suite.user("ADMIN")
    member = await org.suite.user("MEMBER")
    name = f"{member.org_name}/users/{member.user_id}"
    await org.users.DeleteUser(user_pb2.DeleteUserRequest(name=name), metadata=admin.metadata)
    error = await rpc_error(
        org.users.GetUser(user_pb2.GetUserRequest(name=name), metadata=admin.metadata)
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert (
        await org.count(
            "SELECT count(*) FROM api_keys WHERE user_id = $1", uuid.UUID(member.user_id)
        )
        == 0
    )
    again = await rpc_error(
        org.users.DeleteUser(user_pb2.DeleteUserRequest(name=name), metadata=admin.metadata)
    )
    assert again.code() == grpc.StatusCode.NOT_FOUND


async def test_get_of_another_organizations_user_under_our_name_is_not_found(org: Org) -> None:
    _, other_owner = await org.suite.new_org()
    viewer = await org.suite.user("VIEWER")
    error = await rpc_error(
        org.users.GetUser(
            user_pb2.GetUserRequest(name=f"{viewer.org_name}/users/{other_owner.user_id}"),
            metadata=viewer.metadata,
        )
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND


async def test_list_users_pages_to_the_end_and_filters_by_role(org: Org) -> None:
    admin = await org.suite.user("ADMIN")
    for role in [user_pb2.ROLE_VIEWER] * 4 + [user_pb2.ROLE_MEMBER] * 2:
        await org.users.CreateUser(_new(admin.org_name, role=role), metadata=admin.metadata)
    viewer_names: list[str] = []
    token, pages = "", 0
    while True:
        page = await org.users.ListUsers(
            user_pb2.ListUsersRequest(
                parent=admin.org_name, page_size=3, page_token=token, role=user_pb2.ROLE_VIEWER
            ),
            metadata=admin.metadata,
        )
        pages += 1
        assert all(u.role == user_pb2.ROLE_VIEWER for u in page.users)
        viewer_names += [u.name for u in page.users]
        token = page.next_page_token
        if not token:
            break
    assert len(viewer_names) == 4 and len(set(viewer_names)) == 4 and pages == 2
    everyone = await org.users.ListUsers(
        user_pb2.ListUsersRequest(parent=admin.org_name), metadata=admin.metadata
    )
    # owner + admin + 6 created
    assert len(everyone.users) == 8
    times = [(u.create_time.ToNanoseconds(), u.id) for u in everyone.users]
    assert times == sorted(times)


async def test_list_users_rejects_a_tampered_token(org: Org) -> None:
    admin = await org.suite.user("ADMIN")
    page = await org.users.ListUsers(
        user_pb2.ListUsersRequest(parent=admin.org_name, page_size=1), metadata=admin.metadata
    )
    assert page.next_page_token
    body, mac = page.next_page_token.split(".")
    error = await rpc_error(
        org.users.ListUsers(
            user_pb2.ListUsersRequest(
                parent=admin.org_name, page_size=1, page_token=body + "." + mac[::-1]
            ),
            metadata=admin.metadata,
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request_fields(error) == {"page_token"}


async def test_two_owners_demoting_each_other_at_once_leave_one_owner(org: Org) -> None:
    import asyncio

    owner = await org.suite.owner()
    second = await org.suite.user("OWNER")
    me = await _owner_user(org)
    other = await _get(org, owner, f"{owner.org_name}/users/{second.user_id}")
    results = await asyncio.gather(
        org.users.UpdateUser(
            _update(other, ["role"], role=user_pb2.ROLE_ADMIN), metadata=owner.metadata
        ),
        org.users.UpdateUser(
            _update(me, ["role"], role=user_pb2.ROLE_ADMIN), metadata=second.metadata
        ),
        return_exceptions=True,
    )
    failures = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    # The loser was demoted by the winner: its owner token no longer counts.
    assert len(failures) == 1 and failures[0].code() == grpc.StatusCode.UNAUTHENTICATED
    assert error_info(failures[0]).reason == "TOKEN_REVOKED"
    assert (
        await org.count(
            "SELECT count(*) FROM users WHERE org_id = $1 AND role = 'OWNER'",
            uuid.UUID(owner.org_id),
        )
        == 1
    )


async def test_concurrent_retries_with_one_request_id_create_one_user(org: Org) -> None:
    import asyncio

    admin = await org.suite.user("ADMIN")
    request = _new(admin.org_name, request_id="parallel-1")
    results = await asyncio.gather(
        *(org.users.CreateUser(request, metadata=admin.metadata) for _ in range(5))
    )
    assert len({r.user.id for r in results}) == 1
    assert await org.count("SELECT count(*) FROM users WHERE email = $1", request.user.email) == 1


async def test_lists_under_an_organization_that_does_not_exist_are_not_found(org: Org) -> None:
    # A platform principal may name any organization; one that is not there is NOT_FOUND,
    # as GetOrganization answers, not an empty page.
    service = await org.suite.service()
    missing = f"organizations/{uuid.uuid4()}"
    for call in (
        org.users.ListUsers(user_pb2.ListUsersRequest(parent=missing), metadata=service.metadata),
        org.users.ListApiKeys(
            user_pb2.ListApiKeysRequest(parent=missing), metadata=service.metadata
        ),
    ):
        error = await rpc_error(call)
        assert error.code() == grpc.StatusCode.NOT_FOUND
