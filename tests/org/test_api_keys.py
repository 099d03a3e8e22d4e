"""API keys: shown once, stored hashed, listed without secrets, revoked for good."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta

import grpc
from google.protobuf import timestamp_pb2

from sensei.org.v1 import auth_pb2, user_pb2
from tests.harness import Identity, bad_request_fields, error_info
from tests.org.conftest import Org, rpc_error


def _key_request(
    who: Identity, user_id: str | None, request_id: str = "", **kw: object
) -> user_pb2.CreateApiKeyRequest:
    key = user_pb2.ApiKey(
        user=f"{who.org_name}/users/{user_id or who.user_id}",
        display_name=str(kw.get("display_name", "ci")),
    )
    if "expire_time" in kw:
        key.expire_time.CopyFrom(kw["expire_time"])  # type: ignore[arg-type]
    return user_pb2.CreateApiKeyRequest(parent=who.org_name, api_key=key, request_id=request_id)


async def test_the_secret_is_shown_once_and_only_its_hash_is_stored(org: Org) -> None:
    admin = await org.suite.user("ADMIN")
    created = await org.users.CreateApiKey(_key_request(admin, None), metadata=admin.metadata)
    secret = created.secret
    assert secret.startswith(created.api_key.prefix + "_")
    assert created.api_key.prefix.startswith("sk_")
    assert created.api_key.name == f"{admin.org_name}/apiKeys/{created.api_key.id}"
    conn = await org.db()
    try:
        row = await conn.fetchrow(
            "SELECT * FROM api_keys WHERE id = $1", uuid.UUID(created.api_key.id)
        )
    finally:
        await conn.close()
    assert row is not None
    assert bytes(row["secret_sha256"]) == hashlib.sha256(secret.encode()).digest()
    assert secret not in repr(dict(row))
    listed = await org.users.ListApiKeys(
        user_pb2.ListApiKeysRequest(parent=admin.org_name), metadata=admin.metadata
    )
    assert secret not in str(listed)
    assert created.api_key.id in {k.id for k in listed.api_keys}
    token = await org.suite.exchange(secret)
    assert token


async def test_a_repeated_request_id_returns_the_key_without_its_secret(org: Org) -> None:
    admin = await org.suite.user("ADMIN")
    request = _key_request(admin, None, request_id="key-1")
    first = await org.users.CreateApiKey(request, metadata=admin.metadata)
    again = await org.users.CreateApiKey(request, metadata=admin.metadata)
    assert first.secret and again.secret == ""
    assert again.api_key == first.api_key
    assert (
        await org.count(
            "SELECT count(*) FROM api_keys WHERE user_id = $1", uuid.UUID(admin.user_id or "")
        )
        == 2
    )
    conn = await org.db()
    try:
        stored = await conn.fetch("SELECT response FROM request_ids WHERE request_id = 'key-1'")
    finally:
        await conn.close()
    assert len(stored) == 1 and first.secret.encode() not in bytes(stored[0]["response"])


async def test_create_reports_every_violation_at_once(org: Org) -> None:
    admin = await org.suite.user("ADMIN")
    past = timestamp_pb2.Timestamp()
    past.FromDatetime(datetime.now(UTC) - timedelta(minutes=1))
    request = user_pb2.CreateApiKeyRequest(
        parent=admin.org_name,
        api_key=user_pb2.ApiKey(user="users/nope", display_name="", expire_time=past),
    )
    error = await rpc_error(org.users.CreateApiKey(request, metadata=admin.metadata))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request_fields(error) == {
        "api_key.user",
        "api_key.display_name",
        "api_key.expire_time",
    }


async def test_a_key_for_a_missing_user_is_not_found(org: Org) -> None:
    admin = await org.suite.user("ADMIN")
    error = await rpc_error(
        org.users.CreateApiKey(_key_request(admin, str(uuid.uuid4())), metadata=admin.metadata)
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND


async def test_admin_cannot_mint_keys_for_an_owner(org: Org) -> None:
    admin = await org.suite.user("ADMIN")
    error = await rpc_error(
        org.users.CreateApiKey(
            _key_request(admin, org.suite.owner_user_id), metadata=admin.metadata
        )
    )
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error_info(error).reason == "USER_ABOVE_CALLER"


async def test_a_revoked_key_cannot_be_exchanged_and_is_hidden_by_default(org: Org) -> None:
    admin = await org.suite.user("ADMIN")
    created = await org.users.CreateApiKey(_key_request(admin, None), metadata=admin.metadata)
    revoked = await org.users.RevokeApiKey(
        user_pb2.RevokeApiKeyRequest(name=created.api_key.name), metadata=admin.metadata
    )
    assert revoked.api_key.revoke_time.seconds > 0
    error = await rpc_error(
        org.auth.ExchangeApiKey(auth_pb2.ExchangeApiKeyRequest(api_key=created.secret))
    )
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error_info(error).reason == "API_KEY_REVOKED"
    active = await org.users.ListApiKeys(
        user_pb2.ListApiKeysRequest(parent=admin.org_name), metadata=admin.metadata
    )
    assert created.api_key.id not in {k.id for k in active.api_keys}
    everything = await org.users.ListApiKeys(
        user_pb2.ListApiKeysRequest(parent=admin.org_name, show_revoked=True),
        metadata=admin.metadata,
    )
    assert created.api_key.id in {k.id for k in everything.api_keys}
    # Revoking again is harmless and keeps the first time.
    again = await org.users.RevokeApiKey(
        user_pb2.RevokeApiKeyRequest(name=created.api_key.name), metadata=admin.metadata
    )
    assert again.api_key.revoke_time == revoked.api_key.revoke_time
    assert (
        await org.audit_count("action = 'api_key.revoke' AND resource_id = $1", created.api_key.id)
        == 1
    )


async def test_an_expired_key_cannot_be_exchanged(org: Org) -> None:
    admin = await org.suite.user("ADMIN")
    soon = timestamp_pb2.Timestamp()
    soon.FromDatetime(datetime.now(UTC) + timedelta(hours=1))
    created = await org.users.CreateApiKey(
        _key_request(admin, None, expire_time=soon), metadata=admin.metadata
    )
    assert created.api_key.expire_time == soon
    await org.suite.exchange(created.secret)
    conn = await org.db()
    try:
        await conn.execute(
            "UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = $1",
            uuid.UUID(created.api_key.id),
        )
    finally:
        await conn.close()
    error = await rpc_error(
        org.auth.ExchangeApiKey(auth_pb2.ExchangeApiKeyRequest(api_key=created.secret))
    )
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error_info(error).reason == "API_KEY_EXPIRED"


async def test_list_filters_by_user_and_pages_to_the_end(org: Org) -> None:
    admin = await org.suite.user("ADMIN")
    member = await org.suite.user("MEMBER")
    for _ in range(4):
        await org.users.CreateApiKey(_key_request(admin, member.user_id), metadata=admin.metadata)
    member_name = f"{admin.org_name}/users/{member.user_id}"
    ids: list[str] = []
    token = ""
    while True:
        page = await org.users.ListApiKeys(
            user_pb2.ListApiKeysRequest(
                parent=admin.org_name, user=member_name, page_size=2, page_token=token
            ),
            metadata=admin.metadata,
        )
        assert all(k.user == member_name for k in page.api_keys)
        ids += [k.id for k in page.api_keys]
        token = page.next_page_token
        if not token:
            break
    assert len(ids) == 5 and len(set(ids)) == 5  # 4 + the one the harness made
    error = await rpc_error(
        org.users.ListApiKeys(
            user_pb2.ListApiKeysRequest(parent=admin.org_name, page_token="x.y"),
            metadata=admin.metadata,
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_list_rejects_a_user_of_another_organization(org: Org) -> None:
    _, other_owner = await org.suite.new_org()
    admin = await org.suite.user("ADMIN")
    error = await rpc_error(
        org.users.ListApiKeys(
            user_pb2.ListApiKeysRequest(
                parent=admin.org_name, user=f"{other_owner.org_name}/users/{other_owner.user_id}"
            ),
            metadata=admin.metadata,
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request_fields(error) == {"user"}
