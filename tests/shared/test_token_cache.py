"""TokenVerifier remembers tokens that verified, until they expire, and nothing else."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from shared.errors import Unauthenticated
from shared.token_verification import TokenVerifier
from tests.shared.conftest import StaticKeys

ORG = str(uuid.uuid4())


class CountingKeys(StaticKeys):
    """StaticKeys that count key look-ups (one per full verification)."""

    lookups: int = 0

    async def public_key(self, kid: str) -> ec.EllipticCurvePublicKey | None:
        self.lookups += 1
        return await super().public_key(kid)


async def test_a_verified_token_is_not_verified_again_and_keeps_each_calls_peer() -> None:
    keys = CountingKeys()
    verifier = TokenVerifier(keys)
    token = keys.token(org=ORG)
    first = await verifier.verify(token, "10.0.0.1")
    second = await verifier.verify(token, "10.0.0.2")
    assert keys.lookups == 1
    assert (first.subject, first.org_id, first.peer_ip) == (second.subject, ORG, "10.0.0.1")
    assert second.peer_ip == "10.0.0.2"


async def test_a_remembered_token_still_expires() -> None:
    keys = CountingKeys()
    verifier = TokenVerifier(keys, leeway_seconds=0)
    expires = int(time.time()) + 2
    token = keys.token(org=ORG, exp=expires)
    await verifier.verify(token)
    await asyncio.sleep(expires - time.time() + 0.2)  # real time: PyJWT reads the clock too
    with pytest.raises(Unauthenticated):
        await verifier.verify(token)


async def test_a_failed_token_is_checked_again_every_time() -> None:
    keys = CountingKeys()
    verifier = TokenVerifier(keys)
    token = keys.token(org=ORG, aud="someone-else")
    for _ in range(2):
        with pytest.raises(Unauthenticated):
            await verifier.verify(token)
    assert keys.lookups == 2


async def test_the_cache_is_bounded() -> None:
    keys = CountingKeys()
    verifier = TokenVerifier(keys, cache_size=2)
    tokens = [keys.token(org=ORG) for _ in range(3)]
    for token in tokens:
        await verifier.verify(token)
    await verifier.verify(tokens[0])  # evicted by the third: verified again
    assert keys.lookups == 4
