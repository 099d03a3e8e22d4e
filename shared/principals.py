"""Who is calling: the principal of the RPC being served, and the roles it can have.

Set by the shared access control (shared/auth.py) once a call's token verified; read by use
cases through `current_principal()`. Roles and their order are described in
docs/architecture.md#roles.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass

from sensei.access.v1 import access_pb2
from shared.errors import Unauthenticated

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


def enter_call(principal: Principal | None, peer_ip: str) -> None:
    """Records the caller and peer address of the call being served (access control only)."""
    _principal.set(principal)
    _peer_ip.set(peer_ip)
