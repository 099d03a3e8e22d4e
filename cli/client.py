"""The connection side of a command: addresses, credentials, channels and call options."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

import grpc

from cli import session as sessions
from cli.errors import CliError, ExitCode
from sensei.org.v1 import auth_pb2, auth_pb2_grpc
from shared import tls
from shared.tls import TlsSettings, secure_channel

MAX_MESSAGE_BYTES = 8 * 1024 * 1024


def with_tls_flags(
    environ: Mapping[str, str], ca: str | None, cert: str | None, key: str | None
) -> Mapping[str, str]:
    """`environ` with --tls-ca/--tls-cert/--tls-key as the SENSEI_TLS_* they stand for."""
    flags = {tls.CA_FILE: ca, tls.CLIENT_CERT_FILE: cert, tls.CLIENT_KEY_FILE: key}
    given = {name: value for name, value in flags.items() if value}
    return {**environ, **given} if given else environ


def open_channel(address: str, environ: Mapping[str, str]) -> grpc.aio.Channel:
    """A channel to `address`: TLS when SENSEI_TLS_* (or the --tls-* flags) say so."""
    options = [("grpc.max_receive_message_length", MAX_MESSAGE_BYTES)]
    settings = TlsSettings.from_env(environ)
    if settings is None:
        return grpc.aio.insecure_channel(address, options=options)
    return secure_channel(address, settings, options)


async def exchange_api_key(
    org_address: str,
    api_key: str,
    deadline_seconds: float,
    environ: Mapping[str, str] | None = None,
) -> auth_pb2.ExchangeApiKeyResponse:
    """Exchanges an API key for an access token at the org service."""
    async with open_channel(org_address, environ or {}) as channel:
        auth = auth_pb2_grpc.AuthServiceStub(channel)
        response: auth_pb2.ExchangeApiKeyResponse = await auth.ExchangeApiKey(
            auth_pb2.ExchangeApiKeyRequest(api_key=api_key), timeout=deadline_seconds
        )
        return response


class Client:
    """Everything a command needs to call the services; opened per command, closed after."""

    def __init__(
        self,
        environ: Mapping[str, str],
        address_flags: Mapping[str, str | None],
        timeout: float,
        *,
        as_operator: bool = False,
    ) -> None:
        self.environ = environ
        # Act as the platform operator with $SENSEI_OPERATOR_API_KEY, whatever the login.
        self.as_operator = as_operator
        self.home: Path = sessions.home(environ)
        self.timeout = timeout
        self._flags = {name: value for name, value in address_flags.items() if value}
        self._session: sessions.Session | None = None
        self._session_loaded = False
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._token: str | None = None

    def address(self, service: str) -> str:
        """A service's address: its flag, else the login's, else SENSEI_<SVC>_ADDR, else default."""
        if service in self._flags:
            return self._flags[service]
        stored = self._stored()
        if stored is not None and service in stored.addresses:
            return stored.addresses[service]
        return sessions.env_address(service, self.environ)

    def channel(self, service: str) -> grpc.aio.Channel:
        """A channel to a service (one per service per command)."""
        if service not in self._channels:
            self._channels[service] = open_channel(self.address(service), self.environ)
        return self._channels[service]

    async def close(self) -> None:
        """Closes every channel."""
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()

    async def token(self) -> str:
        """An access token valid for a while; CliError(UNAUTHENTICATED) when there is none."""
        if self._token is None:
            self._token = await self._resolve_token()
        return self._token

    async def metadata(self) -> tuple[tuple[str, str], ...]:
        """Call metadata with the bearer token."""
        return (("authorization", f"Bearer {await self.token()}"),)

    async def claims(self) -> sessions.TokenClaims:
        """The claims of the token this command uses."""
        return sessions.claims_of(await self.token())

    async def org_name(self) -> str:
        """`organizations/{org}` of the caller; CliError for a platform principal."""
        org = (await self.claims()).org_name
        if org is None:
            raise CliError(
                "a service account or the platform operator belongs to no organization: give"
                " full resource names (organizations/{org}/…)",
                ExitCode.USAGE,
            )
        return org

    def _stored(self) -> sessions.Session | None:
        if not self._session_loaded:
            self._session = sessions.load(self.home)
            self._session_loaded = True
        return self._session

    async def _resolve_token(self) -> str:
        if self.as_operator:
            return await self._operator_token()
        stored = self._stored()
        if stored is not None and not stored.claims.expired():
            return stored.token
        if stored is not None and stored.api_key:
            response = await self._exchange(stored.api_key)
            self._session = stored.with_token(response.access_token)
            sessions.save(self.home, self._session)
            return self._session.token
        from_env = self.environ.get("SENSEI_TOKEN", "")
        if from_env and not sessions.claims_of(from_env).expired():
            return from_env
        api_key = self.environ.get("SENSEI_API_KEY", "")
        if api_key:
            return (await self._exchange(api_key)).access_token
        if stored is not None:
            expired_at = time.strftime(
                "%Y-%m-%d %H:%M:%S UTC", time.gmtime(stored.claims.expires_at)
            )
            raise CliError(
                f"the login token expired at {expired_at}: run `sensei login` again",
                ExitCode.UNAUTHENTICATED,
            )
        raise CliError(
            "not logged in: run `sensei login --api-key …` (or set SENSEI_API_KEY)",
            ExitCode.UNAUTHENTICATED,
        )

    async def _operator_token(self) -> str:
        api_key = self.environ.get("SENSEI_OPERATOR_API_KEY", "")
        if not api_key:
            raise CliError(
                "--as-operator needs $SENSEI_OPERATOR_API_KEY (printed by the bootstrap;"
                " in .sensei/dev.env)",
                ExitCode.UNAUTHENTICATED,
            )
        token = (await self._exchange(api_key)).access_token
        if sessions.claims_of(token).role != sessions.OPERATOR_ROLE:
            raise CliError(
                "$SENSEI_OPERATOR_API_KEY is not the platform operator's key",
                ExitCode.UNAUTHENTICATED,
            )
        return token

    async def _exchange(self, api_key: str) -> auth_pb2.ExchangeApiKeyResponse:
        return await exchange_api_key(self.address("org"), api_key, self.timeout, self.environ)
