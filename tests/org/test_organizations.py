"""OrganizationService over a real channel: create, get, lookup, list, update, delete."""

from __future__ import annotations

import uuid
from typing import Any

import grpc
from google.protobuf import field_mask_pb2, struct_pb2

from sensei.org.v1 import auth_pb2, organization_pb2
from shared.outbox import PLATFORM_ORG_ID
from tests.harness import bad_request_fields, error_info
from tests.org.conftest import Org, code_of, rpc_error

Organization = organization_pb2.Organization


def _slug() -> str:
    return f"org-{uuid.uuid4().hex[:10]}"


def _create(slug: str, request_id: str = "", **fields: object) -> Any:
    return organization_pb2.CreateOrganizationRequest(
        organization=Organization(display_name=f"Org {slug}", slug=slug, **fields),  # type: ignore[arg-type]
        request_id=request_id,
    )


async def test_service_creates_an_organization_on_the_free_plan_by_default(org: Org) -> None:
    service = await org.suite.service()
    settings = struct_pb2.Struct()
    settings.update({"region": "eu", "limits": {"seats": 5}})
    slug = _slug()
    created = await org.orgs.CreateOrganization(
        _create(slug, settings=settings), metadata=service.metadata
    )
    made = created.organization
    assert made.name == f"organizations/{made.id}"
    assert made.slug == slug
    assert made.plan == organization_pb2.PLAN_FREE
    assert dict(made.settings)["region"] == "eu"
    assert made.etag and made.create_time.seconds and made.update_time.seconds
    got = await org.orgs.GetOrganization(
        organization_pb2.GetOrganizationRequest(name=made.name), metadata=service.metadata
    )
    assert got.organization == made


