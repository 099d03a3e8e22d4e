"""Use cases of the token authority: API-key exchange, published keys, rotation, accounts.

The active signing key is read from the database on every exchange, so a rotation on one
replica takes effect on all of them at once; unsealed private keys are cached by kid
(a kid's key never changes). Creation and rotation take one advisory lock, so replicas
starting together create exactly one key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
from cryptography.hazmat.primitives.asymmetric import ec

from services.org import domain, store
from services.org.domain import ServiceAccount
from services.org.tokens import AccessToken, Jwk, SigningKey, TokenSigner, jwk_of
from shared import outbox
from shared.db import Connection
from shared.errors import Unauthenticated
from shared.outbox import PLATFORM_ORG_ID


@dataclass(frozen=True)
class CreatedServiceAccount:
    """A new service account and its first API key secret."""

    account: ServiceAccount
    secret: str


class TokenAuthority:
    """Issues access tokens and manages the keys that sign them."""

    def __init__(self, pool: asyncpg.Pool, signer: TokenSigner) -> None:
        self._pool = pool
        self._signer = signer

    async def ensure_signing_key(self) -> SigningKey:
        """The active key, created first if there is none (race-safe across replicas)."""
        async with self._pool.acquire() as conn:
            key = await store.active_signing_key(conn)
            if key is not None:
                return key
            async with conn.transaction():
                await store.lock_signing_keys(conn)
                key = await store.active_signing_key(conn)
                if key is None:
                    key = await self._insert_new_key(conn)
            return key

    async def rotate(self) -> Jwk:
        """RotateTokenSigningKey: a new active key; the old one stays published.

        Audited on the platform chain: a key belongs to no organization.
        """
        async with self._pool.acquire() as conn, conn.transaction():
            await store.lock_signing_keys(conn)
            await store.retire_active_signing_key(conn)
            key = await self._insert_new_key(conn)
            await outbox.record(
                conn,
                action="token_signing_key.rotate",
                resource_type="token_signing_key",
                resource_id=key.kid,
                org_id=PLATFORM_ORG_ID,
            )
        return jwk_of(key)

    async def published_keys(self) -> list[Jwk]:
        """GetJwks: active and retired keys, newest first."""
        async with self._pool.acquire() as conn:
            keys = await store.signing_keys(conn)
        return [jwk_of(key) for key in keys]

    async def exchange(self, secret: str) -> AccessToken:
        """ExchangeApiKey: a short-lived token for a valid, unrevoked, unexpired key."""
        if not domain.looks_like_api_key(secret):
            raise Unauthenticated("not a valid API key", reason="API_KEY_INVALID")
        now = datetime.now(UTC)
        async with self._pool.acquire() as conn:
            owner = await store.api_key_owner(conn, domain.secret_sha256(secret))
            if owner is None:
                raise Unauthenticated("not a valid API key", reason="API_KEY_INVALID")
            if owner.key.revoked_at is not None:
                raise Unauthenticated("the API key was revoked", reason="API_KEY_REVOKED")
            if not owner.key.usable_at(now):
                raise Unauthenticated("the API key has expired", reason="API_KEY_EXPIRED")
            key = await store.active_signing_key(conn)
            await store.touch_api_key(conn, owner.key.id)
        if key is None:
            key = await self.ensure_signing_key()
        return self._signer.mint(
            key,
            subject=owner.subject,
            role=owner.role,
            org_id=owner.key.org_id,
            api_key_id=owner.key.id,
            now=now,
        )

    async def create_service_account(self, display_name: str) -> CreatedServiceAccount:
        """CreateServiceAccount with its first API key."""
        domain.check_service_account(display_name)
        async with self._pool.acquire() as conn, conn.transaction():
            created = await create_service_account(conn, display_name.strip())
            await outbox.record(
                conn,
                action="service_account.create",
                resource_type="service_account",
                resource_id=created.account.id,
                org_id=PLATFORM_ORG_ID,
                details={"display_name": created.account.display_name},
            )
            return created

    async def _insert_new_key(self, conn: Connection) -> SigningKey:
        vault = self._signer.vault
        kid, public_der, sealed = vault.generate()
        return await store.insert_active_signing_key(conn, kid, public_der, sealed, vault.kek_id)


async def create_service_account(conn: Connection, display_name: str) -> CreatedServiceAccount:
    """Creates a service account and an API key for it (inside the caller's transaction)."""
    account = await store.insert_service_account(conn, display_name)
    secret = domain.new_api_key_secret()
    await store.insert_api_key(
        conn, secret=secret, display_name=display_name, service_account_id=account.id
    )
    return CreatedServiceAccount(account, secret.secret)


class LocalKeySource:
    """The org service verifies tokens with its own keys, read from its database.

    Public keys never change for a kid, so found keys are cached; unknown kids are looked
    up each time (a primary-key read), so a freshly rotated key is known at once.
    """

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._keys: dict[str, ec.EllipticCurvePublicKey] = {}

    async def public_key(self, kid: str) -> ec.EllipticCurvePublicKey | None:
        """The public key with id `kid`, or None."""
        cached = self._keys.get(kid)
        if cached is not None:
            return cached
        if len(kid) > 128:
            return None
        async with self._pool.acquire() as conn:
            key = await store.signing_key(conn, kid)
        if key is None:
            return None
        public = key.public_key()
        self._keys[kid] = public
        return public
