"""Use cases of the audit trail: append, list, verify, checkpoints.

Appends lock the head row of every chain they touch (in org id order), skip event ids
already stored, extend each chain, and sign a checkpoint when a chain has grown by
`checkpoint_every` entries since its last one, all in one transaction. When the connecting
user may assume `sensei_org_service`, appends run as that role, which may insert audit
rows but never update or delete them. A background loop also signs every chain that grew,
every `checkpoint_seconds`. The servicer maps protos in and out; this layer never sees grpc.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg
from cryptography.hazmat.primitives.asymmetric import ec

from services.org import store as org_store
from services.org.audit import store
from services.org.audit.chain import (
    GENESIS_HASH,
    AuditEntry,
    AuditEvent,
    ChainHead,
    Checkpoint,
    EventDraft,
    extend_chain,
    sign_checkpoint,
    validate_events,
)
from services.org.audit.store import LogFilter
from services.org.audit.verification import Anchor, ChainReport, ChainWalk
from services.org.tokens import TokenSigner
from services.org.use_cases.preconditions import ORG_PATTERN, parsed
from shared import names
from shared.db import DATABASE_ERRORS, Connection
from shared.errors import Aborted, FieldViolation, InvalidArgument, NotFound
from shared.pagination import Page, PageTokens, page_of, page_size

log = logging.getLogger(__name__)

DEFAULT_CHECKPOINT_EVERY = 100
DEFAULT_CHECKPOINT_SECONDS = 60.0
MAX_FILTER_LENGTH = 512
# Entries read per query while verifying: memory stays flat however long the chain.
VERIFY_CHUNK = 1000


@dataclass(frozen=True)
class AppendResult:
    """What an append did."""

    appended: int
    duplicates: int


@dataclass(frozen=True)
class LogQuery:
    """ListAuditLogs filters as sent (empty strings and None: no filter)."""

    user_id: str = ""
    action: str = ""
    resource_type: str = ""
    resource_id: str = ""
    start: datetime | None = None
    end: datetime | None = None


class AuditTrail:
    """The tamper-evident audit log of every organization."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        signer: TokenSigner,
        page_tokens: PageTokens,
        *,
        checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY,
        run_as_service_role: bool = False,
    ) -> None:
        self._pool = pool
        self._signer = signer
        self._tokens = page_tokens
        self._every = checkpoint_every
        self._as_role = run_as_service_role

    # --- append ------------------------------------------------------------------------

    async def append(
        self, drafts: Sequence[EventDraft], extra: Sequence[FieldViolation] = ()
    ) -> AppendResult:
        """AppendAuditEvents: stores each new event once; repeats count as duplicates."""
        events = validate_events(drafts, extra)
        unique: dict[str, AuditEvent] = {}
        for event in events:
            unique.setdefault(event.event_id, event)
        if not unique:
            return AppendResult(0, len(events))
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                appended = await self._append(conn, list(unique.values()))
        except asyncpg.UniqueViolationError as exc:
            # Same event id reported for two organizations at once, or (never expected:
            # the head row lock prevents it) two appends forking a chain. Nothing stored.
            log.warning("audit append conflicted (%s): %s", exc.constraint_name, exc)
            raise Aborted(
                "a concurrent append conflicted; retry", reason="CONCURRENT_APPEND"
            ) from None
        return AppendResult(appended, len(events) - appended)

    async def _append(self, conn: Connection, events: list[AuditEvent]) -> int:
        if self._as_role:
            await store.assume_service_role(conn)
        heads = await store.lock_chain_heads(conn, [event.org_id for event in events])
        stored = await store.stored_event_ids(conn, [event.event_id for event in events])
        by_org: dict[str, list[AuditEvent]] = defaultdict(list)
        for event in events:
            if event.event_id not in stored:
                by_org[event.org_id].append(event)
        if not by_org:
            return 0
        fresh = [event for event in events if event.event_id not in stored]
        _refuse_after_deletion(fresh, await store.closed_chains(conn, list(by_org)))
        now = await store.clock(conn)
        entries: list[AuditEntry] = []
        due: list[ChainHead] = []
        for org_id, org_events in by_org.items():
            head = heads[org_id]
            # Create times never decrease along a chain (time filters rely on it).
            created_at = now if head.appended_at is None else max(now, head.appended_at)
            new = extend_chain(
                head, org_events, [str(uuid.uuid4()) for _ in org_events], created_at
            )
            entries.extend(new)
            moved = ChainHead(
                org_id, new[-1].seq, new[-1].entry_hash, created_at, head.checkpoint_seq
            )
            await store.advance_chain_head(conn, moved)
            if any(_is_deletion_of_its_organization(event) for event in org_events):
                await store.close_chain(conn, org_id)
            if moved.seq - moved.checkpoint_seq >= self._every:
                due.append(moved)
        await store.insert_entries(conn, entries)
        for head in due:
            await self._checkpoint(conn, head, now)
        return len(entries)

    # --- checkpoints -------------------------------------------------------------------

    async def _checkpoint(self, conn: Connection, head: ChainHead, now: datetime) -> None:
        key = await org_store.active_signing_key(conn)
        if key is None:  # setup creates one; only a hand-emptied key table gets here
            log.warning("no active signing key: chain %s not checkpointed", head.org_id)
            return
        checkpoint = sign_checkpoint(head, now, key.kid, self._signer.private_key(key))
        await store.insert_checkpoint(conn, checkpoint)

    async def checkpoint_grown_chains(self, limit: int = 1000) -> int:
        """Signs the head of every chain that grew since its last checkpoint."""
        signed = 0
        async with self._pool.acquire() as conn:
            for org_id in await store.chains_ahead_of_checkpoint(conn, limit):
                async with conn.transaction():
                    if self._as_role:
                        await store.assume_service_role(conn)
                    head = await store.lock_chain_head_if_free(conn, org_id)
                    if head is None or head.seq <= head.checkpoint_seq:
                        continue  # an append holds it (and may sign it) or someone just did
                    await self._checkpoint(conn, head, await store.clock(conn))
                    signed += 1
        return signed

    async def checkpoint_forever(self, every_seconds: float) -> None:
        """Runs `checkpoint_grown_chains` every `every_seconds` until cancelled."""
        while True:
            await asyncio.sleep(every_seconds)
            try:
                await self.checkpoint_grown_chains()
            except DATABASE_ERRORS as exc:
                log.warning("audit checkpoints failed, retrying later: %s", exc)

    async def latest_checkpoint(self, parent: str) -> Checkpoint:
        """GetAuditCheckpoint."""
        org_id = parsed(parent, ORG_PATTERN, "parent")["org"]
        async with self._pool.acquire() as conn:
            checkpoint = await store.latest_checkpoint(conn, org_id)
        if checkpoint is None:
            raise NotFound("AuditCheckpoint", parent)
        return checkpoint

    # --- list --------------------------------------------------------------------------

    async def list_logs(
        self, parent: str, query: LogQuery, requested_size: int, page_token: str
    ) -> Page[AuditEntry]:
        """ListAuditLogs: newest first, keyset pages on seq."""
        violations: list[FieldViolation] = []
        try:
            org_id = parsed(parent, ORG_PATTERN, "parent")["org"]
        except InvalidArgument as exc:
            violations.extend(exc.violations)
            org_id = ""
        if query.user_id and not names.is_uuid(query.user_id):
            violations.append(FieldViolation("user_id", "must be a UUID"))
        for field_name in ("action", "resource_type", "resource_id"):
            if len(getattr(query, field_name)) > MAX_FILTER_LENGTH:
                violations.append(
                    FieldViolation(field_name, f"must be at most {MAX_FILTER_LENGTH} characters")
                )
        if query.start is not None and query.end is not None and query.end <= query.start:
            violations.append(FieldViolation("end_time", "must be after start_time"))
        if requested_size < 0:
            violations.append(FieldViolation("page_size", "must not be negative"))
        if violations:
            raise InvalidArgument(violations)
        size = page_size(requested_size)
        key = [
            "audit_logs",
            org_id,
            query.user_id.lower(),
            query.action,
            query.resource_type,
            query.resource_id,
            query.start.isoformat() if query.start else "",
            query.end.isoformat() if query.end else "",
        ]
        after = self._tokens.decode(page_token, key)
        if after is not None and (len(after) != 1 or not isinstance(after[0], int)):
            raise InvalidArgument.single("page_token", "malformed page token")
        async with self._pool.acquire() as conn:
            bounds: tuple[int | None, int | None] = (None, None)
            if query.start is not None or query.end is not None:
                found = await store.seq_bounds(conn, org_id, query.start, query.end)
                if found is None:
                    return Page([], "")
                bounds = found
            where = LogFilter(
                user_id=query.user_id.lower() or None,
                action=query.action or None,
                resource_type=query.resource_type or None,
                resource_id=query.resource_id or None,
                min_seq=bounds[0],
                max_seq=bounds[1],
            )
            rows = await store.audit_logs_page(conn, org_id, where, after, size + 1)
        return page_of(self._tokens, rows, size, key, lambda entry: [entry.seq])

    # --- verify ------------------------------------------------------------------------

    async def verify(self, parent: str, start_seq: int, end_seq: int) -> ChainReport:
        """VerifyAuditChain over [start_seq or 1, end_seq or the furthest known seq]."""
        violations: list[FieldViolation] = []
        try:
            org_id = parsed(parent, ORG_PATTERN, "parent")["org"]
        except InvalidArgument as exc:
            violations.extend(exc.violations)
            org_id = ""
        if start_seq < 0:
            violations.append(FieldViolation("start_seq", "must not be negative"))
        if end_seq < 0:
            violations.append(FieldViolation("end_seq", "must not be negative"))
        elif end_seq and end_seq < start_seq:
            violations.append(FieldViolation("end_seq", "must not be below start_seq"))
        if violations:
            raise InvalidArgument(violations)
        start = max(1, start_seq)
        # One snapshot: entries, checkpoints and head agree with each other.
        async with (
            self._pool.acquire() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            end = end_seq or await store.furthest_seq(conn, org_id)
            walk = ChainWalk(
                start_seq=start,
                end_seq=end,
                prev_hash=(
                    GENESIS_HASH
                    if start == 1
                    else await store.entry_hash_at(conn, org_id, start - 1)
                ),
                anchors=await self._anchors(conn, org_id, start, end),
            )
            after = start - 1
            while after < end:
                chunk = await store.entries_after(conn, org_id, after, end, VERIFY_CHUNK)
                if not all(walk.feed(entry) for entry in chunk) or len(chunk) < VERIFY_CHUNK:
                    break
                after = chunk[-1].seq
        return walk.finish()

    async def _anchors(
        self, conn: Connection, org_id: str, start: int, end: int
    ) -> dict[int, list[Anchor]]:
        anchors: dict[int, list[Anchor]] = defaultdict(list)
        keys: dict[str, ec.EllipticCurvePublicKey | None] = {}
        for checkpoint in await store.checkpoints_between(conn, org_id, start, end):
            if checkpoint.key_id not in keys:
                found = await org_store.signing_key(conn, checkpoint.key_id)
                keys[checkpoint.key_id] = None if found is None else found.public_key()
            anchors[checkpoint.seq].append(
                Anchor(
                    checkpoint.seq,
                    checkpoint.head_hash,
                    "signed checkpoint",
                    checkpoint.verifies_with(keys[checkpoint.key_id]),
                )
            )
        head = await store.chain_head(conn, org_id)
        if head is not None and head.seq > 0 and start <= head.seq <= end:
            anchors[head.seq].append(Anchor(head.seq, head.head_hash, "chain head"))
        return anchors


def _is_deletion_of_its_organization(event: AuditEvent) -> bool:
    return event.action == "organization.delete" and event.resource_id == event.org_id


def _refuse_after_deletion(events: Sequence[AuditEvent], closed: set[str]) -> None:
    """INVALID_ARGUMENT naming every event that would follow its organization's deletion.

    The relays set such events aside (dead letters in the sending service's outbox), so
    a deleted organization's chain keeps its deletion as its last entry.
    """
    closing: set[str] = set()
    violations: list[FieldViolation] = []
    for index, event in enumerate(events):
        if event.org_id in closed or event.org_id in closing:
            violations.append(
                FieldViolation(
                    f"events[{index}].org_id",
                    "the organization was deleted: its audit chain is closed",
                )
            )
        elif _is_deletion_of_its_organization(event):
            closing.add(event.org_id)
    if violations:
        raise InvalidArgument(violations, reason="AUDIT_CHAIN_CLOSED")
