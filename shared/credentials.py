"""A service's own credentials for calling the others: its access token, kept fresh.

Client side only: a service exchanges its service API key (`SENSEI_SERVICE_API_KEY`) for
an access token with `AuthService.ExchangeApiKey` and renews it before it expires. The
server side (verifying callers' tokens, access rules) is shared/auth.py.
"""

from __future__ import annotations

import asyncio
import time

import grpc

from sensei.org.v1 import auth_pb2, auth_pb2_grpc
from shared import client
from shared.errors import Unavailable


class ServiceCredentials:
    """A service's own access token, from its service API key, renewed before it expires."""

    def __init__(
        self, org_address: str, api_key: str, *, renew_before_seconds: float = 60.0
    ) -> None:
        self._address = org_address
        self._api_key = api_key
        self._renew_before = renew_before_seconds
        self._token = ""
        self._expires_at = 0.0
        self._lock = asyncio.Lock()
        self._channel: grpc.aio.Channel | None = None

    async def metadata(self) -> tuple[tuple[str, str], ...]:
        """Call metadata carrying the current token."""
        return (("authorization", f"Bearer {await self.token()}"),)

    async def token(self) -> str:
        """A token valid for at least `renew_before_seconds` more."""
        if time.time() < self._expires_at - self._renew_before:
            return self._token
        async with self._lock:
            if time.time() >= self._expires_at - self._renew_before:
                await self._exchange()
        return self._token

    async def _exchange(self) -> None:
        if not self._api_key:
            raise Unavailable("no service API key configured (SENSEI_SERVICE_API_KEY)")
        if self._channel is None:
            self._channel = client.channel(self._address)
        stub = auth_pb2_grpc.AuthServiceStub(self._channel)
        try:
            response = await stub.ExchangeApiKey(
                auth_pb2.ExchangeApiKeyRequest(api_key=self._api_key), timeout=5
            )
        except grpc.aio.AioRpcError as exc:
            raise Unavailable(
                f"cannot get a service token from the org service: {exc.code().name}",
                reason="ORG_UNAVAILABLE",
            ) from None
        self._token = response.access_token
        self._expires_at = response.expire_time.seconds

    async def close(self) -> None:
        """Closes the channel to the org service."""
        if self._channel is not None:
            await self._channel.close()
