"""Proto ⇄ domain mapping of the verification service's messages.

Requests in: enum numbers to domain values (unset → no value or no filter, unknown →
INVALID_ARGUMENT). Domain objects out: every message and response the servicer returns.
"""

from __future__ import annotations

import json
from typing import Any

from sensei.verification.v1 import verification_pb2
from services.verification.certificates import VerificationOutcome
from services.verification.domain import (
    Certificate,
    Verification,
    VerificationStatus,
    VerificationType,
    signing_key_name,
)
from services.verification.envelope import parse_envelope
from services.verification.keyring import SigningKeyRecord
from services.verification.use_cases.signing_keys import Revocation, Rotation
from shared import protoconv
from shared.errors import InvalidArgument
from shared.pagination import Page

pb = verification_pb2


# --- requests in -------------------------------------------------------------------------------


def type_name(value: int, field_name: str = "verification.type") -> str:
    """`VERIFICATION_TYPE_CHECKSUM` → `CHECKSUM`; unset → ""; unknown → INVALID_ARGUMENT."""
    if value == pb.VERIFICATION_TYPE_UNSPECIFIED:
        return ""
    try:
        return pb.VerificationType.Name(value).removeprefix("VERIFICATION_TYPE_")  # type: ignore[arg-type]
    except ValueError:
        raise InvalidArgument.single(field_name, f"unknown verification type {value}") from None


def type_filter(value: int) -> VerificationType | None:
    """A List filter on type; UNSPECIFIED is no filter."""
    name = type_name(value, "type")
    return VerificationType(name) if name else None


def status_filter(value: int) -> VerificationStatus | None:
    """A List filter on status; UNSPECIFIED is no filter."""
    if value == pb.VERIFICATION_STATUS_UNSPECIFIED:
        return None
    try:
        name = pb.VerificationStatus.Name(value)  # type: ignore[arg-type]
    except ValueError:
        raise InvalidArgument.single("status", f"unknown verification status {value}") from None
    return VerificationStatus(name.removeprefix("VERIFICATION_STATUS_"))


# --- messages out ------------------------------------------------------------------------------


def _type_value(verification_type: VerificationType) -> Any:
    return pb.VerificationType.Value(f"VERIFICATION_TYPE_{verification_type.value}")


def verification_proto(verification: Verification) -> verification_pb2.Verification:
    """The API form of a verification."""
    return pb.Verification(
        name=verification.name,
        id=verification.id,
        org_id=verification.org_id,
        migration_id=verification.migration_id,
        type=_type_value(verification.type),
        status=pb.VerificationStatus.Value(f"VERIFICATION_STATUS_{verification.status.value}"),
        score=verification.score,
        certificate_id=verification.certificate_id or "",
        certificate=verification.certificate_name,
        result=protoconv.struct_of(dict(verification.result)),
        tables=list(verification.tables),
        progress=pb.VerificationProgress(
            tables_done=verification.tables_done, tables_total=verification.tables_total
        ),
        create_time=protoconv.timestamp(verification.created_at),
        update_time=protoconv.timestamp(verification.updated_at),
        start_time=protoconv.timestamp(verification.started_at),
        finish_time=protoconv.timestamp(verification.finished_at),
    )


def certificate_proto(certificate: Certificate) -> verification_pb2.Certificate:
    """The API form of a certificate: the envelope bytes as stored, plus what they say."""
    statement: dict[str, Any] = json.loads(parse_envelope(certificate.envelope).payload)
    return pb.Certificate(
        name=certificate.name,
        id=certificate.id,
        org_id=certificate.org_id,
        migration_id=certificate.migration_id,
        verification_id=certificate.verification_id,
        verification=certificate.verification_name,
        envelope=certificate.envelope,
        payload_type=parse_envelope(certificate.envelope).payload_type,
        key_id=certificate.key_id,
        statement=protoconv.struct_of(statement),
        predicate_type=str(statement.get("predicateType", "")),
        source_schema_fingerprint=certificate.source_schema_fingerprint,
        target_schema_fingerprint=certificate.target_schema_fingerprint,
        verification_type=_type_value(certificate.verification_type),
        score=certificate.score,
        result_digest=certificate.result_digest,
        create_time=protoconv.timestamp(certificate.issued_at),
    )


def signing_key_proto(record: SigningKeyRecord) -> verification_pb2.SigningKey:
    """The API form of a signing key (public half only)."""
    return pb.SigningKey(
        name=signing_key_name(record.key_id),
        key_id=record.key_id,
        status=pb.SigningKeyStatus.Value(f"SIGNING_KEY_STATUS_{record.status.value.upper()}"),
        jwk=protoconv.struct_of(record.to_jwk()),
        public_key_pem=record.public_key_pem(),
        not_before=protoconv.timestamp(record.not_before),
        not_after=protoconv.timestamp(record.not_after),
        revoke_time=protoconv.timestamp(record.revoke_time),
        revoke_reason=record.revoke_reason,
    )


# --- responses ---------------------------------------------------------------------------------


def create_verification_response(
    created: Verification,
) -> verification_pb2.CreateVerificationResponse:
    """CreateVerification's answer."""
    return pb.CreateVerificationResponse(verification=verification_proto(created))


def get_verification_response(found: Verification) -> verification_pb2.GetVerificationResponse:
    """GetVerification's answer."""
    return pb.GetVerificationResponse(verification=verification_proto(found))


def list_verifications_response(
    page: Page[Verification],
) -> verification_pb2.ListVerificationsResponse:
    """One page of ListVerifications."""
    return pb.ListVerificationsResponse(
        verifications=[verification_proto(v) for v in page.items],
        next_page_token=page.next_page_token,
    )


def watch_verification_response(state: Verification) -> verification_pb2.WatchVerificationResponse:
    """One state of WatchVerification's stream."""
    return pb.WatchVerificationResponse(verification=verification_proto(state))


def get_certificate_response(found: Certificate) -> verification_pb2.GetCertificateResponse:
    """GetCertificate's answer."""
    return pb.GetCertificateResponse(certificate=certificate_proto(found))


def list_signing_keys_response(
    page: Page[SigningKeyRecord],
) -> verification_pb2.ListSigningKeysResponse:
    """One page of ListSigningKeys."""
    return pb.ListSigningKeysResponse(
        signing_keys=[signing_key_proto(key) for key in page.items],
        next_page_token=page.next_page_token,
    )


def verify_response(outcome: VerificationOutcome) -> verification_pb2.VerifyCertificateResponse:
    """The API form of a verdict."""
    return pb.VerifyCertificateResponse(
        validity=pb.CertificateValidity.Value(f"CERTIFICATE_VALIDITY_{outcome.validity.value}"),
        key_id=outcome.key_id,
        detail=outcome.detail,
        statement=protoconv.struct_of(outcome.statement) if outcome.statement else None,
    )


def rotate_response(rotation: Rotation) -> verification_pb2.RotateSigningKeyResponse:
    """The API form of a rotation: the new active key and the one it retired."""
    return pb.RotateSigningKeyResponse(
        signing_key=signing_key_proto(rotation.active),
        retired_key=signing_key_proto(rotation.retired) if rotation.retired else None,
    )


def revoke_response(revocation: Revocation) -> verification_pb2.RevokeSigningKeyResponse:
    """The API form of a revocation: the revoked key, and the new active key if any."""
    return pb.RevokeSigningKeyResponse(
        signing_key=signing_key_proto(revocation.revoked),
        active_key=signing_key_proto(revocation.active) if revocation.active else None,
    )
