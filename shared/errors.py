"""Domain errors and their one mapping onto rich gRPC statuses.

Domain and service code raise these; the shared error interceptor turns them into
`google.rpc.Status` with an `ErrorInfo` (always), a `BadRequest` listing every field
violation (bad input) or a `QuotaFailure` (plan limits). No other code builds a
`grpc.StatusCode`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2


@dataclass(frozen=True)
class FieldViolation:
    """One problem with one request field (`field` is a dotted path, e.g. `user.email`)."""

    field: str
    description: str
    reason: str = "INVALID"


@dataclass(frozen=True)
class QuotaViolation:
    """One exceeded quota: `subject` is who (e.g. `organizations/123`), `description` what."""

    subject: str
    description: str


# Bounds on what an error echoes back, so a status always fits in gRPC trailers.
MAX_VIOLATIONS = 50
MAX_TEXT = 200


class DomainError(Exception):
    """Base of every error a caller may cause; carries what ErrorInfo needs."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL
    default_reason = "ERROR"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message[: 8 * MAX_TEXT]
        self.reason = reason or self.default_reason
        self.metadata: dict[str, str] = dict(metadata or {})

    def details(self) -> list[any_pb2.Any]:
        """Extra detail messages besides ErrorInfo."""
        return []


class InvalidArgument(DomainError):
    """The request is malformed; lists every violation at once."""

    code = grpc.StatusCode.INVALID_ARGUMENT
    default_reason = "INVALID_ARGUMENT"

    def __init__(
        self,
        violations: Iterable[FieldViolation],
        *,
        message: str | None = None,
        reason: str | None = None,
    ) -> None:
        # Capped so the status fits in gRPC's trailing metadata (16 KiB by default).
        self.violations = [
            FieldViolation(v.field[:MAX_TEXT], v.description[:MAX_TEXT], v.reason[:64])
            for v in list(violations)[:MAX_VIOLATIONS]
        ]
        summary = "; ".join(f"{v.field}: {v.description}" for v in self.violations[:5])
        if len(self.violations) > 5:
            summary += f"; and {len(self.violations) - 5} more"
        super().__init__(message or f"invalid request: {summary}", reason=reason)

    @classmethod
    def single(cls, field_path: str, description: str, reason: str = "INVALID") -> InvalidArgument:
        """An error about one field; a specific `reason` also becomes the ErrorInfo reason."""
        return cls(
            [FieldViolation(field_path, description, reason)],
            reason=None if reason == "INVALID" else reason,
        )

    def details(self) -> list[any_pb2.Any]:
        bad_request = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=v.field, description=v.description, reason=v.reason
                )
                for v in self.violations
            ]
        )
        return [_packed(bad_request)]


class NotFound(DomainError):
    """The named resource does not exist (in the caller's organization)."""

    code = grpc.StatusCode.NOT_FOUND

    def __init__(self, resource_type: str, name: str) -> None:
        super().__init__(
            f"{resource_type} {name!r} not found",
            reason=f"{_snake_upper(resource_type)}_NOT_FOUND",
            metadata={"resource_type": resource_type, "name": name},
        )


class AlreadyExists(DomainError):
    """A unique value (slug, email, fingerprint, certificate id) is taken."""

    code = grpc.StatusCode.ALREADY_EXISTS

    def __init__(self, resource_type: str, field_name: str, value: str) -> None:
        super().__init__(
            f"{resource_type} with {field_name} {value!r} already exists",
            reason=f"{_snake_upper(resource_type)}_ALREADY_EXISTS",
            metadata={"resource_type": resource_type, "field": field_name, "value": value},
        )


class FailedPrecondition(DomainError):
    """The resource is not in a state that allows the request (e.g. illegal transition)."""

    code = grpc.StatusCode.FAILED_PRECONDITION
    default_reason = "FAILED_PRECONDITION"


