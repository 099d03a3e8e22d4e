"""gRPC servicer of the verification service: protos in, use cases, protos out. No rules here."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any, TypeAlias

import grpc

from sensei.verification.v1 import verification_pb2, verification_pb2_grpc
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
from services.verification.use_cases.signing_keys import Revocation, Rotation, SigningKeys
from services.verification.use_cases.verifications import Verifications
from shared import protoconv
from shared.errors import InvalidArgument

_CONTEXT: TypeAlias = grpc.aio.ServicerContext

pb = verification_pb2


# --- mapping -----------------------------------------------------------------------------------


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


def verify_response(outcome: VerificationOutcome) -> verification_pb2.VerifyCertificateResponse:
    """The API form of a verdict."""
    return pb.VerifyCertificateResponse(
        validity=pb.CertificateValidity.Value(f"CERTIFICATE_VALIDITY_{outcome.validity.value}"),
        key_id=outcome.key_id,
        detail=outcome.detail,
        statement=protoconv.struct_of(outcome.statement) if outcome.statement else None,
    )


def _rotate_response(rotation: Rotation) -> verification_pb2.RotateSigningKeyResponse:
    return pb.RotateSigningKeyResponse(
        signing_key=signing_key_proto(rotation.active),
        retired_key=signing_key_proto(rotation.retired) if rotation.retired else None,
    )


def _revoke_response(revocation: Revocation) -> verification_pb2.RevokeSigningKeyResponse:
    return pb.RevokeSigningKeyResponse(
        signing_key=signing_key_proto(revocation.revoked),
        active_key=signing_key_proto(revocation.active) if revocation.active else None,
    )


# --- servicer ----------------------------------------------------------------------------------


class VerificationServicer(verification_pb2_grpc.VerificationServiceServicer):  # type: ignore[misc]
    """sensei.verification.v1.VerificationService."""

    def __init__(self, verifications: Verifications, signing: SigningKeys) -> None:
        self._verifications = verifications
        self._signing = signing

    async def CreateVerification(
        self, request: verification_pb2.CreateVerificationRequest, context: _CONTEXT
    ) -> verification_pb2.CreateVerificationResponse:
        return await self._verifications.create(
            request.parent,
            type_name(request.verification.type),
            list(request.verification.tables),
            request=request,
            response_type=pb.CreateVerificationResponse,
            respond=lambda created: pb.CreateVerificationResponse(
                verification=verification_proto(created)
            ),
        )

    async def GetVerification(
        self, request: verification_pb2.GetVerificationRequest, context: _CONTEXT
    ) -> verification_pb2.GetVerificationResponse:
        found = await self._verifications.get(request.name)
        return pb.GetVerificationResponse(verification=verification_proto(found))

    async def ListVerifications(
        self, request: verification_pb2.ListVerificationsRequest, context: _CONTEXT
    ) -> verification_pb2.ListVerificationsResponse:
        page = await self._verifications.list_page(
            request.parent,
            request.page_size,
            request.page_token,
            type_filter(request.type),
            status_filter(request.status),
        )
        return pb.ListVerificationsResponse(
            verifications=[verification_proto(v) for v in page.items],
            next_page_token=page.next_page_token,
        )

    async def WatchVerification(
        self, request: verification_pb2.WatchVerificationRequest, context: _CONTEXT
    ) -> AsyncIterator[verification_pb2.WatchVerificationResponse]:
        async for state in self._verifications.watch(request.name):
            yield pb.WatchVerificationResponse(verification=verification_proto(state))

    async def GetCertificate(
        self, request: verification_pb2.GetCertificateRequest, context: _CONTEXT
    ) -> verification_pb2.GetCertificateResponse:
        found = await self._signing.certificate(request.name)
        return pb.GetCertificateResponse(certificate=certificate_proto(found))

    async def VerifyCertificate(
        self, request: verification_pb2.VerifyCertificateRequest, context: _CONTEXT
    ) -> verification_pb2.VerifyCertificateResponse:
        return verify_response(await self._signing.verify(request.envelope))

    async def ListSigningKeys(
        self, request: verification_pb2.ListSigningKeysRequest, context: _CONTEXT
    ) -> verification_pb2.ListSigningKeysResponse:
        page = await self._signing.list_keys(request.page_size, request.page_token)
        return pb.ListSigningKeysResponse(
            signing_keys=[signing_key_proto(key) for key in page.items],
            next_page_token=page.next_page_token,
        )

    async def RotateSigningKey(
        self, request: verification_pb2.RotateSigningKeyRequest, context: _CONTEXT
    ) -> verification_pb2.RotateSigningKeyResponse:
        return await self._signing.rotate(request, pb.RotateSigningKeyResponse, _rotate_response)

    async def RevokeSigningKey(
        self, request: verification_pb2.RevokeSigningKeyRequest, context: _CONTEXT
    ) -> verification_pb2.RevokeSigningKeyResponse:
        revocation = await self._signing.revoke(request.name, request.reason)
        return _revoke_response(revocation)
