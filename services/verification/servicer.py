"""gRPC servicer of the verification service: request → use case → response. No rules here.

Every message is read and built in messages.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TypeAlias

import grpc

from sensei.verification.v1 import verification_pb2, verification_pb2_grpc
from services.verification import messages
from services.verification.use_cases.signing_keys import SigningKeys
from services.verification.use_cases.verifications import Verifications

_CONTEXT: TypeAlias = grpc.aio.ServicerContext


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
            messages.type_name(request.verification.type),
            list(request.verification.tables),
            request=request,
            response_type=verification_pb2.CreateVerificationResponse,
            respond=messages.create_verification_response,
        )

    async def GetVerification(
        self, request: verification_pb2.GetVerificationRequest, context: _CONTEXT
    ) -> verification_pb2.GetVerificationResponse:
        return messages.get_verification_response(await self._verifications.get(request.name))

    async def ListVerifications(
        self, request: verification_pb2.ListVerificationsRequest, context: _CONTEXT
    ) -> verification_pb2.ListVerificationsResponse:
        page = await self._verifications.list_page(
            request.parent,
            request.page_size,
            request.page_token,
            messages.type_filter(request.type),
            messages.status_filter(request.status),
        )
        return messages.list_verifications_response(page)

    async def WatchVerification(
        self, request: verification_pb2.WatchVerificationRequest, context: _CONTEXT
    ) -> AsyncIterator[verification_pb2.WatchVerificationResponse]:
        async for state in self._verifications.watch(request.name):
            yield messages.watch_verification_response(state)

    async def GetCertificate(
        self, request: verification_pb2.GetCertificateRequest, context: _CONTEXT
    ) -> verification_pb2.GetCertificateResponse:
        return messages.get_certificate_response(await self._signing.certificate(request.name))

    async def VerifyCertificate(
        self, request: verification_pb2.VerifyCertificateRequest, context: _CONTEXT
    ) -> verification_pb2.VerifyCertificateResponse:
        return messages.verify_response(await self._signing.verify(request.envelope))

    async def ListSigningKeys(
        self, request: verification_pb2.ListSigningKeysRequest, context: _CONTEXT
    ) -> verification_pb2.ListSigningKeysResponse:
        page = await self._signing.list_keys(request.page_size, request.page_token)
        return messages.list_signing_keys_response(page)

    async def RotateSigningKey(
        self, request: verification_pb2.RotateSigningKeyRequest, context: _CONTEXT
    ) -> verification_pb2.RotateSigningKeyResponse:
        return await self._signing.rotate(
            request, verification_pb2.RotateSigningKeyResponse, messages.rotate_response
        )

    async def RevokeSigningKey(
        self, request: verification_pb2.RevokeSigningKeyRequest, context: _CONTEXT
    ) -> verification_pb2.RevokeSigningKeyResponse:
        revocation = await self._signing.revoke(request.name, request.reason)
        return messages.revoke_response(revocation)
