"""Bad access tokens are refused by every service, not only by org (which has its own token
tests in tests/org/test_tokens.py): expired, forged, tampered, `alg: none`, HS256 signed
with the public key (algorithm confusion), unknown key id, wrong issuer or audience, and
API keys that were revoked."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from sensei.migration.v1 import migration_pb2
from sensei.org.v1 import auth_pb2, auth_pb2_grpc, user_pb2, user_pb2_grpc
from sensei.pattern.v1 import pattern_pb2
from sensei.verification.v1 import verification_pb2
from tests.harness import Identity, error_info
from tests.harness.keys import active_token_signing_key
from tests.reliability.catalog import all_rpcs, call_raw
from tests.reliability.conftest import Stack

RPCS = {rpc.id: rpc for rpc in all_rpcs()}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def _signing_key(stack: Stack) -> tuple[str, ec.EllipticCurvePrivateKey]:
    conn = await stack.db("org")
    try:
        return await active_token_signing_key(conn)
    finally:
        await conn.close()


def _claims(who: Identity, **override: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": "sensei-org",
        "aud": "sensei",
        "sub": f"users/{who.user_id}",
        "role": who.role,
        "org": who.org_id,
        "iat": now,
        "exp": now + 600,
        "jti": str(uuid.uuid4()),
    }
    claims.update(override)
    return claims


def _unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(claims).encode())


def bad_tokens(kid: str, private: ec.EllipticCurvePrivateKey, who: Identity) -> dict[str, str]:
    """Tokens no service may accept, by what is wrong with them."""
    claims = _claims(who)
    past = int(time.time()) - 3600
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    hs_input = _unsigned({"alg": "HS256", "typ": "JWT", "kid": kid}, claims)
    hs_signature = hmac.new(public_pem, hs_input.encode(), hashlib.sha256).digest()
    genuine = jwt.encode(claims, private, algorithm="ES256", headers={"kid": kid})
    header, _, signature = genuine.split(".")
    escalated = dict(claims, role="OWNER", org=str(uuid.uuid4()))
    forger = ec.generate_private_key(ec.SECP256R1())

    def signed(**override: Any) -> str:
        return jwt.encode(
            _claims(who, **override), private, algorithm="ES256", headers={"kid": kid}
        )

    return {
        "expired": signed(iat=past - 900, exp=past),
        "not-yet-issued-and-expired": signed(iat=past, exp=past + 1),
        "forged-signature": jwt.encode(claims, forger, algorithm="ES256", headers={"kid": kid}),
        "tampered-payload": f"{header}.{_b64(json.dumps(escalated).encode())}.{signature}",
        "alg-none": _unsigned({"alg": "none", "typ": "JWT", "kid": kid}, claims) + ".",
        "alg-none-with-signature": _unsigned({"alg": "none", "kid": kid}, claims) + "." + signature,
        "hs256-public-key-as-secret": f"{hs_input}.{_b64(hs_signature)}",
        "es512-header": _unsigned({"alg": "ES512", "kid": kid}, claims) + "." + signature,
        "unknown-kid": jwt.encode(claims, private, algorithm="ES256", headers={"kid": "f" * 64}),
        "no-kid": jwt.encode(claims, private, algorithm="ES256"),
        "wrong-issuer": signed(iss="someone-else"),
        "wrong-audience": signed(aud="another-system"),
        "no-expiry": jwt.encode(
            {k: v for k, v in claims.items() if k != "exp"},
            private,
            algorithm="ES256",
            headers={"kid": kid},
        ),
        "unknown-role": signed(role="ROOT"),
        "org-not-a-uuid": signed(org="organizations/x"),
        "garbage": "not.a.token",
        "empty-segments": "..",
    }


# One read RPC per non-org service, against the caller's own organization.
PROBES: dict[str, Callable[[Stack], Any]] = {
    "MigrationService.ListMigrations": lambda s: migration_pb2.ListMigrationsRequest(
        parent=s.owner.org_name
    ),
    "MigrationService.WatchMigration": lambda s: migration_pb2.WatchMigrationRequest(
        name=f"{s.owner.org_name}/migrations/{uuid.uuid4()}"
    ),
    "VerificationService.ListVerifications": lambda s: verification_pb2.ListVerificationsRequest(
        parent=f"{s.owner.org_name}/migrations/-"
    ),
    "PatternService.GetPatternIndex": lambda s: pattern_pb2.GetPatternIndexRequest(),
}


async def _code(stack: Stack, rpc_id: str, token: str | None, raw_header: str | None = None) -> Any:
    rpc = RPCS[rpc_id]
    value = raw_header if raw_header is not None else f"Bearer {token}"
    outcome = await call_raw(
        stack.channel(rpc.server),
        rpc,
        PROBES[rpc_id](stack).SerializeToString(),
        (("authorization", value),),
        stream_seconds=2,
        until_first=True,
    )
    return outcome


@pytest.mark.parametrize("rpc_id", sorted(PROBES))
async def test_bad_tokens_are_unauthenticated_by(stack: Stack, rpc_id: str) -> None:
    kid, private = await _signing_key(stack)
    genuine = jwt.encode(_claims(stack.owner), private, algorithm="ES256", headers={"kid": kid})
    assert (await _code(stack, rpc_id, genuine)).code in {
        grpc.StatusCode.OK,
        grpc.StatusCode.NOT_FOUND,
    }
    wrong = {}
    for label, token in bad_tokens(kid, private, stack.owner).items():
        outcome = await _code(stack, rpc_id, token)
        if outcome.code != grpc.StatusCode.UNAUTHENTICATED:
            wrong[label] = outcome.code.name
    for label, header in {
        "basic-scheme": f"Basic {base64.b64encode(b'owner:secret').decode()}",
        "bearer-without-token": "Bearer ",
        "token-without-scheme": genuine,
    }.items():
        outcome = await _code(stack, rpc_id, None, raw_header=header)
        if outcome.code != grpc.StatusCode.UNAUTHENTICATED:
            wrong[label] = outcome.code.name
    assert not wrong, wrong


async def test_an_expired_token_says_so(stack: Stack) -> None:
    kid, private = await _signing_key(stack)
    past = int(time.time()) - 3600
    token = jwt.encode(
        _claims(stack.owner, iat=past - 900, exp=past),
        private,
        algorithm="ES256",
        headers={"kid": kid},
    )
    migrations = RPCS["MigrationService.ListMigrations"]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stack.channel("migration").unary_unary(
            migrations.path,
            request_serializer=migration_pb2.ListMigrationsRequest.SerializeToString,
            response_deserializer=migration_pb2.ListMigrationsResponse.FromString,
        )(
            migration_pb2.ListMigrationsRequest(parent=stack.owner.org_name),
            metadata=(("authorization", f"Bearer {token}"),),
        )
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error_info(caught.value).reason == "TOKEN_EXPIRED"


async def test_a_revoked_api_key_gets_no_token_and_so_no_access_anywhere(stack: Stack) -> None:
    users = stack.stub("org", user_pb2_grpc.UserServiceStub)
    auth = stack.stub("org", auth_pb2_grpc.AuthServiceStub)
    member = await stack.suite.user("MEMBER")
    key = await users.CreateApiKey(
        user_pb2.CreateApiKeyRequest(
            parent=member.org_name,
            api_key=user_pb2.ApiKey(
                user=f"{member.org_name}/users/{member.user_id}", display_name="soon revoked"
            ),
        ),
        metadata=stack.admin.metadata,
    )
    token = (
        await auth.ExchangeApiKey(auth_pb2.ExchangeApiKeyRequest(api_key=key.secret))
    ).access_token
    await users.RevokeApiKey(
        user_pb2.RevokeApiKeyRequest(name=key.api_key.name), metadata=stack.admin.metadata
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await auth.ExchangeApiKey(auth_pb2.ExchangeApiKeyRequest(api_key=key.secret))
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error_info(caught.value).reason == "API_KEY_REVOKED"
    # The token exchanged before the revocation names its key, so it stops counting too
    # (tests/e2e/test_token_freshness.py follows it across the services).
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["akid"] == key.api_key.id


async def test_a_revoked_service_api_key_gets_no_service_token(stack: Stack) -> None:
    auth = stack.stub("org", auth_pb2_grpc.AuthServiceStub)
    created = await auth.CreateServiceAccount(
        auth_pb2.CreateServiceAccountRequest(
            service_account=auth_pb2.ServiceAccount(display_name="worker to revoke")
        ),
        metadata=stack.service.metadata,
    )
    await auth.ExchangeApiKey(auth_pb2.ExchangeApiKeyRequest(api_key=created.api_key))
    conn = await stack.db("org")
    try:
        await conn.execute(
            "UPDATE api_keys SET revoked_at = now() WHERE service_account_id = $1",
            uuid.UUID(created.service_account.id),
        )
    finally:
        await conn.close()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await auth.ExchangeApiKey(auth_pb2.ExchangeApiKeyRequest(api_key=created.api_key))
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_tokens_of_a_freshly_rotated_key_are_accepted_at_once(stack: Stack) -> None:
    auth = stack.stub("org", auth_pb2_grpc.AuthServiceStub)
    probe = RPCS["MigrationService.ListMigrations"]
    request = PROBES[probe.id](stack).SerializeToString()
    # Anyone can make the migration service refresh its key cache: a token with a new kid.
    anyone = ec.generate_private_key(ec.SECP256R1())
    bogus = jwt.encode(_claims(stack.owner), anyone, algorithm="ES256", headers={"kid": "b" * 64})
    await call_raw(
        stack.channel("migration"), probe, request, (("authorization", f"Bearer {bogus}"),)
    )
    await auth.RotateTokenSigningKey(
        auth_pb2.RotateTokenSigningKeyRequest(), metadata=stack.service.metadata
    )
    fresh = await stack.suite.exchange(stack.suite.owner_api_key)
    outcome = await call_raw(
        stack.channel("migration"), probe, request, (("authorization", f"Bearer {fresh}"),)
    )
    assert outcome.code == grpc.StatusCode.OK, outcome.details
