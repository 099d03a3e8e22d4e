"""The destination policy's rules, without services: parsing, address checks, TLS names."""

from __future__ import annotations

import ipaddress
import ssl
from typing import Any

import pytest

from shared.config import ConfigError
from shared.connection_configs import Destination, connection_config_violations, destination_of
from shared.destinations import (
    DestinationNotAllowed,
    DestinationPolicy,
    PlatformServer,
    parse_allowances,
    platform_servers,
)
from shared.errors import FailedPrecondition


def _destination(host: str, port: int = 5432) -> Destination:
    return Destination("postgresql", host, port, "shop", "app")


LOCAL_PLATFORM = DestinationPolicy(platform=[PlatformServer(None, 5432)])


async def _refusal(policy: DestinationPolicy, host: str, port: int = 5432) -> str | None:
    try:
        await policy.addresses(_destination(host, port))
    except DestinationNotAllowed as exc:
        return str(exc)
    return None


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "127.0.0.2",
        "127.255.255.254",
        "::1",
        "::ffff:127.0.0.1",
        "localhost",
        "0.0.0.0",
        "::",
    ],
)
async def test_the_local_platform_server_is_refused_even_where_loopback_is_allowed(
    host: str,
) -> None:
    policy = DestinationPolicy(
        platform=[PlatformServer(None, 5432)],
        allowed=parse_allowances("127.0.0.0/8,::1,localhost"),
        allow_loopback=True,
    )
    assert await _refusal(policy, host) is not None


async def test_loopback_on_another_port_is_allowed_in_dev_only() -> None:
    dev = DestinationPolicy(platform=[PlatformServer(None, 5432)], allow_loopback=True)
    assert await _refusal(dev, "127.0.0.1", 5433) is None
    assert await _refusal(LOCAL_PLATFORM, "127.0.0.1", 5433) == "127.0.0.1 -> 127.0.0.1: loopback"


async def test_an_allowance_with_a_port_allows_that_port_only() -> None:
    policy = DestinationPolicy(platform=[], allowed=parse_allowances("127.0.0.1:55432"))
    assert await _refusal(policy, "127.0.0.1", 55432) is None
    assert await _refusal(policy, "127.0.0.1", 55433) is not None


@pytest.mark.parametrize(
    "host", ["169.254.169.254", "fd00:ec2::254", "metadata.google.internal", "METADATA"]
)
async def test_metadata_addresses_are_refused_whatever_is_allowed(host: str) -> None:
    policy = DestinationPolicy(
        platform=[], allowed=parse_allowances("169.254.0.0/16,fd00::/8"), allow_loopback=True
    )
    assert await _refusal(policy, host, 80) is not None


@pytest.mark.parametrize("host", ["0.0.0.0", "0.1.2.3", "::", "::2"])
async def test_unspecified_addresses_are_refused_whatever_is_allowed(host: str) -> None:
    policy = DestinationPolicy(
        platform=[], allowed=parse_allowances("0.0.0.0/0,::/0"), allow_loopback=True
    )
    assert await _refusal(policy, host) is not None


@pytest.mark.parametrize("host", ["169.254.1.1", "fe80::1", "224.0.0.1"])
async def test_link_local_and_multicast_are_refused_unless_allowed(host: str) -> None:
    assert await _refusal(LOCAL_PLATFORM, host) is not None
    allowing = DestinationPolicy(platform=[], allowed=parse_allowances("169.254.0.0/16,fe80::/10"))
    if host != "224.0.0.1":
        assert await _refusal(allowing, host) is None


@pytest.mark.parametrize("host", ["10.1.2.3", "192.168.0.10", "203.0.113.7", "2001:db8::1"])
async def test_other_addresses_are_allowed(host: str) -> None:
    assert await _refusal(LOCAL_PLATFORM, host) is None


