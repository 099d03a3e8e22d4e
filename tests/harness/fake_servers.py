"""Servers a hostile tenant could point a connection config at, for destination-policy tests.

`FakePostgres` speaks enough of the PostgreSQL startup protocol to ask for a cleartext
password and records every password it receives (what an attacker's server would steal);
`FakeHttp` answers like a web server. Both listen on 127.0.0.1 on a port of their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from devstack.postgres import free_port

_SSL_REQUEST = 80877103
_GSS_REQUEST = 80877104
_CLEARTEXT_PASSWORD = 3


@dataclass
class FakePostgres:
    """A 'PostgreSQL server' that wants a cleartext password and then refuses the login."""

    port: int = 0
    passwords: list[str] = field(default_factory=list)
    startups: list[dict[str, str]] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One client connection."""
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                length, code = struct.unpack("!ii", await reader.readexactly(8))
                body = await reader.readexactly(length - 8)
                if code in (_SSL_REQUEST, _GSS_REQUEST):
                    writer.write(b"N")  # no TLS here; a client may go on in plain text
                    await writer.drain()
                    continue
                items = body.rstrip(b"\0").split(b"\0")
                self.startups.append(
                    {k.decode(): v.decode() for k, v in zip(items[::2], items[1::2], strict=False)}
                )
                writer.write(b"R" + struct.pack("!ii", 8, _CLEARTEXT_PASSWORD))
                await writer.drain()
                kind = await reader.readexactly(1)
                (size,) = struct.unpack("!i", await reader.readexactly(4))
                payload = await reader.readexactly(size - 4)
                if kind == b"p":
                    self.passwords.append(payload.rstrip(b"\0").decode())
                fields = b"SFATAL\0C28P01\0Mpassword authentication failed (fake server)\0\0"
                writer.write(b"E" + struct.pack("!i", len(fields) + 4) + fields)
                await writer.drain()
                break
        writer.close()


@dataclass
class FakeHttp:
    """A web server: whatever arrives, a 400 answer."""

    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One client connection."""
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            await reader.read(1024)
            writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
        writer.close()


@contextlib.asynccontextmanager
async def fake_postgres() -> AsyncIterator[FakePostgres]:
    """A running FakePostgres on 127.0.0.1."""
    fake = FakePostgres()
    server = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
    fake.port = server.sockets[0].getsockname()[1]
    async with server:
        yield fake


@contextlib.asynccontextmanager
async def fake_http() -> AsyncIterator[FakeHttp]:
    """A running FakeHttp on 127.0.0.1."""
    fake = FakeHttp()
    server = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
    fake.port = server.sockets[0].getsockname()[1]
    async with server:
        yield fake


def closed_port() -> int:
    """A loopback port nothing listens on (outside the ephemeral range)."""
    return free_port()
