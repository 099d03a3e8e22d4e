"""What went wrong, in words and as an exit code.

gRPC failures carry a rich `google.rpc.Status` (ErrorInfo, BadRequest, QuotaFailure); the
CLI prints all of it, so an operator sees the reason and every bad field at once.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2


class ExitCode(enum.IntEnum):
    """Exit codes of `sensei` (documented in `sensei --help`)."""

    OK = 0
    # The command worked and the answer is negative: an invalid certificate, a watched
    # migration that failed or was cancelled, a verification that failed.
    NEGATIVE = 1
    USAGE = 2
    UNAUTHENTICATED = 3
    PERMISSION_DENIED = 4
    NOT_FOUND = 5
    INVALID_ARGUMENT = 6
    CONFLICT = 7  # FAILED_PRECONDITION, ABORTED, ALREADY_EXISTS
    QUOTA = 8  # RESOURCE_EXHAUSTED
    UNAVAILABLE = 9  # UNAVAILABLE, DEADLINE_EXCEEDED: try again
    ERROR = 10  # anything else
    INTERRUPTED = 130


_EXIT_BY_CODE: dict[grpc.StatusCode, ExitCode] = {
    grpc.StatusCode.UNAUTHENTICATED: ExitCode.UNAUTHENTICATED,
    grpc.StatusCode.PERMISSION_DENIED: ExitCode.PERMISSION_DENIED,
    grpc.StatusCode.NOT_FOUND: ExitCode.NOT_FOUND,
    grpc.StatusCode.INVALID_ARGUMENT: ExitCode.INVALID_ARGUMENT,
    grpc.StatusCode.OUT_OF_RANGE: ExitCode.INVALID_ARGUMENT,
    grpc.StatusCode.FAILED_PRECONDITION: ExitCode.CONFLICT,
    grpc.StatusCode.ABORTED: ExitCode.CONFLICT,
    grpc.StatusCode.ALREADY_EXISTS: ExitCode.CONFLICT,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ExitCode.QUOTA,
    grpc.StatusCode.UNAVAILABLE: ExitCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED: ExitCode.UNAVAILABLE,
}

_STATUS_DETAILS_KEY = "grpc-status-details-bin"


class CliError(Exception):
    """A failure the CLI reports as one message and an exit code (no traceback)."""

    def __init__(self, message: str, exit_code: ExitCode = ExitCode.ERROR, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.details = details

    def as_json(self) -> dict[str, Any]:
        """The error as the JSON object printed with `--json`."""
        return {"error": {"message": self.message, **self.details}}


@dataclass(frozen=True)
class RpcFailure:
    """The parts of a failed RPC's status that a person or a script needs."""

    code: grpc.StatusCode
    message: str
    reason: str = ""
    domain: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    violations: tuple[tuple[str, str], ...] = ()
    quota_violations: tuple[tuple[str, str], ...] = ()

    @property
    def exit_code(self) -> ExitCode:
        """The exit code for this status code."""
        return _EXIT_BY_CODE.get(self.code, ExitCode.ERROR)

    def lines(self) -> list[str]:
        """Human-readable lines: the code and message, then every detail."""
        head = f"{self.code.name}: {self.message}"
        if self.reason and self.reason != self.code.name:
            head += f" [{self.reason}]"
        lines = [head]
        lines += [f"  - {name}: {description}" for name, description in self.violations]
        lines += [
            f"  - quota {subject}: {description}" for subject, description in self.quota_violations
        ]
        hint = _HINTS.get(self.code)
        if hint:
            lines.append(f"  ({hint})")
        return lines

    def as_json(self) -> dict[str, Any]:
        """The failure as the JSON object printed with `--json`."""
        error: dict[str, Any] = {"code": self.code.name, "message": self.message}
        if self.reason:
            error["reason"] = self.reason
            error["domain"] = self.domain
        if self.metadata:
            error["metadata"] = self.metadata
        if self.violations:
            error["fieldViolations"] = [
                {"field": name, "description": text} for name, text in self.violations
            ]
        if self.quota_violations:
            error["quotaViolations"] = [
                {"subject": subject, "description": text} for subject, text in self.quota_violations
            ]
        return {"error": error}


_HINTS = {
    grpc.StatusCode.UNAUTHENTICATED: "run `sensei login --api-key …` to get a fresh token",
    grpc.StatusCode.UNAVAILABLE: "is the service running at that address? it is safe to retry",
}


def rpc_failure(error: grpc.aio.AioRpcError) -> RpcFailure:
    """Reads the rich `google.rpc.Status` of a failed call (plain code and message without)."""
    code = error.code()
    message = error.details() or ""
    status = _rich_status(error)
    if status is None:
        return RpcFailure(code, message)
    reason = domain = ""
    metadata: dict[str, str] = {}
    violations: list[tuple[str, str]] = []
    quota: list[tuple[str, str]] = []
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        bad_request = error_details_pb2.BadRequest()
        quota_failure = error_details_pb2.QuotaFailure()
        if detail.Unpack(info):
            reason, domain, metadata = info.reason, info.domain, dict(info.metadata)
        elif detail.Unpack(bad_request):
            violations += [(v.field, v.description) for v in bad_request.field_violations]
        elif detail.Unpack(quota_failure):
            quota += [(v.subject, v.description) for v in quota_failure.violations]
    return RpcFailure(
        code,
        status.message or message,
        reason,
        domain,
        metadata,
        tuple(violations),
        tuple(quota),
    )


def _rich_status(error: grpc.aio.AioRpcError) -> status_pb2.Status | None:
    for key, value in error.trailing_metadata() or ():
        if key == _STATUS_DETAILS_KEY and isinstance(value, bytes):
            status = status_pb2.Status()
            try:
                status.ParseFromString(value)
            except DecodeError:  # a garbled trailer is no reason to hide the plain error
                return None
            return status
    return None
