"""One policy for every connection to a database a caller names (a migration's source/target).

A connection config is a JSON object (the keys of ``CONNECTION_CONFIG_KEYS``): a
``postgresql://`` DSN and/or separate keys, the separate keys overriding the DSN's parts.
``destination_of`` parses it into a ``Destination``; ``DestinationPolicy.connect`` checks
where it points and connects. docs/destinations.md describes the rules for operators.

What callers cannot do:
- name a local file or socket: DSN parameters outside ``DSN_PARAMETERS`` (``passfile``,
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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import asyncpg
from asyncpg.connect_utils import SessionAttribute

from shared.config import ConfigError
from shared.errors import FailedPrecondition, FieldViolation

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Engines a config may name; issue 14 adds "mysql" (its own DSN schemes and default port).
ENGINES = ("postgresql",)
DSN_SCHEMES = {"postgresql": "postgresql", "postgres": "postgresql"}
DEFAULT_PORTS = {"postgresql": 5432}
DEFAULT_USER = "postgres"

CONNECTION_CONFIG_KEYS = frozenset(
    {"host", "port", "database", "user", "password", "dsn", "sslmode"}
)
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
DEFAULT_SSL_MODE = "prefer"
# Query parameters a caller's DSN may carry; everything else is refused by name.
DSN_PARAMETERS = frozenset({"sslmode", "connect_timeout", "user", "password", "dbname", "port"})
# Parameters libpq reads a local file, directory or socket from: refused with that reason.
FILE_PARAMETERS = frozenset(
    {
        "host",
        "hostaddr",
        "passfile",
        "service",
        "servicefile",
        "sslrootcert",
        "sslcert",
        "sslkey",
        "sslcrl",
        "sslcrldir",
        "gssdelegation",
        "krbsrvname",
    }
)
# Parameter names whose values are secrets: redacted wherever a config is shown.
SECRET_PARAMETERS = frozenset({"password", "sslpassword"})
REDACTED = "REDACTED"
MAX_CONNECT_TIMEOUT_SECONDS = 30.0

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
_PLATFORM_URL = re.compile(r"^SENSEI_(?:(?:ORG|MIGRATION|VERIFICATION|PATTERN)_)?DATABASE_URL$")


def is_secret_parameter(name: str) -> bool:
    """Whether a DSN parameter's value is a secret (shown as REDACTED)."""
    lowered = name.lower()
    return lowered in SECRET_PARAMETERS or "pass" in lowered or "secret" in lowered


# --- parsing -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Destination:
    """A database server and the credentials to log in, parsed from a connection config."""

    engine: str
    host: str
    port: int
    database: str
    user: str
    password: str | None = field(default=None, repr=False)
    sslmode: str = DEFAULT_SSL_MODE
    connect_timeout: float | None = None

    @property
    def key(self) -> tuple[str, str, int, str, str]:
        """What a stored secret is bound to: engine, host, port, database, user."""
        return (self.engine, self.host.lower(), self.port, self.database, self.user)

    def describe(self) -> str:
        """``host:port/database`` (no credentials), for logs."""
        return f"{self.host}:{self.port}/{self.database}"


@dataclass(frozen=True)
class _Parts:
    """The parts of a config before defaults: None where neither the DSN nor a key sets it."""

    engine: str = "postgresql"
    host: str | None = None
    port: int | None = None
    database: str | None = None
    user: str | None = None
    password: str | None = None
    sslmode: str | None = None
    connect_timeout: float | None = None


def connection_config_violations(config: Any, field_name: str) -> list[FieldViolation]:
    """Every violation in one connection config (``{}`` is valid: not configured yet)."""
    return _parse(config, field_name)[1]


def destination_of(config: Mapping[str, Any], field_name: str) -> Destination:
    """The destination of a stored config.

    FailedPrecondition CONNECTION_NOT_CONFIGURED when it names no server, and
    CONNECTION_CONFIG_INVALID when it breaks the rules (a config stored before they existed).
    """
    parts, violations = _parse(config, field_name)
    if violations:
        raise FailedPrecondition(
            f"{field_name} is not usable: {violations[0].field} {violations[0].description}",
            reason="CONNECTION_CONFIG_INVALID",
            metadata={"field": field_name},
        )
    destination = _destination(parts)
    if destination is None:
        raise FailedPrecondition(
            f"{field_name} names no database (set dsn or host)",
            reason="CONNECTION_NOT_CONFIGURED",
            metadata={"field": field_name},
        )
    return destination


def destination_key(config: Mapping[str, Any]) -> tuple[str, str, int, str, str] | None:
    """The destination (engine, host, port, database, user) of a config; None if none/invalid."""
    parts, violations = _parse(config, "config")
    destination = None if violations else _destination(parts)
    return destination.key if destination is not None else None


def stored_password(config: Mapping[str, Any]) -> str | None:
    """The password a config carries (its ``password`` key, else its DSN's), if any."""
    parts, _ = _parse(config, "config")
    return parts.password


def _destination(parts: _Parts) -> Destination | None:
    if not parts.host:
        return None
    user = parts.user or DEFAULT_USER
    return Destination(
        engine=parts.engine,
        host=parts.host,
        port=parts.port or DEFAULT_PORTS[parts.engine],
        database=parts.database or user,
        user=user,
        password=parts.password,
        sslmode=parts.sslmode or DEFAULT_SSL_MODE,
        connect_timeout=parts.connect_timeout,
    )


