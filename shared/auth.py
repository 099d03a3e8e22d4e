"""Who is calling, and may they? Access tokens, key discovery, and access rules.

Access tokens are ES256 JWTs signed by the org service (`AuthService.ExchangeApiKey`).
Every service verifies them locally with the public keys of `AuthService.GetJwks`,
cached and refetched when a token names an unknown key id. Each RPC's access rule is read
once from its proto method options (`sensei.access.v1.access`) and enforced by
`AccessControl.authorize`, which the shared interceptor calls for unary and streaming RPCs.
"""

from __future__ import annotations

import asyncio
import contextvars
import importlib
import json
import pkgutil
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

import grpc
import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from google.protobuf import descriptor, descriptor_pool
from google.protobuf.message import Message

from sensei.access.v1 import access_pb2
from sensei.org.v1 import auth_pb2, auth_pb2_grpc
from shared import client, names
from shared.errors import InvalidArgument, PermissionDenied, Unauthenticated, Unavailable

ISSUER = "sensei-org"
AUDIENCE = "sensei"
ALGORITHM = "ES256"
SERVICE_ROLE = "SERVICE"
# The platform operator: a person who runs the platform, outside every organization.
OPERATOR_ROLE = "OPERATOR"
PLATFORM_ROLES = frozenset({SERVICE_ROLE, OPERATOR_ROLE})

# Organization roles and the access level each one reaches.
ROLE_LEVELS: dict[str, int] = {
    "VIEWER": access_pb2.LEVEL_VIEWER,
    "MEMBER": access_pb2.LEVEL_MEMBER,
    "ADMIN": access_pb2.LEVEL_ADMIN,
    "OWNER": access_pb2.LEVEL_OWNER,
}


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of an RPC."""

    subject: str  # `users/{id}`, `serviceAccounts/{id}` or `operators/{id}`
    role: str  # OWNER, ADMIN, MEMBER, VIEWER, SERVICE or OPERATOR
    org_id: str | None  # None for platform principals (SERVICE, OPERATOR)
    api_key_id: str | None = None
    token_id: str | None = None
    peer_ip: str = ""

    @property
    def is_service(self) -> bool:
        """Whether this is a service account (cross-organization, internal)."""
        return self.role == SERVICE_ROLE

    @property
    def is_operator(self) -> bool:
        """Whether this is the platform operator (no organization, no tenant data)."""
        return self.role == OPERATOR_ROLE

    @property
    def is_platform(self) -> bool:
        """Whether this is a platform principal: a service account or the operator."""
        return self.role in PLATFORM_ROLES

    @property
    def user_id(self) -> str | None:
        """The user id, for user principals."""
        return self.subject.removeprefix("users/") if self.subject.startswith("users/") else None

    @property
    def level(self) -> int:
        """The organization level of a user's role (service principals rank above owners).

        The operator has no organization role: 0, below every tenant level.
        """
        return access_pb2.LEVEL_SERVICE if self.is_service else ROLE_LEVELS.get(self.role, 0)

    def at_least(self, role: str) -> bool:
        """Whether a user principal's role is `role` or higher (services: always; operator:
        never)."""
        return self.is_service or ROLE_LEVELS.get(self.role, 0) >= ROLE_LEVELS[role]


_principal: contextvars.ContextVar[Principal | None] = contextvars.ContextVar(
    "sensei_principal", default=None
)
_peer_ip: contextvars.ContextVar[str] = contextvars.ContextVar("sensei_peer_ip", default="")


def current_principal() -> Principal:
    """The caller of the RPC being served; UNAUTHENTICATED on a public RPC without a token."""
    principal = _principal.get()
    if principal is None:
        raise Unauthenticated("this call needs an access token")
    return principal


def current_principal_or_none() -> Principal | None:
    """The caller of the RPC being served, when it sent a valid token."""
    return _principal.get()


def current_peer_ip() -> str:
    """The IP address the current RPC came from."""
    return _peer_ip.get()


class TokenFreshness(Protocol):
    """Whether a token that verified still counts: not revoked since it was issued.

    The org service answers from its database; the others from the revocation log they
    follow (shared/revocations.py). `write` is true for calls above viewer level, which
    must fail closed when freshness cannot be confirmed.
    """

    async def check(self, principal: Principal, *, write: bool) -> None:
        """Raises UNAUTHENTICATED (`TOKEN_REVOKED`) or UNAVAILABLE; returns when it counts."""
        ...


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


def access_rules(service_names: Iterable[str]) -> dict[str, access_pb2.AccessRule]:
    """The access rule of every method of the given services, by `/pkg.Service/Method` path.

    Raises ValueError when a method has no rule: a service must not start with a gap.
    """
    pool = descriptor_pool.Default()  # type: ignore[no-untyped-call]
    rules: dict[str, access_pb2.AccessRule] = {}
    for service_name in service_names:
        _import_generated_package(service_name.rsplit(".", 1)[0])
        service: descriptor.ServiceDescriptor = pool.FindServiceByName(service_name)
        for method in service.methods:
            options = method.GetOptions()
            if not options.HasExtension(access_pb2.access):
                raise ValueError(f"{method.full_name} declares no access rule")
            rule: access_pb2.AccessRule = options.Extensions[access_pb2.access]
            if rule.min_level == access_pb2.LEVEL_UNSPECIFIED:
                raise ValueError(f"{method.full_name} declares no access level")
            rules[f"/{service.full_name}/{method.name}"] = rule
    return rules


def _import_generated_package(package: str) -> None:
    # Descriptors exist only once their generated module is imported.
    module = importlib.import_module(package)
    for info in pkgutil.iter_modules(module.__path__, f"{package}."):
        if info.name.endswith("_pb2"):
            importlib.import_module(info.name)


class AccessControl:
    """Enforces the declared access rules of one server's methods."""

    def __init__(
        self,
        rules: Mapping[str, access_pb2.AccessRule],
        verifier: TokenVerifier,
        freshness: TokenFreshness | None = None,
    ) -> None:
        self._rules = dict(rules)
        self._verifier = verifier
        self._freshness = freshness

    def governs(self, method: str) -> bool:
        """Whether `method` is one of ours (health and reflection are not)."""
        return method in self._rules

    async def authorize(
        self, method: str, request: Message, metadata: Mapping[str, str], peer_ip: str
    ) -> Principal | None:
        """Checks the caller against the method's rule; returns the principal (None if public)."""
        rule = self._rules[method]
        token = _bearer(metadata)
        _peer_ip.set(peer_ip)
        if rule.min_level == access_pb2.LEVEL_PUBLIC:
            principal = await self._optional_principal(token, peer_ip)
            _principal.set(principal)
            return principal
        if token is None:
            raise Unauthenticated(
                "send `authorization: Bearer <access token>`", reason="TOKEN_MISSING"
            )
        principal = await self._verifier.verify(token, peer_ip)
        if self._freshness is not None:
            # Reads (viewer level) pass on a stale view of revocations; writes fail closed.
            await self._freshness.check(principal, write=rule.min_level != access_pb2.LEVEL_VIEWER)
        _principal.set(principal)
        if principal.is_service:
            if (
                rule.min_level not in (access_pb2.LEVEL_SERVICE, access_pb2.LEVEL_PLATFORM)
                and not rule.allow_service
            ):
                raise PermissionDenied(
                    "service principals may not call this method", reason="SERVICE_NOT_ALLOWED"
                )
            return principal
        if principal.is_operator:
            return _authorize_operator(rule, request, principal)
        if rule.min_level == access_pb2.LEVEL_SERVICE:
            raise PermissionDenied(
                "only service principals may call this method", reason="SERVICE_ONLY"
            )
        if rule.min_level == access_pb2.LEVEL_PLATFORM:
            # Platform-wide resources: no organization role reaches them, not even OWNER.
            raise PermissionDenied(
                "only platform principals (service accounts, the platform operator) may call"
                " this method",
                reason="PLATFORM_ONLY",
                metadata={"role": principal.role},
            )
        if rule.org_field:
            target = _field_value(request, rule.org_field)
            org = names.org_of(target)
            if org is None:
                raise InvalidArgument.single(
                    rule.org_field,
                    "must name a resource of an organization (organizations/{id}/...)",
                )
            if org != principal.org_id:
                raise PermissionDenied(
                    "the resource belongs to another organization", reason="OTHER_ORGANIZATION"
                )
        if principal.level < rule.min_level:
            raise PermissionDenied(
                f"needs role {_level_name(rule.min_level)} or higher",
                reason="ROLE_TOO_LOW",
                metadata={"role": principal.role},
            )
        return principal

    async def _optional_principal(self, token: str | None, peer_ip: str) -> Principal | None:
        if token is None:
            return None
        try:
            principal = await self._verifier.verify(token, peer_ip)
            if self._freshness is not None:
                await self._freshness.check(principal, write=False)
        except Unauthenticated:
            return None
        return principal


