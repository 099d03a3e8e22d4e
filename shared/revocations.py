"""Token freshness outside the org service: follow its revocation log, refuse stale tokens.

An access token is checked locally (signature, expiry), so on its own it would keep its
power until it expires. The org service appends to a revocation log whenever tokens must
stop counting sooner: an API key revoked, a principal deleted or given another role, an
organization deleted. Every other service follows that log over
`AuthService.WatchTokenRevocations` (`RevocationFollower`, one stream per process, resumed
after the last sequence it saw) and keeps the entries that can still matter in memory
(`RevocationList`); the shared access control asks it about every call.

A follower that has not heard from the org service for longer than `max_staleness`
(`SENSEI_REVOCATION_MAX_STALENESS_SECONDS`, default 30 s; the stream sends a heartbeat
every second) cannot know what was revoked meanwhile: it fails closed for every call above
viewer level (UNAVAILABLE, reason `REVOCATIONS_UNAVAILABLE`) until the stream is back.
See docs/architecture.md#token-freshness.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import grpc

from sensei.org.v1 import auth_pb2, auth_pb2_grpc
from shared import client, protoconv
from shared.errors import Unauthenticated, Unavailable
from shared.listen import wait_woken
from shared.principals import Principal

log = logging.getLogger(__name__)

DEFAULT_MAX_STALENESS_SECONDS = 30.0
# An entry about a key or principal matters only while tokens issued before it can live.
_LONGEST_TOKEN_LIFE = timedelta(hours=24, minutes=5)


@dataclass(frozen=True)
class Revocation:
    """One entry of the org service's revocation log."""

    sequence: int
    api_key_id: str | None = None
    subject: str | None = None  # users/{id}, serviceAccounts/{id} or operators/{id}
    org_id: str | None = None
    current_role: str | None = None  # for `subject`: the role tokens must carry; None = gone
    revoked_at: datetime | None = None

    def to_proto(self) -> auth_pb2.TokenRevocation:
        """The TokenRevocation message of this entry."""
        message = auth_pb2.TokenRevocation(
            sequence=self.sequence, current_role=self.current_role or ""
        )
        if self.api_key_id is not None:
            message.api_key_id = self.api_key_id
        elif self.subject is not None:
            message.subject = self.subject
        elif self.org_id is not None:
            message.organization_id = self.org_id
        if self.revoked_at is not None:
            message.revoke_time.FromDatetime(self.revoked_at)
        return message

    @classmethod
    def from_proto(cls, message: auth_pb2.TokenRevocation) -> Revocation:
        """The entry a TokenRevocation message carries."""
        target = message.WhichOneof("target")
        return cls(
            sequence=message.sequence,
            api_key_id=message.api_key_id if target == "api_key_id" else None,
            subject=message.subject if target == "subject" else None,
            org_id=message.organization_id if target == "organization_id" else None,
            current_role=message.current_role or None,
            revoked_at=(
                protoconv.to_datetime(message.revoke_time)
                if message.HasField("revoke_time")
                else None
            ),
        )


class TokenRevoked(Unauthenticated):
    """A token that verified, but stopped counting (UNAUTHENTICATED, `TOKEN_REVOKED`)."""

    def __init__(self, why: str) -> None:
        super().__init__(
            f"this access token no longer counts: {why}; exchange an API key again",
            reason="TOKEN_REVOKED",
        )