def _parse(config: Any, field_name: str) -> tuple[_Parts, list[FieldViolation]]:
    if not isinstance(config, Mapping):
        return _Parts(), [FieldViolation(field_name, "must be an object")]
    violations: list[FieldViolation] = []
    for key in sorted(set(config) - CONNECTION_CONFIG_KEYS):
        violations.append(
            FieldViolation(
                f"{field_name}.{key}",
                f"unknown key; accepted: {', '.join(sorted(CONNECTION_CONFIG_KEYS))}",
            )
        )
    for key in ("host", "database", "user", "password", "dsn", "sslmode"):
        if key in config and not isinstance(config[key], str):
            violations.append(FieldViolation(f"{field_name}.{key}", "must be a string"))
    values: dict[str, Any] = {}
    dsn = config.get("dsn")
    if isinstance(dsn, str) and dsn:
        values, dsn_violations = _parse_dsn(dsn, f"{field_name}.dsn")
        violations += dsn_violations
    for key in ("host", "database", "user", "password", "sslmode"):
        if isinstance(config.get(key), str) and config[key]:
            values[key] = config[key]
    if "port" in config:
        port = port_of(config["port"])
        if port is None:
            violations.append(FieldViolation(f"{field_name}.port", "must be an integer 1-65535"))
        else:
            values["port"] = port
    host = values.get("host")
    if isinstance(host, str):
        violations += _host_violations(host, f"{field_name}.host")
    sslmode = values.get("sslmode")
    if isinstance(sslmode, str) and sslmode not in SSL_MODES:
        violations.append(
            FieldViolation(f"{field_name}.sslmode", f"must be one of {', '.join(SSL_MODES)}")
        )
    return _Parts(**values), violations


def _parse_dsn(dsn: str, field_name: str) -> tuple[dict[str, Any], list[FieldViolation]]:
    try:
        parts = urlsplit(dsn)
        port = parts.port
    except ValueError:
        return {}, [FieldViolation(field_name, "must be a postgresql:// or postgres:// URL")]
    engine = DSN_SCHEMES.get(parts.scheme)
    if engine is None:
        return {}, [FieldViolation(field_name, "must be a postgresql:// or postgres:// URL")]
    violations: list[FieldViolation] = []
    values: dict[str, Any] = {"engine": engine}
    hostinfo = parts.netloc.rpartition("@")[2]
    if "," in hostinfo:
        violations.append(FieldViolation(field_name, "must name one host (no host lists)"))
    elif parts.hostname:
        values["host"] = unquote(parts.hostname)
    if port is not None:
        values["port"] = port
    if parts.username:
        values["user"] = unquote(parts.username)
    if parts.password:
        values["password"] = unquote(parts.password)
    if parts.path.strip("/"):
        values["database"] = unquote(parts.path.lstrip("/"))
    try:
        query = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError:
        return values, [*violations, FieldViolation(field_name, "has a malformed query string")]
    for name, value in query:
        where = f"{field_name}?{name}"
        if name in FILE_PARAMETERS:
            violations.append(
                FieldViolation(
                    where,
                    "names a local file, socket or service: not accepted from callers"
                    " (put the server in the URL; TLS CA bundles are an operator setting)",
                )
            )
        elif name not in DSN_PARAMETERS:
            violations.append(
                FieldViolation(
                    where, f"unsupported parameter; accepted: {', '.join(sorted(DSN_PARAMETERS))}"
                )
            )
        elif name == "connect_timeout":
            try:
                values["connect_timeout"] = min(float(value), MAX_CONNECT_TIMEOUT_SECONDS)
                if values["connect_timeout"] <= 0:
                    raise ValueError(value)
            except ValueError:
                violations.append(FieldViolation(where, "must be a positive number of seconds"))
        elif name == "port":
            if (query_port := port_of(int(value) if value.isdigit() else None)) is None:
                violations.append(FieldViolation(where, "must be an integer 1-65535"))
            else:
                values["port"] = query_port
        else:
            values[{"dbname": "database"}.get(name, name)] = value
    return values, violations


def _host_violations(host: str, field_name: str) -> list[FieldViolation]:
    if host.startswith(("/", "@", ".")) or "/" in host or "\\" in host:
        return [FieldViolation(field_name, "must be a host name or IP address, not a socket path")]
    if "," in host:
        return [FieldViolation(field_name, "must name one host (no host lists)")]
    if len(host) > 253 or any(c.isspace() or not c.isprintable() for c in host):
        return [FieldViolation(field_name, "must be a host name or IP address")]
    return []


def port_of(value: Any) -> int | None:
    """A TCP port from a config value (Struct carries numbers as doubles: 5432.0 is fine)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not value.is_integer():
        return None
    port = int(value)
    return port if 1 <= port <= 65535 else None


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
        """A connection to `destination`, made to an address this policy checked.

        DestinationNotAllowed or DestinationUnreachable (nothing of the server's answer: the
        details are logged here).
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
                    connection: asyncpg.Connection = await asyncpg.connect(
                        host=str(address),
                        port=destination.port,
                        user=destination.user,
                        # Never None: asyncpg would fall back to PGPASSWORD and ~/.pgpass,
                        # the service's own secrets.
                        password=destination.password or "",
                        passfile=os.devnull,
                        database=destination.database,
                        ssl=context,
                        direct_tls=False,
                        target_session_attrs=SessionAttribute.any,
                        timeout=timeout,
                        server_settings=dict(server_settings or {}),
                    )
                    return connection
                except (
                    asyncpg.InvalidAuthorizationSpecificationError,
                    ConnectionRefusedError,
                    TimeoutError,
                ) as exc:
                    # A login refused, or nothing answering: plain text will not do better.
                    failures.append(f"{address}: {type(exc).__name__}: {exc}")
                    break
                except (
                    OSError,
                    ValueError,
                    asyncpg.PostgresError,
                    asyncpg.InterfaceError,
                ) as exc:
                    failures.append(f"{address}: {type(exc).__name__}: {exc}")
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