def _authorize_operator(
    rule: access_pb2.AccessRule, request: Message, principal: Principal
) -> Principal:
    """The operator: platform RPCs, and reads of platform data its rule opens to it.

    It never reaches tenant data or connection secrets: LEVEL_SERVICE is refused, and on an
    org-scoped rule only the platform chain's own id is accepted.
    """
    if rule.min_level == access_pb2.LEVEL_PLATFORM:
        return principal
    if rule.min_level == access_pb2.LEVEL_SERVICE or not rule.allow_operator:
        raise PermissionDenied(
            "the platform operator may not call this method: it reaches no tenant data",
            reason="OPERATOR_NOT_ALLOWED",
        )
    if rule.org_field and names.org_of(_field_value(request, rule.org_field)) != (
        names.PLATFORM_ORG_ID
    ):
        raise PermissionDenied(
            "the platform operator reads only the platform's own resources",
            reason="OTHER_ORGANIZATION",
        )
    return principal


def _level_name(level: int) -> str:
    return access_pb2.Level.Name(level).removeprefix("LEVEL_")  # type: ignore[arg-type]


def _bearer(metadata: Mapping[str, str]) -> str | None:
    value = metadata.get("authorization")
    if not value:
        return None
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("authorization must be `Bearer <token>`", reason="TOKEN_MALFORMED")
    return token.strip()


def _field_value(request: Message, path: str) -> str:
    value: Any = request
    for part in path.split("."):
        value = getattr(value, part)
    return str(value)
