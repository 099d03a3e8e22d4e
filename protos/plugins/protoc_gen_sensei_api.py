"""protoc plugin: Python messages, gRPC stubs and .pyi stubs of Sensei's protos, renamed.

Runs the generators that grpcio-tools ships (python, pyi, grpc_python) and moves the
top-level package `sensei` to another name (option `package=`, default `sensei_api`), so
generated clients never collide with this repository's own `sensei/` package or with the
unrelated PyPI project of that name. Needs only grpcio-tools (PyPI) in the Python that runs
it; buf.gen.yaml calls it with `strategy: all` (one run writes every `__init__.py`).
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

from google.protobuf import descriptor_pb2
from google.protobuf.compiler import plugin_pb2
from grpc_tools import protoc

SOURCE_PACKAGE = "sensei"


def _options(parameter: str) -> dict[str, str]:
    pairs = (item.partition("=") for item in parameter.split(",") if item)
    return {key.strip(): value.strip() for key, _, value in pairs}


def _renamed(text: str, package: str) -> str:
    """Imports and module names of `sensei.*` become `<package>.*`."""
    text = re.sub(rf"^(from|import) {SOURCE_PACKAGE}\.", rf"\1 {package}.", text, flags=re.M)
    return text.replace(f"DESCRIPTOR, '{SOURCE_PACKAGE}.", f"DESCRIPTOR, '{package}.")


def generate(request: plugin_pb2.CodeGeneratorRequest) -> plugin_pb2.CodeGeneratorResponse:
    """Runs grpcio-tools' protoc over the request's descriptors and renames the output."""
    response = plugin_pb2.CodeGeneratorResponse(
        supported_features=plugin_pb2.CodeGeneratorResponse.FEATURE_PROTO3_OPTIONAL
    )
    package = _options(request.parameter).get("package", "sensei_api")
    if not package.isidentifier():
        response.error = f"package={package!r} is not a Python identifier"
        return response
    with tempfile.TemporaryDirectory() as work:
        descriptors = Path(work, "descriptors.pb")
        descriptors.write_bytes(
            descriptor_pb2.FileDescriptorSet(file=request.proto_file).SerializeToString()
        )
        out = Path(work, "out")
        out.mkdir()
        code = protoc.main(
            [
                "protoc",
                f"--descriptor_set_in={descriptors}",
                f"--python_out={out}",
                f"--pyi_out={out}",
                f"--grpc_python_out={out}",
                *request.file_to_generate,
            ]
        )
        if code != 0:
            response.error = f"grpc_tools.protoc failed with exit code {code}"
            return response
        packages: set[Path] = set()
        for path in sorted(p for p in out.rglob("*") if p.is_file()):
            relative = path.relative_to(out)
            if relative.parts[0] == SOURCE_PACKAGE:
                relative = Path(package, *relative.parts[1:])
            packages.update(relative.parents)
            response.file.add(name=str(relative), content=_renamed(path.read_text(), package))
        for directory in sorted(packages - {Path(".")}):
            response.file.add(
                name=str(directory / "__init__.py"),
                content='"""Generated from Sensei\'s protos by buf generate; do not edit."""\n',
            )
    return response


if __name__ == "__main__":
    parsed = plugin_pb2.CodeGeneratorRequest.FromString(sys.stdin.buffer.read())
    sys.stdout.buffer.write(generate(parsed).SerializeToString())
