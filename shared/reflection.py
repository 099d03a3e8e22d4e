"""Server reflection, both protocols (`grpc.reflection.v1` and `v1alpha`), one implementation.

grpcio-reflection ships only v1alpha, and its servicer cannot be taught to resolve nested
symbols without subclassing a private module. Newer tools (`buf curl`, grpcurl 1.9+) ask for
v1 first. The two protocols have the same messages in two packages, so one servicer built on
the v1 messages (generated from grpc's published proto, vendored in protos/third_party/)
answers both: the v1alpha service is registered with the same (de)serializers.

Lookups use protobuf's public descriptor pool. The upb pool finds files only for messages,
enums, services and extensions, so `grpcurl describe pkg.Service.Method` needs the fallback
here: a method's (or field's, or enum value's) parent lives in the same file.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.descriptor import FileDescriptor

from sensei.third_party.grpc.reflection.v1 import reflection_pb2 as v1

V1_SERVICE = "grpc.reflection.v1.ServerReflection"
V1ALPHA_SERVICE = "grpc.reflection.v1alpha.ServerReflection"
_METHOD = "ServerReflectionInfo"


class ServerReflection:
    """Answers reflection requests from a descriptor pool (the default one unless given)."""

    def __init__(
        self, service_names: Iterable[str], pool: descriptor_pool.DescriptorPool | None = None
    ) -> None:
        self._service_names = tuple(sorted(set(service_names)))
        self._pool = pool or descriptor_pool.Default()  # type: ignore[no-untyped-call]

    async def ServerReflectionInfo(
        self, requests: AsyncIterator[v1.ServerReflectionRequest], context: Any
    ) -> AsyncIterator[v1.ServerReflectionResponse]:
        """One response per request, in order, for as long as the client sends."""
        async for request in requests:
            yield self.answer(request)

    def answer(self, request: v1.ServerReflectionRequest) -> v1.ServerReflectionResponse:
        """The response to one request."""
        kind = request.WhichOneof("message_request")
        try:
            if kind == "list_services":
                return v1.ServerReflectionResponse(
                    original_request=request,
                    list_services_response=v1.ListServiceResponse(
                        service=[v1.ServiceResponse(name=name) for name in self._service_names]
                    ),
                )
            if kind == "file_by_filename":
                return _files(request, self._pool.FindFileByName(request.file_by_filename))
            if kind == "file_containing_symbol":
                return _files(request, self._file_of_symbol(request.file_containing_symbol))
            if kind == "file_containing_extension":
                wanted = request.file_containing_extension
                message = self._pool.FindMessageTypeByName(wanted.containing_type)
                extension = self._pool.FindExtensionByNumber(message, wanted.extension_number)
                return _files(request, extension.file)
            if kind == "all_extension_numbers_of_type":
                message = self._pool.FindMessageTypeByName(request.all_extension_numbers_of_type)
                numbers = sorted(ext.number for ext in self._pool.FindAllExtensions(message))
                return v1.ServerReflectionResponse(
                    original_request=request,
                    all_extension_numbers_response=v1.ExtensionNumberResponse(
                        base_type_name=message.full_name, extension_number=numbers
                    ),
                )
        except KeyError:
            return _error(request, grpc.StatusCode.NOT_FOUND, "not found")
        return _error(request, grpc.StatusCode.INVALID_ARGUMENT, "unknown request kind")

    def _file_of_symbol(self, name: str) -> FileDescriptor:
        symbol = name
        while True:
            try:
                found: FileDescriptor = self._pool.FindFileContainingSymbol(symbol)
                return found
            except KeyError:
                if "." not in symbol:
                    raise
                symbol = symbol.rsplit(".", 1)[0]


def _files(
    request: v1.ServerReflectionRequest, file: FileDescriptor
) -> v1.ServerReflectionResponse:
    """`file` and every file it depends on, transitively (what clients need to decode)."""
    seen: dict[str, FileDescriptor] = {}
    pending = [file]
    while pending:
        current = pending.pop()
        if current.name in seen:
            continue
        seen[current.name] = current
        pending.extend(current.dependencies)
    serialized = []
    for descriptor in seen.values():
        proto = descriptor_pb2.FileDescriptorProto()
        descriptor.CopyToProto(proto)  # type: ignore[no-untyped-call]
        serialized.append(proto.SerializeToString())
    return v1.ServerReflectionResponse(
        original_request=request,
        file_descriptor_response=v1.FileDescriptorResponse(file_descriptor_proto=serialized),
    )


def _error(
    request: v1.ServerReflectionRequest, code: grpc.StatusCode, message: str
) -> v1.ServerReflectionResponse:
    return v1.ServerReflectionResponse(
        original_request=request,
        error_response=v1.ErrorResponse(error_code=code.value[0], error_message=message),
    )


def enable(service_names: tuple[str, ...], server: grpc.aio.Server) -> None:
    """Serves reflection (v1 and v1alpha) for `service_names` plus reflection itself."""
    reflection = ServerReflection((*service_names, V1_SERVICE, V1ALPHA_SERVICE))
    # Same wire format in both packages: the v1 messages (de)serialize v1alpha calls too.
    handler = grpc.stream_stream_rpc_method_handler(
        reflection.ServerReflectionInfo,
        request_deserializer=v1.ServerReflectionRequest.FromString,
        response_serializer=v1.ServerReflectionResponse.SerializeToString,
    )
    for service in (V1_SERVICE, V1ALPHA_SERVICE):
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(service, {_METHOD: handler}),)
        )
