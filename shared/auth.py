"""May the caller make this call? Access rules, enforced once for every RPC.

Each RPC's access rule is read once from its proto method options
(`sensei.access.v1.access`) and enforced by `AccessControl.authorize`, which the shared
interceptor calls for unary and streaming RPCs alike: the token is verified
(shared/token_verification.py), checked for freshness (`TokenFreshness`), and the caller's
role and organization are matched against the rule (docs/architecture.md#access-rules).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from google.protobuf import descriptor, descriptor_pool
from google.protobuf.message import Message

from sensei.access.v1 import access_pb2
from shared import names
from shared.errors import InvalidArgument, PermissionDenied, Unauthenticated
from shared.principals import Principal, enter_call
from shared.token_verification import TokenVerifier


class TokenFreshness(Protocol):
    """Whether a token that verified still counts: not revoked since it was issued.

    The org service answers from its database; the others from the revocation log they
    follow (shared/revocations.py). `write` is true for calls above viewer level, which
    must fail closed when freshness cannot be confirmed.
    """

    async def check(self, principal: Principal, *, write: bool) -> None:
        """Raises UNAUTHENTICATED (`TOKEN_REVOKED`) or UNAVAILABLE; returns when it counts."""
        ...


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
        enter_call(None, peer_ip)
        token = _bearer(metadata)
        if rule.min_level == access_pb2.LEVEL_PUBLIC:
            principal = await self._optional_principal(token, peer_ip)
            enter_call(principal, peer_ip)
            return principal
        if token is None:
            raise Unauthenticated(
                "send `authorization: Bearer <access token>`", reason="TOKEN_MISSING"
            )
        principal = await self._verifier.verify(token, peer_ip)
        if self._freshness is not None:
            # Reads (viewer level) pass on a stale view of revocations; writes fail closed.
            await self._freshness.check(principal, write=rule.min_level != access_pb2.LEVEL_VIEWER)
        enter_call(principal, peer_ip)
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
