"""The revocation list that services follow: which tokens it refuses, and when it is stale."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sensei.org.v1 import auth_pb2
from shared.errors import Unauthenticated, Unavailable
from shared.principals import Principal
from shared.revocations import FollowedFreshness, Revocation, RevocationList

ORG = "a0000000-0000-4000-8000-000000000001"
OTHER_ORG = "a0000000-0000-4000-8000-000000000002"
KEY = "b0000000-0000-4000-8000-000000000001"
NOW = datetime(2026, 12, 8, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _principal(**override: str) -> Principal:
    values = {"subject": "users/u1", "role": "ADMIN", "org_id": ORG, "api_key_id": KEY}
    values.update(override)
    return Principal(**values)  # type: ignore[arg-type]


def _claims(principal: Principal) -> dict[str, str | None]:
    return {
        "api_key_id": principal.api_key_id,
        "subject": principal.subject,
        "role": principal.role,
        "org_id": principal.org_id,
    }


def test_nothing_revoked_revokes_nothing() -> None:
    assert RevocationList().revoked_because(**_claims(_principal())) is None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("revocation", "why"),
    [
        (Revocation(1, api_key_id=KEY), "its API key was revoked"),
        (Revocation(1, org_id=ORG), "its organization was deleted"),
        (Revocation(1, subject="users/u1"), "its principal was deleted"),
        (Revocation(1, subject="users/u1", current_role="VIEWER"), "the role changed to VIEWER"),
    ],
)
def test_each_kind_of_revocation_refuses_the_token(revocation: Revocation, why: str) -> None:
    revocations = RevocationList()
    revocations.apply(revocation)
    assert revocations.revoked_because(**_claims(_principal())) == why  # type: ignore[arg-type]


def test_a_revocation_concerns_only_its_target() -> None:
    revocations = RevocationList()
    for revocation in (
        Revocation(1, api_key_id="b0000000-0000-4000-8000-00000000000f"),
        Revocation(2, org_id=OTHER_ORG),
        Revocation(3, subject="users/someone-else"),
    ):
        revocations.apply(revocation)
    assert revocations.revoked_because(**_claims(_principal())) is None  # type: ignore[arg-type]
    assert revocations.sequence == 0  # applied, but the position moves only when handled
    revocations.advance(3)
    assert revocations.sequence == 3


def test_a_token_with_the_current_role_still_counts_after_a_role_change() -> None:
    revocations = RevocationList()
    revocations.apply(Revocation(1, subject="users/u1", current_role="VIEWER"))
    revocations.apply(Revocation(2, subject="users/u1", current_role="ADMIN"))  # promoted back
    assert revocations.revoked_because(**_claims(_principal(role="ADMIN"))) is None  # type: ignore[arg-type]
    assert revocations.revoked_because(**_claims(_principal(role="OWNER"))) is not None  # type: ignore[arg-type]


def test_the_view_is_fresh_only_within_the_bound_after_a_confirmation() -> None:
    clock = Clock()
    revocations = RevocationList(max_staleness_seconds=30, clock=clock)
    assert not revocations.fresh  # never heard from the org service
    revocations.confirmed(7)
    assert revocations.fresh and revocations.sequence == 7
    clock.now += 30
    assert revocations.fresh
    clock.now += 0.5
    assert not revocations.fresh


async def test_a_stale_view_fails_writes_closed_and_lets_reads_pass() -> None:
    clock = Clock()
    revocations = RevocationList(max_staleness_seconds=1, clock=clock)
    freshness = FollowedFreshness(revocations)
    with pytest.raises(Unavailable) as caught:
        await freshness.check(_principal(), write=True)
    assert caught.value.reason == "REVOCATIONS_UNAVAILABLE"
    await freshness.check(_principal(), write=False)
    revocations.confirmed(0)
    await freshness.check(_principal(), write=True)
    revocations.apply(Revocation(1, api_key_id=KEY))
    with pytest.raises(Unauthenticated) as revoked:
        await freshness.check(_principal(), write=False)
    assert revoked.value.reason == "TOKEN_REVOKED"


def test_entries_older_than_any_token_are_forgotten() -> None:
    revocations = RevocationList()
    revocations.apply(Revocation(1, api_key_id=KEY, revoked_at=NOW - timedelta(days=2)))
    revocations.apply(Revocation(2, org_id=ORG, revoked_at=NOW))
    assert revocations.forget_before(NOW - timedelta(days=1)) == 1
    assert revocations.revoked_because(**_claims(_principal(org_id=OTHER_ORG))) is None  # type: ignore[arg-type]
    assert revocations.revoked_because(**_claims(_principal())) == "its organization was deleted"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "revocation",
    [
        Revocation(5, api_key_id=KEY, revoked_at=NOW),
        Revocation(6, subject="users/u1", current_role="MEMBER", revoked_at=NOW),
        Revocation(7, subject="operators/o1", revoked_at=NOW),
        Revocation(8, org_id=ORG, revoked_at=NOW),
    ],
)
def test_an_entry_survives_the_wire(revocation: Revocation) -> None:
    message = auth_pb2.TokenRevocation.FromString(revocation.to_proto().SerializeToString())
    assert Revocation.from_proto(message) == revocation
