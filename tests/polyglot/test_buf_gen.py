"""protos/buf.gen.yaml works out of the box: `buf generate` with the plugins it names.

Python runs for real (protos/plugins/protoc_gen_sensei_api.py needs only grpcio-tools);
protoc-gen-es (npm) is replaced by a stand-in of the same name that records the
CodeGeneratorRequest buf sends it, so this test needs no network. The real protoc-gen-es
runs in test_generated_clients.py.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from google.protobuf.compiler import plugin_pb2

from tests.polyglot.conftest import REPO, run

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


async def _generate(tmp_path: Path) -> tuple[Path, Path]:
    """Runs the shipped template; returns the stand-ins' folder and the output root."""
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    script = plugins / "protoc-gen-es"
    script.write_text(STAND_IN.replace("PYTHON", sys.executable, 1))
    script.chmod(0o755)
    # Outputs are `../build/gen/…` relative to the base directory: keep them inside tmp_path.
    base = tmp_path / "out" / "base"
    base.mkdir(parents=True)
    path = os.pathsep.join([str(plugins), str(Path(sys.executable).parent), os.environ["PATH"]])
    code, _, err = await run(
        str(Path(sys.executable).parent / "buf"),
        "generate",
        "-o",
        str(base),
        cwd=REPO / "protos",
        env={**os.environ, "PATH": path, "STAND_IN_DIR": str(plugins)},
    )
    assert code == 0, err
    return plugins, tmp_path / "out" / "build" / "gen"


async def test_buf_generate_makes_python_package_sensei_api_and_typescript(tmp_path: Path) -> None:
    plugins, gen = await _generate(tmp_path)

    protos = sorted((REPO / "protos" / "sensei").rglob("*.proto"))
    expected = {str(path.relative_to(REPO / "protos")) for path in protos}
    requests = [
        plugin_pb2.CodeGeneratorRequest.FromString(path.read_bytes())
        for path in plugins.glob("protoc-gen-es.*.req")
    ]
    assert {file for request in requests for file in request.file_to_generate} == expected
    assert {request.parameter for request in requests} == {"target=ts"}
    python = gen / "python"
    assert not (python / "sensei").exists()
    for proto in protos:
        stem = python / "sensei_api" / proto.relative_to(REPO / "protos" / "sensei").with_suffix("")
        for suffix in ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py"):
            generated = stem.with_name(stem.name + suffix)
            assert generated.exists(), generated
            assert "from sensei." not in generated.read_text(), generated
        assert (stem.parent / "__init__.py").exists()
    auth = (python / "sensei_api" / "org" / "v1" / "auth_pb2_grpc.py").read_text()
    assert "from sensei_api.org.v1 import auth_pb2" in auth
