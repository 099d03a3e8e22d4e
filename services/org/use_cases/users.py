"""Use cases of users: one transaction each.

Each method checks the request (domain), reads and writes through the store, records the
audit event in the same transaction (shared outbox), and for creates runs under the
caller's request id (shared idempotency), so a retry returns the first response and
writes nothing. The servicer maps protos in and out; this layer never sees grpc.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import asyncpg
from google.protobuf.message import Message

from services.org import domain, store
from services.org.domain import User, UserDraft, UserPatch
from services.org.store import RowLock
from services.org.use_cases.preconditions import (
    ORG_PATTERN,
    USER_PATTERN,
    parse,
    parsed,
    require_current_role,
    require_organization,
)
from shared import outbox
from shared.db import Connection
from shared.errors import NotFound
from shared.idempotency import create_once
from shared.pagination import Page, PageTokens, page_of, page_size
from shared.principals import current_principal

ResponseT = TypeVar("ResponseT", bound=Message)


class Users:
    """CreateUser, GetUser, ListUsers, UpdateUser, DeleteUser."""

    def __init__(self, pool: asyncpg.Pool, page_tokens: PageTokens) -> None:
        self._pool = pool
        self._tokens = page_tokens

    async def create_user(
        self,
        parent: str,
        draft: UserDraft,
        request: Message,
        response_type: type[ResponseT],
        respond: Callable[[User], ResponseT],
    ) -> ResponseT:
        """CreateUser: nobody grants a role above their own."""
        ids, extra = parse(parent, ORG_PATTERN, "parent")
        valid = domain.validate_new_user(current_principal(), draft, extra)
        org_id = ids["org"]

        async def create(conn: Connection) -> ResponseT:
            await require_organization(conn, org_id, parent, lock=RowLock.KEY_SHARE)
            await require_current_role(conn)
            user = await store.insert_user(conn, org_id, valid)
            await outbox.record(
                conn,
                action="user.create",
                resource_type="user",
                resource_id=user.id,
                org_id=org_id,
                details={"role": user.role.value},
            )
            return respond(user)

        return await create_once(self._pool, request, response_type, create)

    async def get_user(self, name: str) -> User:
        """GetUser."""
        ids = parsed(name, USER_PATTERN, "name")
        async with self._pool.acquire() as conn:
            found = await store.user(conn, ids["org"], ids["user"])
        if found is None:
            raise NotFound("User", name)
        return found

    async def list_users(
        self, parent: str, requested_size: int, page_token: str, role: str | None
    ) -> Page[User]:
        """ListUsers, optionally of one role."""
        org_id = parsed(parent, ORG_PATTERN, "parent")["org"]
        size = page_size(requested_size)
        query = ["users", org_id, role]
        after = self._tokens.decode(page_token, query)
        async with self._pool.acquire() as conn:
            await require_organization(conn, org_id, parent)
            rows = await store.users_page(conn, org_id, role=role, after=after, limit=size + 1)
        return page_of(self._tokens, rows, size, query, lambda user: [user.created_at, user.id])

    async def update_user(self, name: str, patch: UserPatch) -> User:
        """UpdateUser: role rules, the last OWNER stays an OWNER, etag."""
        ids, extra = parse(name, USER_PATTERN, "user.name")
        if not ids:
            domain.raise_if(extra)
        actor = current_principal()
        async with self._pool.acquire() as conn, conn.transaction():
            owners = await store.lock_owners(conn, ids["org"])
            await require_current_role(conn)
            current = await store.user(conn, ids["org"], ids["user"], lock=RowLock.NO_KEY_UPDATE)
            if current is None:
                raise NotFound("User", name)
            changes = domain.user_changes(actor, current, patch, owners)
            updated = await store.update_user(conn, current.id, changes.values)
            if updated.role != current.role:
                # Tokens that carry the old role stop counting, on every service.
                await store.append_revocation(
                    conn, subject=f"users/{updated.id}", current_role=updated.role.value
                )
            await outbox.record(
                conn,
                action="user.update",
                resource_type="user",
                resource_id=updated.id,
                org_id=updated.org_id,
                details={"fields": sorted(changes.values), "role": updated.role.value},
            )
        return updated

    async def delete_user(self, name: str, etag: str) -> None:
        """DeleteUser: with their API keys; never the last OWNER."""
        ids = parsed(name, USER_PATTERN, "name")
        actor = current_principal()
        async with self._pool.acquire() as conn, conn.transaction():
            owners = await store.lock_owners(conn, ids["org"])
            current = await store.user(conn, ids["org"], ids["user"], lock=RowLock.UPDATE)
            if current is None:
                raise NotFound("User", name)
            await require_current_role(conn)
            domain.check_user_deletable(actor, current, owners, etag)
            await store.delete_user(conn, current.id)
            await store.append_revocation(conn, subject=f"users/{current.id}")
            await outbox.record(
                conn,
                action="user.delete",
                resource_type="user",
                resource_id=current.id,
                org_id=current.org_id,
                details={"role": current.role.value},
            )
