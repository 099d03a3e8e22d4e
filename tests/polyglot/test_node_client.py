"""A client in another language: Node.js (@grpc/grpc-js + @grpc/proto-loader) against a suite.

The Node script loads protos/ at run time, exchanges an API key, creates a migration, reads
it back and decodes a rich error; this test checks its JSON report against the services.
`npm ci` installs the pinned packages (package-lock.json) into tests/polyglot/node_modules
when they are missing or older than the lock file.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path

import grpc_tools
import pytest
from google.rpc import status_pb2

from sensei.migration.v1 import migration_pb2, migration_pb2_grpc
from tests.harness import Suite

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
INSTALL_SECONDS = 300.0
RUN_SECONDS = 30.0


async def _run(*argv: str, env: dict[str, str], seconds: float) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *argv,
        cwd=HERE,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), seconds)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.fixture(scope="session")
async def node_client() -> Path:
    """tests/polyglot with its node_modules installed from the lock file."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are needed for the polyglot client test")
    installed = HERE / "node_modules" / ".package-lock.json"
    lock = HERE / "package-lock.json"
    if not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime:
        code, _, err = await _run(
            npm, "ci", "--no-audit", "--no-fund", env=dict(os.environ), seconds=INSTALL_SECONDS
        )
        assert code == 0, f"npm ci failed:\n{err}"
    return HERE / "client.mjs"


def _proto_includes() -> str:
    """google/protobuf/*.proto (grpc_tools) and google/rpc/*.proto (googleapis-common-protos)."""
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    googleapis = Path(status_pb2.__file__).parents[2]
    return os.pathsep.join([str(well_known), str(googleapis)])


async def test_node_client_exchanges_a_key_and_creates_and_reads_a_migration(
    suite: Suite, node_client: Path
) -> None:
    await suite.start("migration")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "SENSEI_ORG_ADDR": suite.address("org"),
        "SENSEI_MIGRATION_ADDR": suite.address("migration"),
        "SENSEI_API_KEY": suite.owner_api_key,
        "SENSEI_PROTO_DIR": str(REPO / "protos"),
        "SENSEI_PROTO_INCLUDE": _proto_includes(),
    }

    code, out, err = await _run("node", str(node_client), env=env, seconds=RUN_SECONDS)

    assert code == 0, err
    report = json.loads(out)
    assert report["tokenType"] == "Bearer"
    assert report["parent"] == f"organizations/{suite.org_id}"
    created, fetched = report["created"], report["fetched"]
    assert created == fetched
    assert created["name"] == f"organizations/{suite.org_id}/migrations/{created['id']}"
    assert created["status"] == "MIGRATION_STATUS_PENDING"
    assert created["displayName"] == "from node"
    assert created["sourceConfig"] == {
        "host": "source.db.internal",
        "port": 5432,
        "database": "shop",
        "password": "REDACTED",
    }
    assert report["invalid"]["codeName"] == "INVALID_ARGUMENT"
    assert report["invalid"]["domain"] == "migration.sensei.dev"
    assert "migration.display_name" in report["invalid"]["fieldViolations"]
    # What Node created is what Python reads.
    owner = await suite.owner()
    stub = suite.stub("migration", migration_pb2_grpc.MigrationServiceStub)
    seen = await stub.GetMigration(
        migration_pb2.GetMigrationRequest(name=created["name"]), metadata=owner.metadata
    )
    assert seen.migration.description == "created by tests/polyglot/client.mjs"
