"""Access tokens, verified locally: ES256 JWTs signed by the org service.

Every service checks a token's signature, issuer, audience, expiry and key id itself, with
the public keys of `AuthService.GetJwks` (`JwksKeySource`, cached and refetched on an unknown
key id); the org service reads the same keys from its database. Whether a verified token
still counts (revocations) is shared/revocations.py's question, not this module's.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, Protocol

import grpc
import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from sensei.org.v1 import auth_pb2, auth_pb2_grpc
from shared import client, names
from shared.errors import Unauthenticated, Unavailable
from shared.principals import PLATFORM_ROLES, ROLE_LEVELS, Principal

ISSUER = "sensei-org"
AUDIENCE = "sensei"
ALGORITHM = "ES256"


class KeySource(Protocol):
    """Finds the public key that verifies tokens with a given key id."""

    async def public_key(self, kid: str) -> ec.EllipticCurvePublicKey | None:
        """The key with id `kid`, or None when it is not known."""
        ...


def public_key_from_jwk(jwk: Mapping[str, Any]) -> ec.EllipticCurvePublicKey:
    """Loads an EC P-256 public key from its JWK."""
    key = jwt.algorithms.ECAlgorithm.from_jwk(json.dumps(dict(jwk)))
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError("JWK is not an EC public key")
    return key


class JwksKeySource:
    """Keys from the org service's `GetJwks`, cached; refetched on an unknown key id.

    Refetches are spaced at least `min_refresh_seconds` apart, so a flood of tokens with
    made-up key ids costs the org service at most one call per interval. A token of a key
    that is really new (just rotated) waits for the next refetch instead of being refused.
    """

    def __init__(self, org_address: str, *, min_refresh_seconds: float = 0.5) -> None:
        self._address = org_address
        self._min_refresh = min_refresh_seconds
        self._keys: dict[str, ec.EllipticCurvePublicKey] = {}
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()
        self._channel: grpc.aio.Channel | None = None

    async def public_key(self, kid: str) -> ec.EllipticCurvePublicKey | None:
        key = self._keys.get(kid)
        if key is not None:
            return key
        asked_at = time.monotonic()
        async with self._lock:
            if self._fetched_at >= asked_at:
                # A refetch started after we asked already ran: its answer is current.
                return self._keys.get(kid)
            wait = self._fetched_at + self._min_refresh - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)  # spacing calls to the org service, not timing
            await self._refresh()
            return self._keys.get(kid)

    async def _refresh(self) -> None:
        if self._channel is None:
            self._channel = client.channel(self._address)
        stub = auth_pb2_grpc.AuthServiceStub(self._channel)
        started = time.monotonic()
        try:
            response = await stub.GetJwks(auth_pb2.GetJwksRequest(), timeout=5)
        except grpc.aio.AioRpcError as exc:
            raise Unavailable(
                f"cannot fetch token keys from the org service: {exc.code().name}",
                reason="JWKS_UNAVAILABLE",
            ) from None
        self._keys = {
            jwk.kid: public_key_from_jwk(
                {"kty": jwk.kty, "crv": jwk.crv, "x": jwk.x, "y": jwk.y, "kid": jwk.kid}
            )
            for jwk in response.keys
        }
        # When the fetch began: it holds every key that existed by then.
        self._fetched_at = started

    async def close(self) -> None:
        """Closes the channel to the org service."""
        if self._channel is not None:
            await self._channel.close()


class TokenVerifier:
    """Verifies access tokens locally: ES256 only, issuer, audience, expiry, key id.

    A token that verified is remembered (by its exact text, at most `cache_size` of them)
    until it expires: a client sends the same token on every call, and checking its ECDSA
    signature again each time was the largest cost of a small RPC (see benchmarks/).
    Failures are never remembered.
    """

    def __init__(
        self,
        keys: KeySource,
        *,
        leeway_seconds: float = 5.0,
        cache_size: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._keys = keys
        self._leeway = leeway_seconds
        self._cache_size = cache_size
        self._clock = clock
        self._verified: OrderedDict[str, tuple[float, Principal]] = OrderedDict()

    async def verify(self, token: str, peer_ip: str = "") -> Principal:
        """The principal of a valid token; UNAUTHENTICATED otherwise."""
        cached = self._verified.get(token)
        if cached is not None:
            expires_at, principal = cached
            if self._clock() < expires_at:
                self._verified.move_to_end(token)
                return replace(principal, peer_ip=peer_ip)
            del self._verified[token]  # expired: the full check below says so
        principal, expires_at = await self._verify_signed(token)
        if self._cache_size > 0:
            self._verified[token] = (expires_at, principal)
            if len(self._verified) > self._cache_size:
                self._verified.popitem(last=False)
        return replace(principal, peer_ip=peer_ip)

    async def _verify_signed(self, token: str) -> tuple[Principal, float]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthenticated("malformed access token", reason="TOKEN_MALFORMED") from None
        if header.get("alg") != ALGORITHM:
            raise Unauthenticated("access tokens must be ES256", reason="TOKEN_ALGORITHM")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise Unauthenticated("access token has no key id", reason="TOKEN_MALFORMED")
        key = await self._keys.public_key(kid)
        if key is None:
            raise Unauthenticated(
                "access token signed by an unknown key", reason="TOKEN_UNKNOWN_KEY"
            )
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=ISSUER,
                leeway=self._leeway,
                options={"require": ["exp", "iat", "sub", "role"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("access token expired", reason="TOKEN_EXPIRED") from None
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"invalid access token: {exc}", reason="TOKEN_INVALID") from None
        role = claims.get("role")
        org = claims.get("org")
        if role in PLATFORM_ROLES:
            org = None  # platform principals belong to no organization, whatever a claim says
        elif role not in ROLE_LEVELS or not isinstance(org, str) or not names.is_uuid(org):
            raise Unauthenticated("access token has no valid role/org", reason="TOKEN_INVALID")
        principal = Principal(
            subject=str(claims["sub"]),
            role=str(role),
            org_id=org,
            api_key_id=claims.get("akid"),
            token_id=claims.get("jti"),
        )
        return principal, float(claims["exp"])
