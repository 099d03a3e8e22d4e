"""Server reflection that also resolves method and field names.

grpcio's reflection asks the descriptor pool for the file containing a symbol; the upb
pool answers only for messages, enums and services, so `grpcurl describe
pkg.Service.Method` failed. This servicer falls back to the method's (or field's or enum
value's) parent symbol, which lives in the same file.
"""

from __future__ import annotations

from typing import Any

import grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc
from grpc_reflection.v1alpha._async import ReflectionServicer


class SymbolResolvingReflection(ReflectionServicer):  # type: ignore[misc]
    """v1alpha reflection whose file_containing_symbol understands nested symbols."""

    def _file_containing_symbol(self, request: Any, fully_qualified_name: str) -> Any:
        response = super()._file_containing_symbol(request, fully_qualified_name)
        parent = fully_qualified_name
        while response.HasField("error_response") and "." in parent:
            parent = parent.rsplit(".", 1)[0]
            response = super()._file_containing_symbol(request, parent)
        return response


def enable(service_names: tuple[str, ...], server: grpc.aio.Server) -> None:
    """Serves reflection for `service_names` (plus reflection itself)."""
    names = (*service_names, reflection.SERVICE_NAME)
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(
        SymbolResolvingReflection(names), server
    )