class RevocationList:
    """What the log said, as far as it can still matter; answers for one token at a time.

    Pure state: `apply` takes entries in sequence order, `revoked_because` looks a token up
    (three dictionary reads), `fresh` says whether the view is recent enough to trust.
    """

    def __init__(
        self,
        max_staleness_seconds: float = DEFAULT_MAX_STALENESS_SECONDS,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_staleness = max_staleness_seconds
        self.sequence = 0
        self._clock = clock
        self._heard_at: float | None = None  # when the org service last confirmed our view
        self._keys: dict[str, datetime] = {}
        self._subjects: dict[str, tuple[str | None, datetime]] = {}
        self._orgs: dict[str, datetime] = {}

    def apply(self, revocation: Revocation) -> None:
        """Takes one entry: tokens it concerns are refused from now on (repeats are
        harmless). The resume position moves only with `advance`/`confirmed`."""
        at = revocation.revoked_at or datetime.now(UTC)
        if revocation.api_key_id is not None:
            self._keys[revocation.api_key_id] = at
        elif revocation.subject is not None:
            self._subjects[revocation.subject] = (revocation.current_role, at)
        elif revocation.org_id is not None:
            self._orgs[revocation.org_id] = at

    def advance(self, sequence: int) -> None:
        """Everything up to `sequence` is fully handled: resume after it."""
        self.sequence = max(self.sequence, sequence)

    def confirmed(self, sequence: int) -> None:
        """The org service says our view is complete up to `sequence`, as of now."""
        self.advance(sequence)
        self._heard_at = self._clock()

    @property
    def fresh(self) -> bool:
        """Whether the org service confirmed our view within the last `max_staleness`."""
        return self._heard_at is not None and self._clock() - self._heard_at <= self.max_staleness

    def revoked_because(
        self, *, api_key_id: str | None, subject: str, role: str, org_id: str | None
    ) -> str | None:
        """Why a token with these claims no longer counts, or None when it still does."""
        if api_key_id is not None and api_key_id in self._keys:
            return "its API key was revoked"
        if org_id is not None and org_id in self._orgs:
            return "its organization was deleted"
        found = self._subjects.get(subject)
        if found is not None:
            current_role, _ = found
            if current_role is None:
                return "its principal was deleted"
            if current_role != role:
                return f"the role changed to {current_role}"
        return None

    def forget_before(self, cutoff: datetime) -> int:
        """Drops entries older than `cutoff` (no token issued before them is alive); count."""
        dropped = 0
        for entries in (self._keys, self._orgs):
            for key in [key for key, at in entries.items() if at < cutoff]:
                del entries[key]
                dropped += 1
        for subject in [s for s, (_, at) in self._subjects.items() if at < cutoff]:
            del self._subjects[subject]
            dropped += 1
        return dropped


class FollowedFreshness:
    """The `TokenFreshness` of a service that follows the revocation log."""

    def __init__(self, revocations: RevocationList) -> None:
        self._revocations = revocations

    async def check(self, principal: Principal, *, write: bool) -> None:
        """TOKEN_REVOKED for a revoked token; UNAVAILABLE for a write on a stale view."""
        why = self._revocations.revoked_because(
            api_key_id=principal.api_key_id,
            subject=principal.subject,
            role=principal.role,
            org_id=principal.org_id,
        )
        if why is not None:
            raise TokenRevoked(why)
        if write and not self._revocations.fresh:
            raise Unavailable(
                "cannot confirm that the access token is still valid: the org service's"
                " revocation feed is unreachable; retry",
                reason="REVOCATIONS_UNAVAILABLE",
            )


OrganizationDeleted = Callable[[str], Awaitable[None]]


class RevocationFollower:
    """Follows `AuthService.WatchTokenRevocations` into a `RevocationList`, forever.

    Reconnects with exponential backoff and jitter, resuming after the last sequence it
    applied. Callbacks registered with `on_organization_deleted` run for every deletion
    the stream carries (also when a restarted process replays it: they must be
    idempotent); one that fails stops the batch, and the stream is resumed before it, so
    the deletion is retried rather than skipped.
    """

    def __init__(
        self,
        org_address: str,
        metadata: Callable[[], Awaitable[tuple[tuple[str, str], ...]]],
        revocations: RevocationList,
        *,
        max_backoff_seconds: float = 2.0,
    ) -> None:
        self._address = org_address
        self._metadata = metadata
        self.revocations = revocations
        self._max_backoff = max_backoff_seconds
        self._deletion_callbacks: list[OrganizationDeleted] = []
        self._caught_up = asyncio.Event()
        self._channel: grpc.aio.Channel | None = None

    def on_organization_deleted(self, callback: OrganizationDeleted) -> None:
        """Runs `callback(org_id)` for each organization deletion the log carries."""
        self._deletion_callbacks.append(callback)

    async def wait_caught_up(self, within_seconds: float) -> bool:
        """Waits (at most `within_seconds`) for the first complete replay; whether it came."""
        return await wait_woken(self._caught_up, within_seconds)

    async def run(self) -> None:
        """Follows the log until cancelled."""
        backoff = 0.05
        while True:
            try:
                await self._follow()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the stream broke, or a callback failed: resume
                log.warning("revocation feed interrupted (%s); resuming", _describe(exc))
            await asyncio.sleep(backoff * (0.5 + random.random()))  # backoff, not timing
            backoff = min(self._max_backoff, backoff * 2)
            if self.revocations.fresh:
                backoff = 0.05  # it was working a moment ago: come back quickly

    async def _follow(self) -> None:
        if self._channel is None:
            self._channel = client.channel(self._address)
        stub = auth_pb2_grpc.AuthServiceStub(self._channel)
        stream = stub.WatchTokenRevocations(
            auth_pb2.WatchTokenRevocationsRequest(after_sequence=self.revocations.sequence),
            metadata=await self._metadata(),
        )
        async for batch in stream:
            revocations = [Revocation.from_proto(message) for message in batch.revocations]
            # Refuse the tokens first; the slower consequences of a deletion follow, and the
            # position moves past them only once they are done.
            for revocation in revocations:
                self.revocations.apply(revocation)
            for revocation in revocations:
                if revocation.org_id is not None:
                    for callback in self._deletion_callbacks:
                        await callback(revocation.org_id)
            self.revocations.advance(batch.sequence)
            if batch.caught_up:
                self.revocations.confirmed(batch.sequence)
                self._caught_up.set()
                self.revocations.forget_before(datetime.now(UTC) - _LONGEST_TOKEN_LIFE)

    async def close(self) -> None:
        """Closes the channel to the org service."""
        if self._channel is not None:
            await self._channel.close()


def _describe(exc: Exception) -> str:
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"{exc.code().name}: {exc.details()}"
    return f"{type(exc).__name__}: {exc}"
