"""Use cases of API keys: one transaction each.

Each method checks the request (domain), reads and writes through the store, records the
audit event in the same transaction (shared outbox), and for creates runs under the
caller's request id (shared idempotency), so a retry returns the first response and
writes nothing. The servicer maps protos in and out; this layer never sees grpc.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

import asyncpg
from google.protobuf.message import Message

from services.org import domain, store
from services.org.domain import ApiKey, ApiKeyDraft, NewSecret
from services.org.store import RowLock
from services.org.use_cases.preconditions import (
    API_KEY_PATTERN,
    ORG_PATTERN,
    USER_PATTERN,
    parse,
    parsed,
    require_current_role,
    require_organization,
)
from shared import outbox
from shared.db import Connection
from shared.errors import FieldViolation, NotFound
from shared.idempotency import create_once
from shared.pagination import Page, PageTokens, page_of, page_size
from shared.principals import current_principal

ResponseT = TypeVar("ResponseT", bound=Message)


@dataclass(frozen=True)
class CreatedApiKey:
    """A new key: its metadata, and its secret (None when a request-id repeat replays it)."""

    key: ApiKey
    secret: str | None


class ApiKeys:
    """CreateApiKey, ListApiKeys, RevokeApiKey."""

    def __init__(self, pool: asyncpg.Pool, page_tokens: PageTokens) -> None:
        self._pool = pool
        self._tokens = page_tokens

    async def create_api_key(
        self,
        parent: str,
        draft: ApiKeyDraft,
        request: Message,
        response_type: type[ResponseT],
        respond: Callable[[CreatedApiKey], ResponseT],
    ) -> ResponseT:
        """CreateApiKey. The stored (replayable) response never holds the secret."""
        ids, extra = parse(parent, ORG_PATTERN, "parent")
        org_id = ids.get("org", "")
        user_id = domain.validate_new_api_key(org_id, draft, datetime.now(UTC), extra)
        actor = current_principal()
        fresh: list[NewSecret] = []

        async def create(conn: Connection) -> ResponseT:
            await require_organization(conn, org_id, parent, lock=RowLock.KEY_SHARE)
            await require_current_role(conn)
            owner = await store.user(conn, org_id, user_id, lock=RowLock.KEY_SHARE)
            if owner is None:
                raise NotFound("User", draft.user_name)
            domain.check_can_manage(actor, owner)
            secret = domain.new_api_key_secret()
            key = await store.insert_api_key(
                conn,
                secret=secret,
                display_name=draft.display_name.strip(),
                org_id=org_id,
                user_id=user_id,
                expires_at=draft.expires_at,
            )
            await outbox.record(
                conn,
                action="api_key.create",
                resource_type="api_key",
                resource_id=key.id,
                org_id=org_id,
                details={"user_id": user_id, "prefix": key.prefix},
            )
            fresh.append(secret)
            return respond(CreatedApiKey(key, None))

        response = await create_once(self._pool, request, response_type, create)
        if fresh:
            # Only the first call sees the secret; it was never part of the stored response.
            setattr(response, "secret", fresh[0].secret)  # noqa: B010
        return response

    async def list_api_keys(
        self,
        parent: str,
        requested_size: int,
        page_token: str,
        user_name: str,
        show_revoked: bool,
    ) -> Page[ApiKey]:
        """ListApiKeys (metadata only), optionally of one user, active only by default."""
        ids, violations = parse(parent, ORG_PATTERN, "parent")
        user_id: str | None = None
        if user_name:
            user_ids, user_violations = parse(user_name, USER_PATTERN, "user")
            violations += user_violations
            if user_ids and ids and user_ids["org"] != ids["org"]:
                violations.append(FieldViolation("user", "must be a user of the parent"))
            user_id = user_ids.get("user")
        domain.raise_if(violations)
        org_id = ids["org"]
        size = page_size(requested_size)
        query = ["api_keys", org_id, user_id, show_revoked]
        after = self._tokens.decode(page_token, query)
        async with self._pool.acquire() as conn:
            await require_organization(conn, org_id, parent)
            rows = await store.api_keys_page(
                conn,
                org_id,
                user_id=user_id,
                show_revoked=show_revoked,
                after=after,
                limit=size + 1,
            )
        return page_of(self._tokens, rows, size, query, lambda key: [key.created_at, key.id])

    async def revoke_api_key(self, name: str) -> ApiKey:
        """RevokeApiKey: the key can no longer be exchanged. Revoking twice is harmless."""
        ids = parsed(name, API_KEY_PATTERN, "name")
        actor = current_principal()
        async with self._pool.acquire() as conn, conn.transaction():
            key = await store.api_key(conn, ids["org"], ids["api_key"], lock=RowLock.NO_KEY_UPDATE)
            if key is None:
                raise NotFound("ApiKey", name)
            await require_current_role(conn)
            if key.user_id is not None:
                owner = await store.user(conn, ids["org"], key.user_id)
                if owner is not None:
                    domain.check_can_manage(actor, owner)
            revoked = await store.revoke_api_key(conn, key.id)
            if key.revoked_at is None:
                await store.append_revocation(conn, api_key_id=key.id)
                await outbox.record(
                    conn,
                    action="api_key.revoke",
                    resource_type="api_key",
                    resource_id=key.id,
                    org_id=ids["org"],
                    details={"user_id": key.user_id, "prefix": key.prefix},
                )
        return revoked
