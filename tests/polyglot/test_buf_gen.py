"""protos/buf.gen.yaml is a valid v2 template: `buf generate` runs its plugins over every proto.

The real plugins (protoc-gen-go, …) are not installed here, so stand-ins with the same
names record the CodeGeneratorRequest buf sends them; the test checks what they received.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from google.protobuf.compiler import plugin_pb2

REPO = Path(__file__).resolve().parents[2]
BUF = Path(sys.executable).parent / "buf"
BUF_SECONDS = 60.0

STAND_IN = """#!PYTHON
import os, sys
from pathlib import Path
from google.protobuf.compiler import plugin_pb2

request = sys.stdin.buffer.read()
# buf runs a plugin once per proto directory: one file per run.
name = f"{Path(sys.argv[0]).name}.{os.getpid()}.req"
Path(os.environ["STAND_IN_DIR"], name).write_bytes(request)
response = plugin_pb2.CodeGeneratorResponse(
    supported_features=plugin_pb2.CodeGeneratorResponse.FEATURE_PROTO3_OPTIONAL
)
sys.stdout.buffer.write(response.SerializeToString())
"""


async def test_buf_generate_runs_the_local_plugins_on_every_proto(tmp_path: Path) -> None:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    for name in ("protoc-gen-go", "protoc-gen-go-grpc"):
        script = plugins / name
        script.write_text(STAND_IN.replace("PYTHON", sys.executable, 1))
        script.chmod(0o755)
    # Outputs are `../build/gen/…` relative to the base directory: keep them inside tmp_path.
    base = tmp_path / "out" / "base"
    base.mkdir(parents=True)
    process = await asyncio.create_subprocess_exec(
        str(BUF),
        "generate",
        "--template",
        "buf.gen.yaml",
        "-o",
        str(base),
        cwd=REPO / "protos",
        env={
            **os.environ,
            "PATH": f"{plugins}{os.pathsep}{os.environ.get('PATH', '')}",
            "STAND_IN_DIR": str(plugins),
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(process.communicate(), BUF_SECONDS)

    assert process.returncode == 0, err.decode()
    expected = {
        str(path.relative_to(REPO / "protos"))
        for path in (REPO / "protos" / "sensei").rglob("*.proto")
    }
    for name in ("protoc-gen-go", "protoc-gen-go-grpc"):
        requests = [
            plugin_pb2.CodeGeneratorRequest.FromString(path.read_bytes())
            for path in plugins.glob(f"{name}.*.req")
        ]
        generated = {file for request in requests for file in request.file_to_generate}
        assert generated == expected, name
        assert {request.parameter for request in requests} == {"paths=source_relative"}
        packages = {
            file.name: file.options.go_package
            for request in requests
            for file in request.proto_file
        }
        assert packages["sensei/org/v1/auth.proto"] == (
            "example.com/sensei/gen/go/sensei/org/v1;orgv1"
        )