class QuotaExceeded(DomainError):
    """A plan limit is reached; carries a QuotaFailure."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    default_reason = "QUOTA_EXCEEDED"

    def __init__(
        self,
        message: str,
        violations: Iterable[QuotaViolation],
        *,
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message, reason=reason, metadata=metadata)
        self.violations = list(violations)

    def details(self) -> list[any_pb2.Any]:
        failure = error_details_pb2.QuotaFailure(
            violations=[
                error_details_pb2.QuotaFailure.Violation(
                    subject=v.subject, description=v.description
                )
                for v in self.violations
            ]
        )
        return [_packed(failure)]


class PermissionDenied(DomainError):
    """The caller may not do this (role too low, another organization)."""

    code = grpc.StatusCode.PERMISSION_DENIED
    default_reason = "PERMISSION_DENIED"


class Unauthenticated(DomainError):
    """No valid credentials were sent."""

    code = grpc.StatusCode.UNAUTHENTICATED
    default_reason = "UNAUTHENTICATED"


class Aborted(DomainError):
    """A concurrent change won (stale etag, serialization failure); retry after re-reading."""

    code = grpc.StatusCode.ABORTED
    default_reason = "ABORTED"


class EtagMismatch(Aborted):
    """The etag sent is not the resource's current etag."""

    def __init__(self, resource_type: str, name: str) -> None:
        super().__init__(
            f"{resource_type} {name!r} was changed since it was read (stale etag)",
            reason="ETAG_MISMATCH",
            metadata={"resource_type": resource_type, "name": name},
        )


class Unavailable(DomainError):
    """A dependency (database, another service, the vector index) is down; retryable."""

    code = grpc.StatusCode.UNAVAILABLE
    default_reason = "UNAVAILABLE"


# How long a client should wait before retrying a retryable error (`google.rpc.RetryInfo`):
# a dependency coming back takes longer than a lost race (docs/api-conventions.md).
RETRY_DELAYS: dict[grpc.StatusCode, float] = {
    grpc.StatusCode.UNAVAILABLE: 1.0,
    grpc.StatusCode.ABORTED: 0.1,
}


def to_status(error: DomainError, domain: str) -> status_pb2.Status:
    """Builds the rich `google.rpc.Status` of a domain error (with `RetryInfo` if retryable)."""
    info = error_details_pb2.ErrorInfo(reason=error.reason, domain=domain, metadata=error.metadata)
    details = [_packed(info), *error.details()]
    delay = RETRY_DELAYS.get(error.code)
    if delay is not None:
        retry = error_details_pb2.RetryInfo()
        retry.retry_delay.FromNanoseconds(round(delay * 1e9))
        details.append(_packed(retry))
    return status_pb2.Status(code=_RPC_CODES[error.code], message=error.message, details=details)


def internal_status(trace_id: str, domain: str) -> status_pb2.Status:
    """The status of an unexpected failure: no internals, only a trace id to find the log."""
    info = error_details_pb2.ErrorInfo(
        reason="INTERNAL", domain=domain, metadata={"trace_id": trace_id}
    )
    return status_pb2.Status(
        code=code_pb2.INTERNAL,
        message=f"internal error (trace id {trace_id})",
        details=[_packed(info)],
    )


def _packed(detail: Message) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(detail)
    return packed


def _snake_upper(resource_type: str) -> str:
    out = []
    for i, ch in enumerate(resource_type):
        if ch.isupper() and i:
            out.append("_")
        out.append(ch.upper())
    return "".join(out).replace(" ", "_")


_RPC_CODES: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.INVALID_ARGUMENT: code_pb2.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND: code_pb2.NOT_FOUND,
    grpc.StatusCode.ALREADY_EXISTS: code_pb2.ALREADY_EXISTS,
    grpc.StatusCode.FAILED_PRECONDITION: code_pb2.FAILED_PRECONDITION,
    grpc.StatusCode.RESOURCE_EXHAUSTED: code_pb2.RESOURCE_EXHAUSTED,
    grpc.StatusCode.PERMISSION_DENIED: code_pb2.PERMISSION_DENIED,
    grpc.StatusCode.UNAUTHENTICATED: code_pb2.UNAUTHENTICATED,
    grpc.StatusCode.ABORTED: code_pb2.ABORTED,
    grpc.StatusCode.UNAVAILABLE: code_pb2.UNAVAILABLE,
    grpc.StatusCode.INTERNAL: code_pb2.INTERNAL,
}
