"""Certificate signing keys and certificates: use cases, one transaction each.

Private keys live only in the key directory (`Keyring`); PostgreSQL publishes the public halves
with their status. Every replica must see the same key directory (a shared volume or secret):
a replica that meets an active key it does not hold reloads the directory first.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import asyncpg
from cryptography.hazmat.primitives.asymmetric import ec
from google.protobuf.message import Message

from services.verification import store
from services.verification.certificates import (
    IssuedCertificate,
    VerificationOutcome,
    issue_certificate,
    verify_envelope,
)
from services.verification.domain import (
    Certificate,
    check_revoke_reason,
    parse_certificate_name,
    parse_signing_key_name,
    signing_key_name,
)
from services.verification.envelope import CertificateClaims
from services.verification.keyring import Keyring, SigningKeyRecord, SigningKeyStatus, jwks_of
from shared import outbox
from shared.db import Connection
from shared.errors import NotFound, Unavailable
from shared.idempotency import create_once
from shared.pagination import Page, PageTokens, page_of, page_size
from shared.principals import current_principal

log = logging.getLogger(__name__)

ResponseT = TypeVar("ResponseT", bound=Message)


@dataclass(frozen=True)
class Rotation:
    """The outcome of RotateSigningKey."""

    active: SigningKeyRecord
    retired: SigningKeyRecord | None


@dataclass(frozen=True)
class Revocation:
    """The outcome of RevokeSigningKey; `active` is set when the active key was revoked."""

    revoked: SigningKeyRecord
    active: SigningKeyRecord | None


class SigningKeys:
    """Signing key lifecycle, certificate issuing and checking."""

    def __init__(self, pool: asyncpg.Pool, keyring: Keyring, page_tokens: PageTokens) -> None:
        self._pool = pool
        self._keyring = keyring
        self._tokens = page_tokens

    async def ensure_active_key(self) -> SigningKeyRecord:
        """At start-up: an active key whose private half this replica holds.

        A fresh deployment publishes the keyring's first key. When the active key is not in
        the key directory (the directory was lost or replaced), a key of the directory takes
        over and the old one is retired: its certificates stay verifiable.
        """
        async with self._pool.acquire() as conn, conn.transaction():
            await store.lock_signing_keys(conn)
            active = await store.active_signing_key(conn)
            if active is not None and active.key_id in self._keyring.key_ids():
                return active
            self._keyring.reload()
            if active is not None and active.key_id in self._keyring.key_ids():
                return active
            published = {record.key_id for record in await store.signing_keys(conn)}
            fresh = [k for k in self._keyring.key_ids() if k not in published]
            key_id = fresh[0] if fresh else await asyncio.to_thread(self._keyring.generate)
            now = await store.database_now(conn)
            if active is not None:
                log.warning(
                    "active signing key %s is not in the key directory %s; retiring it",
                    active.key_id,
                    self._keyring.directory,
                )
                await store.update_signing_key(conn, active.retired(now))
            return await store.insert_signing_key(
                conn, SigningKeyRecord.new_active(self._keyring.public_key(key_id), now)
            )

    # --- certificates ----------------------------------------------------------------------

    async def issue(self, conn: Connection, claims: CertificateClaims) -> IssuedCertificate:
        """Signs `claims` with the active key, inside the caller's transaction.

        The active key row is share-locked until commit, so a rotation cannot slip between
        choosing the key and storing the certificate.
        """
        active = await store.active_signing_key(conn, share_lock=True)
        if active is None:
            raise Unavailable("no active signing key", reason="NO_SIGNING_KEY")
        return issue_certificate(claims, await self._private_key(active.key_id))

    async def _private_key(self, key_id: str) -> ec.EllipticCurvePrivateKey:
        if key_id not in self._keyring.key_ids():
            # Another replica rotated into the shared directory since this one loaded it.
            await asyncio.to_thread(self._keyring.reload)
        try:
            return self._keyring.private_key(key_id)
        except KeyError:
            raise Unavailable(
                f"the active signing key {key_id} is not in this replica's key directory",
                reason="SIGNING_KEY_MISSING",
            ) from None

    async def certificate(self, name: str) -> Certificate:
        """GetCertificate."""
        org_id, certificate_id = parse_certificate_name(name)
        async with self._pool.acquire() as conn:
            found = await store.certificate(conn, org_id, certificate_id)
        if found is None:
            raise NotFound("Certificate", name)
        return found

    async def verify(self, envelope: bytes) -> VerificationOutcome:
        """VerifyCertificate: the envelope against every published key and its status now."""
        return verify_envelope(envelope, await self.jwks())

    async def jwks(self) -> dict[str, Any]:
        """The published key set with status, as the offline verifier reads it."""
        async with self._pool.acquire() as conn:
            return jwks_of(await store.signing_keys(conn))

    # --- keys ------------------------------------------------------------------------------

    async def list_keys(self, requested_size: int, page_token: str) -> Page[SigningKeyRecord]:
        """ListSigningKeys, newest first."""
        size = page_size(requested_size)
        query = ["signing_keys"]
        after = self._tokens.decode(page_token, query)
        async with self._pool.acquire() as conn:
            keys = await store.signing_keys_page(conn, after, size + 1)
        return page_of(self._tokens, keys, size, query, lambda key: [key.not_before, key.key_id])

    async def rotate(
        self,
        request: Message,
        response_type: type[ResponseT],
        respond: Callable[[Rotation], ResponseT],
    ) -> ResponseT:
        """RotateSigningKey: a new active key; the old one retires. Idempotent by request_id."""

        async def create(conn: Connection) -> ResponseT:
            rotation = await self._rotate(conn)
            await _audit(
                conn,
                action="signing_key.rotate",
                key_id=rotation.active.key_id,
                details={"retired_key_id": rotation.retired.key_id if rotation.retired else ""},
            )
            return respond(rotation)

        return await create_once(self._pool, request, response_type, create)

    async def revoke(self, name: str, reason: str) -> Revocation:
        """RevokeSigningKey: its certificates fail from now on; the active key also rotates."""
        key_id = parse_signing_key_name(name)
        why = check_revoke_reason(reason)
        async with self._pool.acquire() as conn, conn.transaction():
            await store.lock_signing_keys(conn)
            current = await store.signing_key(conn, key_id)
            if current is None:
                raise NotFound("SigningKey", name)
            if current.status is SigningKeyStatus.REVOKED:
                return Revocation(current, None)
            now = await store.database_now(conn)
            replacement = None
            if current.status is SigningKeyStatus.ACTIVE:
                replacement = await self._new_active_key(conn, now)
            revoked = await store.update_signing_key(conn, current.revoked(why, now))
            await _audit(
                conn,
                action="signing_key.revoke",
                key_id=key_id,
                details={
                    "reason": why,
                    "new_active_key_id": replacement.key_id if replacement else "",
                },
            )
        return Revocation(revoked, replacement)

    async def _rotate(self, conn: Connection) -> Rotation:
        await store.lock_signing_keys(conn)
        now = await store.database_now(conn)
        current = await store.active_signing_key(conn)
        retired = None
        if current is not None:
            retired = await store.update_signing_key(conn, current.retired(now))
        fresh = await self._publish_new_key(conn, now)
        return Rotation(fresh, retired)

    async def _new_active_key(self, conn: Connection, now: datetime) -> SigningKeyRecord:
        # The caller revokes the current active key in the same transaction, after this.
        current = await store.active_signing_key(conn)
        if current is not None:
            await store.update_signing_key(conn, current.retired(now))
        return await self._publish_new_key(conn, now)

    async def _publish_new_key(self, conn: Connection, now: datetime) -> SigningKeyRecord:
        key_id = await asyncio.to_thread(self._keyring.generate)
        return await store.insert_signing_key(
            conn, SigningKeyRecord.new_active(self._keyring.public_key(key_id), now)
        )


async def _audit(conn: Connection, *, action: str, key_id: str, details: dict[str, Any]) -> None:
    """Records a key event in the caller's organization's audit log.

    Signing keys belong to no organization; a user's event goes to their own organization,
    a service principal's to the platform chain (see docs/certificates.md).
    """
    await outbox.record(
        conn,
        action=action,
        resource_type="signing_key",
        resource_id=signing_key_name(key_id),
        org_id=current_principal().org_id,
        details=details,
    )
