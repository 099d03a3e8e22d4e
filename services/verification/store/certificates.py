"""SQL of certificates (the `certificates` table): issued envelopes, stored verbatim."""

from __future__ import annotations

import asyncpg

from services.verification.domain import Certificate, VerificationType
from shared.db import Connection

_CERTIFICATE_COLUMNS = (
    "id::text AS id, org_id::text AS org_id, migration_id::text AS migration_id,"
    " verification_id::text AS verification_id, key_id, envelope, verification_type, score,"
    " result_digest, source_schema_fingerprint, target_schema_fingerprint, issued_at"
)


def _certificate(row: asyncpg.Record) -> Certificate:
    return Certificate(
        id=row["id"],
        org_id=row["org_id"],
        migration_id=row["migration_id"],
        verification_id=row["verification_id"],
        key_id=row["key_id"],
        envelope=bytes(row["envelope"]),
        verification_type=VerificationType(row["verification_type"]),
        score=float(row["score"]),
        result_digest=row["result_digest"],
        source_schema_fingerprint=row["source_schema_fingerprint"],
        target_schema_fingerprint=row["target_schema_fingerprint"],
        issued_at=row["issued_at"],
    )


async def insert_certificate(conn: Connection, certificate: Certificate) -> None:
    """Stores an issued certificate, envelope bytes verbatim."""
    await conn.execute(
        "INSERT INTO certificates (id, org_id, migration_id, verification_id, key_id, envelope,"
        " verification_type, score, result_digest, source_schema_fingerprint,"
        " target_schema_fingerprint, issued_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        certificate.id,
        certificate.org_id,
        certificate.migration_id,
        certificate.verification_id,
        certificate.key_id,
        certificate.envelope,
        certificate.verification_type.value,
        certificate.score,
        certificate.result_digest,
        certificate.source_schema_fingerprint,
        certificate.target_schema_fingerprint,
        certificate.issued_at,
    )


async def certificate(conn: Connection, org_id: str, certificate_id: str) -> Certificate | None:
    """One certificate of an organization."""
    row = await conn.fetchrow(
        f"SELECT {_CERTIFICATE_COLUMNS} FROM certificates WHERE id = $1 AND org_id = $2",
        certificate_id,
        org_id,
    )
    return None if row is None else _certificate(row)
