"""Reading rich gRPC error details in tests."""

from __future__ import annotations

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status


def rich_status(error: grpc.aio.AioRpcError) -> status_pb2.Status:
    """The `google.rpc.Status` an error carries (fails the test if it has none)."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None, f"no rich status on {error.code()}: {error.details()}"
    return status


def error_info(error: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo:
    """The ErrorInfo detail of an error."""
    for detail in rich_status(error).details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return info
    raise AssertionError(f"no ErrorInfo in {error.code()}: {error.details()}")


def bad_request_fields(error: grpc.aio.AioRpcError) -> set[str]:
    """The field paths of the BadRequest detail of an INVALID_ARGUMENT error."""
    for detail in rich_status(error).details:
        bad_request = error_details_pb2.BadRequest()
        if detail.Unpack(bad_request):
            return {violation.field for violation in bad_request.field_violations}
    raise AssertionError(f"no BadRequest in {error.code()}: {error.details()}")


def quota_failure(error: grpc.aio.AioRpcError) -> error_details_pb2.QuotaFailure:
    """The QuotaFailure detail of a RESOURCE_EXHAUSTED error."""
    for detail in rich_status(error).details:
        failure = error_details_pb2.QuotaFailure()
        if detail.Unpack(failure):
            return failure
    raise AssertionError(f"no QuotaFailure in {error.code()}: {error.details()}")
