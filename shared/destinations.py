"""One policy for every connection to a database a caller names (a migration's source/target).

``shared.connection_configs.destination_of`` parses a caller's config into a ``Destination``;
``DestinationPolicy.connect`` checks where it points and connects. docs/destinations.md
describes the rules for operators.

(Over 400 lines on purpose: it is one trust boundary, and its rules and the one place that
enforces them are easier to audit side by side than spread over modules.)

What callers cannot do:
- name a local file or socket (checked in shared/connection_configs.py when a config is
  sent): DSN parameters outside ``DSN_PARAMETERS`` (``passfile``,
  ``sslrootcert``, ``sslcert``, ``sslkey``, ``service``, ``host=/dir`` ...) and hosts that
  are paths are INVALID_ARGUMENT, naming the parameter;
- reach the platform's own database servers (every ``SENSEI_*_DATABASE_URL``, in any
  address form), loopback, link-local, cloud metadata or unspecified addresses. Names are
  resolved once and every address checked; the connection goes to the checked address, so
  a second DNS answer cannot rebind it. ``SENSEI_ALLOWED_DESTINATIONS`` allows hosts or
  CIDRs (a lab's loopback, link-local); ``SENSEI_ENV=dev`` allows loopback. The platform's
  servers and metadata addresses stay refused whatever the settings;
- learn why a connection failed: ``DestinationUnreachable`` carries nothing of the server's
  answer (refused port, another protocol, bad password all look alike); the details go to
  the service log, which carries the request id.

The service's own credentials never leave with a caller's config: no password means an
empty one (not ``PGPASSWORD`` or ``~/.pgpass``), and TLS contexts are built here from the
config's ``sslmode`` alone (not ``PGSSLCERT`` or ``~/.postgresql/``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import re
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

import asyncpg
from asyncpg.connect_utils import SessionAttribute

from shared.config import ConfigError
from shared.connection_configs import Destination, port_of
from shared.db import DATABASE_ERRORS

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Never a database, whatever an operator allows: cloud instance metadata endpoints.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "100.100.100.200", "fd00:ec2::254")
)
METADATA_NAMES = frozenset(
    {"metadata", "metadata.google.internal", "metadata.goog", "instance-data.ec2.internal"}
)
LOOPBACK_NETWORKS = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
# "This network": connecting to 0.0.0.0 reaches this machine; the rest of 0/8 is no host.
UNSPECIFIED_NETWORKS = (ipaddress.ip_network("0.0.0.0/8"), ipaddress.ip_network("::/128"))
# Settings (suite-wide) the policy reads.
ALLOWED_SETTING = "SENSEI_ALLOWED_DESTINATIONS"
CA_FILE_SETTING = "SENSEI_DESTINATION_CA_FILE"
ENV_SETTING = "SENSEI_ENV"
# What one connection attempt can fail with besides those handled first (ValueError: a
# setting the driver refuses).
_CONNECT_ERRORS: tuple[type[BaseException], ...] = (*DATABASE_ERRORS, ValueError)
_FINAL_LOGIN_ERRORS = (
    asyncpg.InvalidAuthorizationSpecificationError,
    ConnectionRefusedError,
    TimeoutError,
)
T = TypeVar("T")
_PLATFORM_URL = re.compile(r"^SENSEI_(?:(?:ORG|MIGRATION|VERIFICATION|PATTERN)_)?DATABASE_URL$")


# --- the policy --------------------------------------------------------------------------------


class DestinationNotAllowed(Exception):
    """The config points where the policy refuses to connect (decided from the input alone)."""


class DestinationUnreachable(Exception):
    """No connection: unresolvable, refused, not PostgreSQL, TLS or login failed (all alike)."""


@dataclass(frozen=True)
class Allowance:
    """One entry of SENSEI_ALLOWED_DESTINATIONS: a host name or a network, optionally a port."""

    network: IPNetwork | None = None
    hostname: str | None = None
    port: int | None = None

    def admits(self, destination: Destination, address: IPAddress) -> bool:
        """Whether this entry allows connecting to `address` for `destination`."""
        if self.port is not None and self.port != destination.port:
            return False
        if self.hostname is not None:
            return self.hostname == destination.host.lower().rstrip(".")
        return self.network is not None and address in self.network


def parse_allowances(raw: str) -> list[Allowance]:
    """Entries of SENSEI_ALLOWED_DESTINATIONS: ``host``, ``host:port``, ``10.0.0.0/8``,
    ``127.0.0.1:55432``, ``[::1]:5433``, ``[fd00::/8]`` ... separated by commas."""
    allowances: list[Allowance] = []
    for item in (e.strip() for e in raw.split(",")):
        if not item:
            continue
        entry, port = _split_allowance(item, raw)
        try:
            network = ipaddress.ip_network(entry, strict=False)
        except ValueError:
            if not entry or "/" in entry:
                raise ConfigError(f"{ALLOWED_SETTING}: cannot read entry {item!r}") from None
            allowances.append(Allowance(hostname=entry.lower().rstrip("."), port=port))
        else:
            allowances.append(Allowance(network=network, port=port))
    return allowances


def _split_allowance(item: str, raw: str) -> tuple[str, int | None]:
    """(host or network, port or None) of one entry."""
    if item.startswith("["):
        inside, _, rest = item[1:].partition("]")
        return inside, _setting_port(rest[1:], raw) if rest else None
    if item.count(":") == 1:
        entry, _, port_text = item.partition(":")
        return entry, _setting_port(port_text, raw)
    return item, None


def _setting_port(text: str, raw: str) -> int:
    port = port_of(int(text)) if text.isdigit() else None
    if port is None:
        raise ConfigError(f"{ALLOWED_SETTING}: bad port in {raw!r}")
    return port


@dataclass(frozen=True)
class PlatformServer:
    """A database server of the platform itself: a host (None: this machine) and port."""

    host: str | None
    port: int


def platform_servers(urls: Iterable[str]) -> list[PlatformServer]:
    """The servers the platform's database URLs point to, whatever form each takes."""
    servers: list[PlatformServer] = []
    for url in urls:
        try:
            parts = urlsplit(url)
            query = dict(parse_qsl(parts.query, keep_blank_values=True))
            default_port = int(query.get("port") or os.environ.get("PGPORT") or 5432)
            hostinfo = parts.netloc.rpartition("@")[2]
            hosts = [h for h in hostinfo.split(",") if h] or [""]
            if query.get("host"):
                hosts = query["host"].split(",")
            for item in hosts:
                host, port = _split_host_port(unquote(item), default_port)
                local = not host or host.startswith("/")
                servers.append(PlatformServer(None if local else host.lower(), port))
        except ValueError:
            # Not a URL we can read: a server the service itself could not reach either.
            log.warning("cannot read a platform database URL; it is not on the refusal list")
    return servers


