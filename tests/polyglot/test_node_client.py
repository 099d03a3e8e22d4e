"""A client in another language: Node.js (@grpc/grpc-js + @grpc/proto-loader) against a suite.

The Node script loads protos/ at run time, exchanges an API key, creates a migration, reads
it back and decodes a rich error; this test checks its JSON report against the services.
Its npm packages (package-lock.json) are installed once per run into a temp dir.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from sensei.migration.v1 import migration_pb2, migration_pb2_grpc
from tests.harness import Suite
from tests.polyglot.conftest import REPO, proto_includes, run


async def test_node_client_exchanges_a_key_and_creates_and_reads_a_migration(
    suite: Suite, node_project: Path
) -> None:
    await suite.start("migration")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "SENSEI_ORG_ADDR": suite.address("org"),
        "SENSEI_MIGRATION_ADDR": suite.address("migration"),
        "SENSEI_API_KEY": suite.owner_api_key,
        "SENSEI_PROTO_DIR": str(REPO / "protos"),
        "SENSEI_PROTO_INCLUDE": os.pathsep.join(proto_includes()),
    }

    code, out, err = await run("node", "client.mjs", cwd=node_project, env=env)

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
