"""Access tokens: claims, what is refused (expired, forged, wrong alg, unknown key), rotation."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

import grpc
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from sensei.org.v1 import auth_pb2, organization_pb2
from services.org.tokens import KeyVault, SigningKey
from shared.token_verification import public_key_from_jwk
from tests.harness import Suite, error_info
from tests.harness.keys import KEY_ENCRYPTION_KEY, active_token_signing_key
from tests.org.conftest import Org, code_of, rpc_error


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def _active_private_key(org: Org) -> tuple[str, ec.EllipticCurvePrivateKey]:
    conn = await org.db()
    try:
        return await active_token_signing_key(conn)
    finally:
        await conn.close()


def _claims(org_id: str, **override: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": "sensei-org",
        "aud": "sensei",
        "sub": f"users/{uuid.uuid4()}",
        "role": "OWNER",
        "org": org_id,
        "iat": now,
        "exp": now + 600,
        "jti": str(uuid.uuid4()),
    }
    claims.update(override)
    return claims


async def _get_own_org(org: Org, token: str) -> grpc.StatusCode:
    return await code_of(
        org.orgs.GetOrganization(
            organization_pb2.GetOrganizationRequest(name=f"organizations/{org.suite.org_id}"),
            metadata=(("authorization", f"Bearer {token}"),),
        )
    )


async def test_exchanged_token_carries_the_documented_claims(org: Org) -> None:
    response = await org.auth.ExchangeApiKey(
        auth_pb2.ExchangeApiKeyRequest(api_key=org.suite.owner_api_key)
    )
    assert response.token_type == "Bearer"
    header = jwt.get_unverified_header(response.access_token)
    jwks = await org.auth.GetJwks(auth_pb2.GetJwksRequest())
    [jwk] = [k for k in jwks.keys if k.kid == header["kid"]]
    assert header["alg"] == "ES256"
    assert (jwk.kty, jwk.crv, jwk.alg, jwk.use) == ("EC", "P-256", "ES256", "sig")
    claims = jwt.decode(
        response.access_token,
        public_key_from_jwk({"kty": jwk.kty, "crv": jwk.crv, "x": jwk.x, "y": jwk.y}),
        algorithms=["ES256"],
        audience="sensei",
        issuer="sensei-org",
    )
    assert claims["sub"] == f"users/{org.suite.owner_user_id}"
    assert claims["org"] == org.suite.org_id
    assert claims["role"] == "OWNER"
    assert claims["exp"] - claims["iat"] == 15 * 60
    assert claims["exp"] == response.expire_time.seconds
    uuid.UUID(claims["jti"])
    uuid.UUID(claims["akid"])
    assert json.loads(jwks.jwks_json)["keys"][0]["kid"] == jwks.keys[0].kid


async def test_service_token_has_no_org_and_role_service(org: Org) -> None:
    service = await org.suite.service()
    claims = jwt.decode(service.token, options={"verify_signature": False})
    assert claims["role"] == "SERVICE"
    assert claims["sub"].startswith("serviceAccounts/")
    assert "org" not in claims


async def test_token_lifetime_is_configurable(suite: Suite) -> None:
    await suite.start("org", env={"SENSEI_ORG_TOKEN_TTL_SECONDS": "60"})
    owner = await suite.owner()
    claims = jwt.decode(owner.token, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 60


async def test_a_genuine_token_made_here_is_accepted(org: Org) -> None:
    kid, private = await _active_private_key(org)
    conn = await org.db()
    try:
        key_id = await conn.fetchval(
            "SELECT id FROM api_keys WHERE user_id = $1", uuid.UUID(org.suite.owner_user_id)
        )
    finally:
        await conn.close()
    claims = _claims(org.suite.org_id, sub=f"users/{org.suite.owner_user_id}", akid=str(key_id))
    token = jwt.encode(claims, private, algorithm="ES256", headers={"kid": kid})
    assert await _get_own_org(org, token) == grpc.StatusCode.OK


async def test_a_genuine_token_that_names_no_api_key_does_not_count(org: Org) -> None:
    kid, private = await _active_private_key(org)
    token = jwt.encode(_claims(org.suite.org_id), private, algorithm="ES256", headers={"kid": kid})
    error = await rpc_error(
        org.orgs.GetOrganization(
            organization_pb2.GetOrganizationRequest(name=f"organizations/{org.suite.org_id}"),
            metadata=(("authorization", f"Bearer {token}"),),
        )
    )
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error_info(error).reason == "TOKEN_REVOKED"


async def test_an_expired_token_is_unauthenticated(org: Org) -> None:
    kid, private = await _active_private_key(org)
    past = int(time.time()) - 3600
    token = jwt.encode(
        _claims(org.suite.org_id, iat=past - 900, exp=past),
        private,
        algorithm="ES256",
        headers={"kid": kid},
    )
    error = await rpc_error(
        org.orgs.GetOrganization(
            organization_pb2.GetOrganizationRequest(name=f"organizations/{org.suite.org_id}"),
            metadata=(("authorization", f"Bearer {token}"),),
        )
    )
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error_info(error).reason == "TOKEN_EXPIRED"


async def test_a_token_signed_by_another_key_under_our_kid_is_refused(org: Org) -> None:
    kid, _ = await _active_private_key(org)
    forger = ec.generate_private_key(ec.SECP256R1())
    token = jwt.encode(_claims(org.suite.org_id), forger, algorithm="ES256", headers={"kid": kid})
    assert await _get_own_org(org, token) == grpc.StatusCode.UNAUTHENTICATED


async def test_a_tampered_payload_is_refused(org: Org) -> None:
    owner = await org.suite.user("VIEWER")
    header, payload, signature = owner.token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["role"] = "OWNER"
    forged = ".".join([header, _b64(json.dumps(claims).encode()), signature])
    assert await _get_own_org(org, forged) == grpc.StatusCode.UNAUTHENTICATED


async def test_alg_none_and_hs256_confusion_are_refused(org: Org) -> None:
    kid, private = await _active_private_key(org)
    claims = _claims(org.suite.org_id)
    none_token = (
        _b64(json.dumps({"alg": "none", "typ": "JWT", "kid": kid}).encode())
        + "."
        + _b64(json.dumps(claims).encode())
        + "."
    )
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = (
        _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
        + "."
        + _b64(json.dumps(claims).encode())
    )
    import hashlib
    import hmac

    hs_token = (
        signing_input
        + "."
        + _b64(hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest())
    )
    for token in (none_token, hs_token):
        assert await _get_own_org(org, token) == grpc.StatusCode.UNAUTHENTICATED


async def test_an_unknown_kid_is_refused(org: Org) -> None:
    _, private = await _active_private_key(org)
    token = jwt.encode(
        _claims(org.suite.org_id), private, algorithm="ES256", headers={"kid": "f" * 64}
    )
    error = await rpc_error(
        org.orgs.GetOrganization(
            organization_pb2.GetOrganizationRequest(name=f"organizations/{org.suite.org_id}"),
            metadata=(("authorization", f"Bearer {token}"),),
        )
    )
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error_info(error).reason == "TOKEN_UNKNOWN_KEY"


async def test_wrong_issuer_or_audience_is_refused(org: Org) -> None:
    kid, private = await _active_private_key(org)
    for override in ({"iss": "someone-else"}, {"aud": "other"}):
        token = jwt.encode(
            _claims(org.suite.org_id, **override), private, algorithm="ES256", headers={"kid": kid}
        )
        assert await _get_own_org(org, token) == grpc.StatusCode.UNAUTHENTICATED


async def test_garbage_api_keys_are_unauthenticated(org: Org) -> None:
    for secret in ("", "nope", "sk_00000000_" + "A" * 43):
        error = await rpc_error(
            org.auth.ExchangeApiKey(auth_pb2.ExchangeApiKeyRequest(api_key=secret))
        )
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED
        assert error_info(error).reason == "API_KEY_INVALID"


async def test_rotation_keeps_earlier_tokens_valid_and_signs_with_the_new_key(org: Org) -> None:
    owner = await org.suite.owner()
    service = await org.suite.service()
    old_kid = jwt.get_unverified_header(owner.token)["kid"]
    rotated = await org.auth.RotateTokenSigningKey(
        auth_pb2.RotateTokenSigningKeyRequest(), metadata=service.metadata
    )
    assert rotated.key.kid != old_kid
    jwks = await org.auth.GetJwks(auth_pb2.GetJwksRequest())
    assert [k.kid for k in jwks.keys] == [rotated.key.kid, old_kid]
    assert await _get_own_org(org, owner.token) == grpc.StatusCode.OK
    fresh = await org.suite.exchange(org.suite.owner_api_key)
    assert jwt.get_unverified_header(fresh)["kid"] == rotated.key.kid
    assert await _get_own_org(org, fresh) == grpc.StatusCode.OK


async def test_only_services_rotate_keys_and_create_service_accounts(org: Org) -> None:
    owner = await org.suite.owner()
    for call in (
        org.auth.RotateTokenSigningKey(
            auth_pb2.RotateTokenSigningKeyRequest(), metadata=owner.metadata
        ),
        org.auth.CreateServiceAccount(
            auth_pb2.CreateServiceAccountRequest(
                service_account=auth_pb2.ServiceAccount(display_name="x")
            ),
            metadata=owner.metadata,
        ),
    ):
        assert await code_of(call) == grpc.StatusCode.PERMISSION_DENIED


async def test_a_new_service_account_key_exchanges_for_a_service_token(org: Org) -> None:
    service = await org.suite.service()
    created = await org.auth.CreateServiceAccount(
        auth_pb2.CreateServiceAccountRequest(
            service_account=auth_pb2.ServiceAccount(display_name="pattern-workers")
        ),
        metadata=service.metadata,
    )
    account = created.service_account
    assert account.name == f"serviceAccounts/{account.id}"
    token = await org.suite.exchange(created.api_key)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["sub"] == account.name and claims["role"] == "SERVICE"
    error = await rpc_error(
        org.auth.CreateServiceAccount(
            auth_pb2.CreateServiceAccountRequest(service_account=auth_pb2.ServiceAccount()),
            metadata=service.metadata,
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_private_keys_are_sealed_at_rest(org: Org) -> None:
    kid, private = await _active_private_key(org)
    der = private.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    conn = await org.db()
    try:
        sealed = await conn.fetchval(
            "SELECT private_key_encrypted FROM token_signing_keys WHERE kid = $1", kid
        )
    finally:
        await conn.close()
    assert der not in bytes(sealed)
    other = KeyVault(b"\x01" * 32)
    try:
        other.unseal(
            SigningKey(kid, b"", bytes(sealed), other.kek_id, "ACTIVE", None, None)  # type: ignore[arg-type]
        )
    except Exception as exc:  # wrong KEK cannot open it
        assert exc.__class__.__name__ == "InvalidTag"
    else:
        raise AssertionError("a different KEK opened the key")


async def test_replicas_starting_together_create_one_signing_key(suite: Suite) -> None:
    import asyncio

    from services.org.tokens import TokenSigner
    from services.org.use_cases.tokens import TokenAuthority
    from shared.db import create_pool

    pool = await create_pool(suite.database_url, "org")
    try:
        authorities = [
            TokenAuthority(pool, TokenSigner(KeyVault.from_setting(KEY_ENCRYPTION_KEY)))
            for _ in range(5)
        ]
        keys = await asyncio.gather(*(a.ensure_signing_key() for a in authorities))
        assert len({k.kid for k in keys}) == 1
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT count(*) FROM token_signing_keys") == 1
    finally:
        await pool.close()
