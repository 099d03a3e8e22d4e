"""The org service's genuine token signing key, for tests that forge or mint tokens."""

from __future__ import annotations

import asyncpg
from cryptography.hazmat.primitives.asymmetric import ec

from services.org.tokens import KeyVault, SigningKey
from tests.harness.suite import RUN_SECRETS

# The key-encryption key the suite's org services seal private keys with.
KEY_ENCRYPTION_KEY = RUN_SECRETS["SENSEI_ORG_KEY_ENCRYPTION_KEY"]


async def active_token_signing_key(
    conn: asyncpg.Connection,
) -> tuple[str, ec.EllipticCurvePrivateKey]:
    """(kid, private key) of the active key; `conn` has the org schema on its search path.

    The suite's services run with the run's key-encryption key, so the key can be unsealed here.
    """
    row = await conn.fetchrow("SELECT * FROM token_signing_keys WHERE state = 'ACTIVE'")
    assert row is not None
    key = SigningKey(
        kid=row["kid"],
        public_key_der=bytes(row["public_key_der"]),
        private_key_encrypted=bytes(row["private_key_encrypted"]),
        kek_id=row["kek_id"],
        state=row["state"],
        created_at=row["created_at"],
        retired_at=row["retired_at"],
    )
    return key.kid, KeyVault.from_setting(KEY_ENCRYPTION_KEY).unseal(key)
