"""Fixtures of the polyglot tests: npm projects installed once per run into a temp dir."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from pathlib import Path

import grpc_tools
import pytest
from google.rpc import status_pb2

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
INSTALL_SECONDS = 300.0
RUN_SECONDS = 60.0
# What npm prints when it cannot reach the registry (as opposed to a bad lock file).
NETWORK_ERRORS = (
    "ENOTFOUND",
    "EAI_AGAIN",
    "ECONNREFUSED",
    "ECONNRESET",
    "ETIMEDOUT",
    "ENETUNREACH",
)


async def run(
    *argv: str, cwd: Path, env: dict[str, str], seconds: float = RUN_SECONDS
) -> tuple[int, str, str]:
    """Runs a program to its end; returns its exit code, stdout and stderr."""
    process = await asyncio.create_subprocess_exec(
        *argv, cwd=cwd, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), seconds)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def _copy(source: Path, target: Path, *names: str) -> None:
    for name in names:
        shutil.copy2(source / name, target / name)


async def npm_install(source: Path, target: Path) -> Path:
    """`npm ci` of source's package.json and lock file in target; skips when npm cannot."""
    npm = shutil.which("npm")
    if shutil.which("node") is None or npm is None:
        pytest.skip("node and npm are needed for the polyglot client tests")
    _copy(source, target, "package.json", "package-lock.json")
    code, _, err = await run(
        npm,
        "ci",
        "--no-audit",
        "--no-fund",
        "--prefer-offline",
        cwd=target,
        env=dict(os.environ),
        seconds=INSTALL_SECONDS,
    )
    if code != 0 and any(marker in err for marker in NETWORK_ERRORS):
        pytest.skip(f"npm registry unreachable: cannot install {source.relative_to(REPO)}")
    assert code == 0, f"npm ci failed:\n{err}"
    return target


def proto_includes() -> list[str]:
    """google/protobuf/*.proto (grpc_tools) and google/rpc/*.proto (googleapis-common-protos)."""
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    googleapis = Path(status_pb2.__file__).parents[2]
    return [str(well_known), str(googleapis)]


@pytest.fixture(scope="session")
async def node_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/polyglot's Node client with its packages, in a temp dir of this run."""
    target = await npm_install(HERE, tmp_path_factory.mktemp("npm-node"))
    _copy(HERE, target, "client.mjs")
    return target


@pytest.fixture(scope="session")
async def ts_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/polyglot/ts with its packages and the stubs `buf generate` makes, in a temp dir."""
    target = await npm_install(HERE / "ts", tmp_path_factory.mktemp("npm-ts"))
    _copy(HERE / "ts", target, "client.ts")
    env = {
        **os.environ,
        # The Python of this run has grpcio-tools (the template's Python plugin needs it).
        "PATH": os.pathsep.join(
            [
                str(target / "node_modules" / ".bin"),
                str(Path(sys.executable).parent),
                os.environ.get("PATH", ""),
            ]
        ),
    }
    buf = str(Path(sys.executable).parent / "buf")
    # The shipped template, as a user runs it: its outputs land in target/build/gen/.
    code, _, err = await run(
        buf, "generate", "-o", str(target / "base"), cwd=REPO / "protos", env=env
    )
    assert code == 0, err
    # google/rpc/*.proto from the google-proto-files npm package, for the error details.
    rpc = target / "node_modules" / "google-proto-files" / "google" / "rpc"
    code, _, err = await run(
        buf,
        "generate",
        "node_modules/google-proto-files",
        "--path",
        str((rpc / "status.proto").relative_to(target)),
        "--path",
        str((rpc / "error_details.proto").relative_to(target)),
        "--template",
        '{"version":"v2","plugins":[{"local":"protoc-gen-es","out":"build/gen/ts","opt":"target=ts"}]}',
        cwd=target,
        env=env,
    )
    assert code == 0, err
    return target