def _split_host_port(item: str, default_port: int) -> tuple[str, int]:
    if item.startswith("["):
        host, _, rest = item[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else default_port
    if item.count(":") == 1:
        host, _, port = item.partition(":")
        return host, int(port) if port else default_port
    return item, default_port


class DestinationPolicy:
    """Decides where callers' configs may connect, and connects there."""

    def __init__(
        self,
        *,
        platform: Sequence[PlatformServer],
        allowed: Sequence[Allowance] = (),
        allow_loopback: bool = False,
        ca_file: str | None = None,
    ) -> None:
        self._platform = list(platform)
        self._allowed = list(allowed)
        self._allow_loopback = allow_loopback
        self._ca_file = ca_file

    @classmethod
    def from_env(cls, env: Mapping[str, str], database_url: str = "") -> DestinationPolicy:
        """The policy of a service configured from `env` (and the process environment)."""
        urls = {database_url} if database_url else set()
        for source in (env, os.environ):
            urls |= {value for key, value in source.items() if _PLATFORM_URL.match(key) and value}
        return cls(
            platform=platform_servers(sorted(urls)),
            allowed=parse_allowances(env.get(ALLOWED_SETTING, "")),
            allow_loopback=env.get(ENV_SETTING, "") == "dev",
            ca_file=env.get(CA_FILE_SETTING) or None,
        )

    async def addresses(self, destination: Destination) -> list[IPAddress]:
        """Every address `destination.host` resolves to, each checked; in resolver order.

        DestinationNotAllowed if any is refused (a name is trusted only if all its addresses
        are), DestinationUnreachable if the name does not resolve.
        """
        host = destination.host.lower().rstrip(".")
        if host in METADATA_NAMES:
            raise DestinationNotAllowed(f"{host} is a metadata service")
        found = await _resolve(host, destination.port)
        if not found:
            raise DestinationUnreachable(f"{host} does not resolve")
        platform = await self._platform_addresses()
        for address in found:
            reason = self.refusal(destination, address, platform)
            if reason is not None:
                raise DestinationNotAllowed(f"{host} -> {address}: {reason}")
        return found

    def refusal(
        self,
        destination: Destination,
        address: IPAddress,
        platform: Mapping[int, Sequence[IPNetwork]],
    ) -> str | None:
        """Why `address` is refused for `destination`, or None when it is allowed."""
        address = _plain(address)
        port = destination.port
        if any(address in network for network in platform.get(port, ())):
            return "a database server of the platform"
        if address in METADATA_ADDRESSES:
            return "a cloud metadata address"
        if any(address in network for network in UNSPECIFIED_NETWORKS):
            return "an unspecified address"
        if any(allowance.admits(destination, address) for allowance in self._allowed):
            return None
        if address.is_loopback:
            return None if self._allow_loopback else "loopback"
        if address.is_link_local:
            return "link-local"
        if address.is_multicast or address.is_reserved:
            return "not a unicast address"
        return None

    async def _platform_addresses(self) -> dict[int, list[IPNetwork]]:
        """Per port, the networks holding the platform's servers (resolved now: names move)."""
        by_port: dict[int, list[IPNetwork]] = {}
        own: list[IPAddress] | None = None
        for server in self._platform:
            networks = by_port.setdefault(server.port, [])
            addresses = await _resolve(server.host, server.port) if server.host else []
            local = server.host is None or any(_plain(a).is_loopback for a in addresses)
            networks += [ipaddress.ip_network(_plain(a)) for a in addresses]
            if local:
                # A server on this machine answers on every loopback address and, if it
                # listens on all interfaces, on the machine's own addresses too.
                if own is None:
                    own = await _resolve(socket.gethostname(), server.port)
                networks += [*LOOPBACK_NETWORKS, *UNSPECIFIED_NETWORKS]
                networks += [ipaddress.ip_network(_plain(a)) for a in own]
        return by_port

    async def connect(
        self,
        destination: Destination,
        *,
        timeout: float,  # noqa: ASYNC109  # asyncpg's own connect timeout, per attempt
        server_settings: Mapping[str, str] | None = None,
    ) -> asyncpg.Connection:
        """An asyncpg connection to `destination`, made to an address this policy checked.

        DestinationNotAllowed or DestinationUnreachable (nothing of the server's answer: the
        details are logged here).
        """

        async def login(
            address: str,
            context: ssl.SSLContext | bool,
            seconds: float,
        ) -> asyncpg.Connection:
            connection: asyncpg.Connection = await asyncpg.connect(
                host=address,
                port=destination.port,
                user=destination.user,
                # Never None: asyncpg would fall back to PGPASSWORD and ~/.pgpass, the
                # service's own secrets.
                password=destination.password or "",
                passfile=os.devnull,
                database=destination.database,
                ssl=context,
                direct_tls=False,
                target_session_attrs=SessionAttribute.any,
                timeout=seconds,
                server_settings=dict(server_settings or {}),
            )
            return connection

        return await self.connect_with(
            destination,
            login,
            timeout=timeout,
            errors=_CONNECT_ERRORS,
            # A login refused, or nothing answering: plain text will not do better.
            final=lambda exc: isinstance(
                exc,
                (
                    asyncpg.InvalidAuthorizationSpecificationError,
                    ConnectionRefusedError,
                    TimeoutError,
                ),
            ),
        )

    async def connect_with(
        self,
        destination: Destination,
        login: Callable[[str, ssl.SSLContext | bool, float], Awaitable[T]],
        *,
        timeout: float,  # noqa: ASYNC109  # the driver's own connect timeout, per attempt
        errors: tuple[type[BaseException], ...],
        final: Callable[[BaseException], bool],
    ) -> T:
        """`login(address, tls, timeout)` to a checked address of `destination`, trying each
        address and each TLS setting in turn; any engine's driver connects through this.

        An error in `errors` moves on to the next TLS setting, or to the next address when
        `final(error)` says plain text will not do better. DestinationNotAllowed, or
        DestinationUnreachable with one generic message (the details are logged here).
        """
        try:
            addresses = await self.addresses(destination)
        except DestinationNotAllowed as exc:
            log.warning("destination %s refused by policy: %s", destination.describe(), exc)
            raise
        except DestinationUnreachable as exc:
            log.warning("destination %s unreachable: %s", destination.describe(), exc)
            raise DestinationUnreachable("the database cannot be reached") from None
        if destination.connect_timeout is not None:
            timeout = min(timeout, destination.connect_timeout)
        failures: list[str] = []
        for address in addresses:
            for context in self._ssl_attempts(destination):
                try:
                    return await login(str(address), context, timeout)
                except errors as exc:
                    failures.append(f"{address}: {type(exc).__name__}: {exc}")
                    if final(exc):
                        break
        log.warning(
            "cannot connect to destination %s: %s", destination.describe(), "; ".join(failures)
        )
        raise DestinationUnreachable("the database cannot be reached")

    def _ssl_attempts(self, destination: Destination) -> list[ssl.SSLContext | bool]:
        """TLS settings to try in turn (prefer/allow: TLS, then plain if the server refuses)."""
        mode = destination.sslmode
        if mode == "disable":
            return [False]
        context = _ssl_context(mode, destination.host, self._ca_file)
        return [context, False] if mode in ("allow", "prefer") else [context]


class _NamedTLSContext(ssl.SSLContext):
    """A context that checks the certificate against the configured name, not the address.

    The connection goes to an IP address (the one the policy checked), so the name asyncio
    passes down is that address; verify-full must check the host name the caller gave.
    """

    server_name: str = ""

    def wrap_bio(  # type: ignore[override]
        self,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
        server_side: bool = False,
        server_hostname: str | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLObject:
        return super().wrap_bio(
            incoming, outgoing, server_side, self.server_name or server_hostname, session
        )


def _ssl_context(mode: str, host: str, ca_file: str | None) -> ssl.SSLContext:
    """A TLS context for `mode`, from the operator's CA bundle or the system's, no client key."""
    context = _NamedTLSContext(ssl.PROTOCOL_TLS_CLIENT)
    context.server_name = host
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if mode in ("verify-ca", "verify-full"):
        context.check_hostname = mode == "verify-full"
        context.verify_mode = ssl.CERT_REQUIRED
        if ca_file:
            context.load_verify_locations(cafile=ca_file)
        else:
            context.load_default_certs()
    else:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _plain(address: IPAddress) -> IPAddress:
    """IPv4 addresses written as IPv6 (``::ffff:127.0.0.1``, ``::127.0.0.1``) as IPv4."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.scope_id:
            address = ipaddress.IPv6Address(str(address).split("%", 1)[0])
        if int(address) >> 32 == 0 and int(address) > 1:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


async def _resolve(host: str, port: int) -> list[IPAddress]:
    """Every address of `host` (an IP literal is its own), in the resolver's order."""
    with contextlib.suppress(ValueError):
        return [ipaddress.ip_address(host)]
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
    except (OSError, UnicodeError):
        return []
    found: list[IPAddress] = []
    for family, _, _, _, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    return found