async def test_create_reports_every_violation_at_once(org: Org) -> None:
    service = await org.suite.service()
    error = await rpc_error(
        org.orgs.CreateOrganization(
            organization_pb2.CreateOrganizationRequest(
                organization=Organization(display_name="  ", slug="9-Bad_slug-", plan=42)  # type: ignore[arg-type]
            ),
            metadata=service.metadata,
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request_fields(error) == {
        "organization.display_name",
        "organization.slug",
        "organization.plan",
    }


async def test_settings_that_json_cannot_hold_are_invalid(org: Org) -> None:
    service = await org.suite.service()
    settings = struct_pb2.Struct()
    settings.update({"ratio": float("nan")})
    error = await rpc_error(
        org.orgs.CreateOrganization(_create("x", settings=settings), metadata=service.metadata)
    )
    assert bad_request_fields(error) == {"organization.slug", "organization.settings"}


async def test_duplicate_slug_is_already_exists(org: Org) -> None:
    service = await org.suite.service()
    error = await rpc_error(org.orgs.CreateOrganization(_create("acme"), metadata=service.metadata))
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS
    assert error_info(error).reason == "ORGANIZATION_ALREADY_EXISTS"


async def test_repeated_request_id_returns_the_first_result_and_writes_nothing(org: Org) -> None:
    service = await org.suite.service()
    slug = _slug()
    first = await org.orgs.CreateOrganization(_create(slug, "req-1"), metadata=service.metadata)
    audit_before = await org.audit_count("true")
    again = await org.orgs.CreateOrganization(_create(slug, "req-1"), metadata=service.metadata)
    assert again == first
    assert await org.count("SELECT count(*) FROM organizations WHERE slug = $1", slug) == 1
    assert await org.audit_count("true") == audit_before


async def test_request_id_reused_for_another_body_is_invalid(org: Org) -> None:
    service = await org.suite.service()
    await org.orgs.CreateOrganization(_create(_slug(), "req-2"), metadata=service.metadata)
    error = await rpc_error(
        org.orgs.CreateOrganization(_create(_slug(), "req-2"), metadata=service.metadata)
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(error).reason == "REQUEST_ID_REUSED"


async def test_create_records_an_audit_event(org: Org) -> None:
    service = await org.suite.service()
    created = await org.orgs.CreateOrganization(_create(_slug()), metadata=service.metadata)
    await org.audit_settled()
    conn = await org.db()
    try:
        row = await conn.fetchrow(
            "SELECT actor, action, resource_type, resource_id, org_id::text AS org_id"
            " FROM audit_logs WHERE resource_id = $1 AND org_id = $2::uuid",
            created.organization.id,
            created.organization.id,
        )
        platform = await conn.fetchrow(
            "SELECT actor FROM audit_logs WHERE resource_id = $1 AND org_id = $2::uuid",
            created.organization.id,
            PLATFORM_ORG_ID,
        )
    finally:
        await conn.close()
    assert row is not None
    assert row["action"] == "organization.create"
    assert row["org_id"] == created.organization.id
    assert row["actor"].startswith("serviceAccounts/")
    # The platform chain records it too: a platform principal acted.
    assert platform is not None and platform["actor"] == row["actor"]


async def test_get_of_a_missing_organization_is_not_found(org: Org) -> None:
    service = await org.suite.service()
    error = await rpc_error(
        org.orgs.GetOrganization(
            organization_pb2.GetOrganizationRequest(name=f"organizations/{uuid.uuid4()}"),
            metadata=service.metadata,
        )
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND


async def test_malformed_name_is_invalid(org: Org) -> None:
    service = await org.suite.service()
    error = await rpc_error(
        org.orgs.GetOrganization(
            organization_pb2.GetOrganizationRequest(name="organizations/not-a-uuid"),
            metadata=service.metadata,
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request_fields(error) == {"name"}


async def test_user_looks_up_their_own_organization_by_slug(org: Org) -> None:
    viewer = await org.suite.user("VIEWER")
    found = await org.orgs.LookupOrganization(
        organization_pb2.LookupOrganizationRequest(slug="acme"), metadata=viewer.metadata
    )
    assert found.organization.id == org.suite.org_id


async def test_lookup_of_another_slug_is_denied_whether_or_not_it_exists(org: Org) -> None:
    other, _ = await org.suite.new_org()
    owner = await org.suite.owner()
    for slug in (other.slug, "no-such-org"):
        error = await rpc_error(
            org.orgs.LookupOrganization(
                organization_pb2.LookupOrganizationRequest(slug=slug), metadata=owner.metadata
            )
        )
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED
        assert error.details() == "you may only look up your own organization"


async def test_service_looks_up_any_slug_and_missing_ones_are_not_found(org: Org) -> None:
    other, _ = await org.suite.new_org()
    service = await org.suite.service()
    found = await org.orgs.LookupOrganization(
        organization_pb2.LookupOrganizationRequest(slug=other.slug), metadata=service.metadata
    )
    assert found.organization.id == other.id
    assert (
        await code_of(
            org.orgs.LookupOrganization(
                organization_pb2.LookupOrganizationRequest(slug="no-such-org"),
                metadata=service.metadata,
            )
        )
        == grpc.StatusCode.NOT_FOUND
    )


async def test_users_list_only_their_own_organization(org: Org) -> None:
    await org.suite.new_org()
    viewer = await org.suite.user("VIEWER")
    listed = await org.orgs.ListOrganizations(
        organization_pb2.ListOrganizationsRequest(), metadata=viewer.metadata
    )
    assert [o.id for o in listed.organizations] == [org.suite.org_id]
    assert listed.next_page_token == ""


async def test_service_pages_through_all_organizations_of_a_plan(org: Org) -> None:
    service = await org.suite.service()
    pro = set()
    for _ in range(5):
        created = await org.orgs.CreateOrganization(
            _create(_slug(), plan=organization_pb2.PLAN_PRO), metadata=service.metadata
        )
        pro.add(created.organization.id)
    await org.orgs.CreateOrganization(_create(_slug()), metadata=service.metadata)
    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        page = await org.orgs.ListOrganizations(
            organization_pb2.ListOrganizationsRequest(
                page_size=2, page_token=token, plan=organization_pb2.PLAN_PRO
            ),
            metadata=service.metadata,
        )
        seen += [o.id for o in page.organizations]
        assert all(o.plan == organization_pb2.PLAN_PRO for o in page.organizations)
        pages += 1
        token = page.next_page_token
        if not token:
            break
    assert seen == sorted(seen, key=seen.index) and set(seen) == pro and len(seen) == 5
    assert pages == 3
    everything = await org.orgs.ListOrganizations(
        organization_pb2.ListOrganizationsRequest(), metadata=service.metadata
    )
    assert len(everything.organizations) == 7


async def test_tampered_or_foreign_page_token_is_invalid(org: Org) -> None:
    service = await org.suite.service()
    for _ in range(3):
        await org.orgs.CreateOrganization(_create(_slug()), metadata=service.metadata)
    page = await org.orgs.ListOrganizations(
        organization_pb2.ListOrganizationsRequest(page_size=1), metadata=service.metadata
    )
    body, mac = page.next_page_token.split(".")
    tampered = body[:-2] + ("AA" if body[-2:] != "AA" else "BB") + "." + mac
    for token, plan in (
        (tampered, organization_pb2.PLAN_UNSPECIFIED),
        ("garbage", organization_pb2.PLAN_UNSPECIFIED),
        (page.next_page_token, organization_pb2.PLAN_PRO),  # other filters
    ):
        error = await rpc_error(
            org.orgs.ListOrganizations(
                organization_pb2.ListOrganizationsRequest(page_size=1, page_token=token, plan=plan),
                metadata=service.metadata,
            )
        )
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert bad_request_fields(error) == {"page_token"}


async def test_negative_page_size_is_invalid(org: Org) -> None:
    service = await org.suite.service()
    error = await rpc_error(
        org.orgs.ListOrganizations(
            organization_pb2.ListOrganizationsRequest(page_size=-1), metadata=service.metadata
        )
    )
    assert bad_request_fields(error) == {"page_size"}


async def _own(org: Org) -> Organization:
    owner = await org.suite.owner()
    got = await org.orgs.GetOrganization(
        organization_pb2.GetOrganizationRequest(name=owner.org_name), metadata=owner.metadata
    )
    return got.organization


def _update(
    current: Organization, paths: list[str], etag: str | None = None, **values: object
) -> organization_pb2.UpdateOrganizationRequest:
    changed = Organization(name=current.name, etag=current.etag if etag is None else etag)
    for key, value in values.items():
        if key == "settings":
            changed.settings.update(value)  # type: ignore[arg-type]
        else:
            setattr(changed, key, value)
    return organization_pb2.UpdateOrganizationRequest(
        organization=changed, update_mask=field_mask_pb2.FieldMask(paths=paths)
    )


async def test_admin_updates_name_and_settings_and_the_etag_changes(org: Org) -> None:
    admin = await org.suite.user("ADMIN")
    current = await _own(org)
    updated = await org.orgs.UpdateOrganization(
        _update(
            current,
            ["display_name", "settings"],
            display_name="Acme Two",
            settings={"theme": "dark"},
        ),
        metadata=admin.metadata,
    )
    made = updated.organization
    assert made.display_name == "Acme Two"
    assert dict(made.settings) == {"theme": "dark"}
    assert made.slug == current.slug and made.plan == current.plan
    assert made.etag != current.etag
    assert made.update_time.ToDatetime() >= current.update_time.ToDatetime()


async def test_stale_etag_is_aborted(org: Org) -> None:
    owner = await org.suite.owner()
    current = await _own(org)
    await org.orgs.UpdateOrganization(
        _update(current, ["display_name"], display_name="First"), metadata=owner.metadata
    )
    error = await rpc_error(
        org.orgs.UpdateOrganization(
            _update(current, ["display_name"], display_name="Second"), metadata=owner.metadata
        )
    )
    assert error.code() == grpc.StatusCode.ABORTED
    assert error_info(error).reason == "ETAG_MISMATCH"


async def test_update_without_etag_applies(org: Org) -> None:
    owner = await org.suite.owner()
    current = await _own(org)
    updated = await org.orgs.UpdateOrganization(
        _update(current, ["display_name"], etag="", display_name="No Etag"),
        metadata=owner.metadata,
    )
    assert updated.organization.display_name == "No Etag"


async def test_bad_masks_and_values_are_reported_together(org: Org) -> None:
    owner = await org.suite.owner()
    current = await _own(org)
    error = await rpc_error(
        org.orgs.UpdateOrganization(
            _update(current, ["id", "colour", "slug", "display_name"], slug="-x", display_name=""),
            metadata=owner.metadata,
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request_fields(error) == {
        "update_mask",
        "organization.slug",
        "organization.display_name",
    }
    empty = await rpc_error(
        org.orgs.UpdateOrganization(_update(current, []), metadata=owner.metadata)
    )
    assert bad_request_fields(empty) == {"update_mask"}


async def test_admin_cannot_change_the_plan_but_owner_and_service_can(org: Org) -> None:
    admin = await org.suite.user("ADMIN")
    owner = await org.suite.owner()
    service = await org.suite.service()
    current = await _own(org)
    error = await rpc_error(
        org.orgs.UpdateOrganization(
            _update(current, ["plan"], plan=organization_pb2.PLAN_PRO), metadata=admin.metadata
        )
    )
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error_info(error).reason == "PLAN_NEEDS_OWNER"
    by_owner = await org.orgs.UpdateOrganization(
        _update(current, ["plan"], plan=organization_pb2.PLAN_PRO), metadata=owner.metadata
    )
    assert by_owner.organization.plan == organization_pb2.PLAN_PRO
    by_service = await org.orgs.UpdateOrganization(
        _update(by_owner.organization, ["plan"], plan=organization_pb2.PLAN_ENTERPRISE),
        metadata=service.metadata,
    )
    assert by_service.organization.plan == organization_pb2.PLAN_ENTERPRISE


async def test_changing_to_a_taken_slug_is_already_exists(org: Org) -> None:
    other, _ = await org.suite.new_org()
    owner = await org.suite.owner()
    error = await rpc_error(
        org.orgs.UpdateOrganization(
            _update(await _own(org), ["slug"], slug=other.slug), metadata=owner.metadata
        )
    )
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS


async def test_delete_removes_the_organization_its_users_and_keys(org: Org) -> None:
    other, other_owner = await org.suite.new_org()
    key = await org.count("SELECT count(*) FROM api_keys WHERE org_id = $1", uuid.UUID(other.id))
    assert key >= 1
    stale = await rpc_error(
        org.orgs.DeleteOrganization(
            organization_pb2.DeleteOrganizationRequest(name=other.name, etag="stale"),
            metadata=other_owner.metadata,
        )
    )
    assert stale.code() == grpc.StatusCode.ABORTED
    await org.orgs.DeleteOrganization(
        organization_pb2.DeleteOrganizationRequest(name=other.name, etag=other.etag),
        metadata=other_owner.metadata,
    )
    oid = uuid.UUID(other.id)
    assert await org.count("SELECT count(*) FROM organizations WHERE id = $1", oid) == 0
    assert await org.count("SELECT count(*) FROM users WHERE org_id = $1", oid) == 0
    assert await org.count("SELECT count(*) FROM api_keys WHERE org_id = $1", oid) == 0
    assert (
        await org.audit_count("action = 'organization.delete' AND resource_id = $1", other.id) == 1
    )
    # The owner's token still verifies, but no longer counts: its organization is gone.
    error = await rpc_error(
        org.orgs.GetOrganization(
            organization_pb2.GetOrganizationRequest(name=other.name),
            metadata=other_owner.metadata,
        )
    )
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error_info(error).reason == "TOKEN_REVOKED"


async def test_keys_of_a_deleted_organization_cannot_be_exchanged(org: Org) -> None:
    service = await org.suite.service()
    created = await org.orgs.CreateOrganization(_create(_slug()), metadata=service.metadata)
    from sensei.org.v1 import user_pb2

    user = await org.users.CreateUser(
        user_pb2.CreateUserRequest(
            parent=created.organization.name,
            user=user_pb2.User(
                email="gone@example.test", display_name="Gone", role=user_pb2.ROLE_OWNER
            ),
        ),
        metadata=service.metadata,
    )
    key = await org.users.CreateApiKey(
        user_pb2.CreateApiKeyRequest(
            parent=created.organization.name,
            api_key=user_pb2.ApiKey(user=user.user.name, display_name="k"),
        ),
        metadata=service.metadata,
    )
    token = await org.suite.exchange(key.secret)
    await org.orgs.DeleteOrganization(
        organization_pb2.DeleteOrganizationRequest(name=created.organization.name),
        metadata=(("authorization", f"Bearer {token}"),),
    )
    error = await rpc_error(
        org.auth.ExchangeApiKey(auth_pb2.ExchangeApiKeyRequest(api_key=key.secret))
    )
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