async def test_a_remote_platform_server_is_refused_by_address_and_port() -> None:
    policy = DestinationPolicy(platform=platform_servers(["postgresql://u@10.0.0.5:6432/db"]))
    assert await _refusal(policy, "10.0.0.5", 6432) is not None
    assert await _refusal(policy, "10.0.0.5", 5432) is None


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u@/db?host=/var/run/postgresql",
        "postgresql:///db",
        "postgresql://u@localhost/db",
        "postgresql://u@[::1]:5432/db",
    ],
)
async def test_platform_urls_on_this_machine_cover_all_of_loopback(url: str) -> None:
    policy = DestinationPolicy(platform=platform_servers([url]), allow_loopback=True)
    assert await _refusal(policy, "127.0.0.9") is not None
    assert await _refusal(policy, "::1") is not None
    assert await _refusal(policy, "127.0.0.9", 5433) is None


def test_policy_reads_its_settings_from_the_environment() -> None:
    policy = DestinationPolicy.from_env(
        {
            "SENSEI_MIGRATION_DATABASE_URL": "postgresql://u@db.internal:5433/x",
            "SENSEI_ALLOWED_DESTINATIONS": "10.0.0.0/8, lab-db:5432, [::1]:6000",
            "SENSEI_ENV": "dev",
        },
        "postgresql://u@127.0.0.1/x",
    )
    dev = _destination("127.0.0.1", 5433)
    assert policy.refusal(dev, ipaddress.ip_address("127.0.0.1"), {}) is None


@pytest.mark.parametrize("raw", ["10.0.0.0/33", "host:notaport", "[::1]:99999"])
def test_unreadable_allowances_stop_the_service(raw: str) -> None:
    with pytest.raises(ConfigError):
        parse_allowances(raw)


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"dsn": "postgresql://db/x?passfile=/etc/passwd"}, "c.dsn?passfile"),
        ({"dsn": "postgresql://db/x?sslrootcert=/etc/passwd"}, "c.dsn?sslrootcert"),
        ({"dsn": "postgresql://db/x?service=prod"}, "c.dsn?service"),
        ({"dsn": "postgresql://db/x?host=/tmp"}, "c.dsn?host"),
        ({"dsn": "postgresql://db/x?options=-c%20a%3Db"}, "c.dsn?options"),
        ({"dsn": "postgresql://db/x?connect_timeout=-1"}, "c.dsn?connect_timeout"),
        ({"dsn": "postgresql://a,b/x"}, "c.dsn"),
        ({"host": "/var/run/postgresql"}, "c.host"),
        ({"host": "db1,db2"}, "c.host"),
    ],
)
def test_config_violations_name_the_parameter(config: dict[str, Any], field: str) -> None:
    assert field in [v.field for v in connection_config_violations(config, "c")]


def test_separate_keys_override_the_dsn_and_defaults_fill_the_rest() -> None:
    destination = destination_of(
        {"dsn": "postgresql://app:p%40ss@db.example.com:6000/shop?sslmode=require", "port": 7000},
        "c",
    )
    assert destination == Destination(
        "postgresql", "db.example.com", 7000, "shop", "app", "p@ss", "require"
    )
    assert destination_of({"host": "db"}, "c").key == (
        "postgresql",
        "db",
        5432,
        "postgres",
        "postgres",
    )


def test_a_stored_config_breaking_the_rules_is_not_connected() -> None:
    with pytest.raises(FailedPrecondition) as caught:
        destination_of({"dsn": "postgresql://db/x?passfile=/etc/passwd"}, "source_config")
    assert caught.value.reason == "CONNECTION_CONFIG_INVALID"


def test_verify_full_checks_the_configured_name_not_the_address() -> None:
    policy = DestinationPolicy(platform=[])
    destination = Destination("postgresql", "db.example.com", 5432, "x", "u", sslmode="verify-full")
    (context,) = policy._ssl_attempts(destination)
    assert not isinstance(context, bool)
    assert context.check_hostname and context.server_name == "db.example.com"
    # asyncio hands down the address it connected to; the certificate is checked for the name.
    tls = context.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_hostname="203.0.113.7")
    assert tls.server_hostname == "db.example.com"
    assert [type(a) for a in policy._ssl_attempts(_destination("db"))][1] is bool
