"""examples/agent_worker.py drives a migration end to end and ends with a VALID certificate."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
from google.protobuf import json_format

from examples.agent_worker import verify_offline
from sensei.migration.v1 import (
    agent_execution_pb2,
    agent_execution_pb2_grpc,
    migration_pb2,
    migration_pb2_grpc,
)
from sensei.verification.v1 import verification_pb2, verification_pb2_grpc
from tests.harness import Suite
from tests.mysql.sample import MYSQL_DDL, MYSQL_ROWS
from tests.mysql_server import MySQLServer, run_mysql

REPO = Path(__file__).resolve().parents[2]
WORKER_SECONDS = 60.0

SHOP = """
CREATE TABLE customers (id bigint PRIMARY KEY, email text NOT NULL UNIQUE);
CREATE TABLE orders (
    id bigint PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES customers (id),
    total numeric(10, 2) NOT NULL
);
"""
ROWS = """
INSERT INTO customers SELECT i, 'c' || i || '@shop.test' FROM generate_series(1, 200) AS i;
INSERT INTO orders SELECT i, 1 + i % 200, (i % 97) * 1.25 FROM generate_series(1, 12000) AS i;
"""


async def _shop(make_sample_database: Callable[[], Awaitable[str]], *, rows: bool) -> str:
    dsn = await make_sample_database()
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(SHOP)
        if rows:
            await conn.execute(ROWS)
    finally:
        await conn.close()
    return dsn


async def _run_worker(
    suite: Suite, source: str, target: str, certificate: Path
) -> tuple[int, str, str]:
    """Runs examples/agent_worker.py (the worktree's modules); (exit status, stdout, stderr)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "examples/agent_worker.py",
        "--source-dsn",
        source,
        "--target-dsn",
        target,
        "--name",
        "shop to new cluster",
        "--certificate",
        str(certificate),
        cwd=REPO,
        env={
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": str(REPO),
            "SENSEI_API_KEY": suite.owner_api_key,
            "SENSEI_ORG_ADDR": suite.address("org"),
            "SENSEI_MIGRATION_ADDR": suite.address("migration"),
            "SENSEI_VERIFICATION_ADDR": suite.address("verification"),
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), WORKER_SECONDS)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_the_worker_completes_a_migration_with_a_valid_certificate(
    suite: Suite, make_sample_database: Callable[[], Awaitable[str]], tmp_path: Path
) -> None:
    await suite.start("migration", "verification")
    # The target has the tables but no rows: the worker's DATA_MIGRATOR copies them.
    source = await _shop(make_sample_database, rows=True)
    target = await _shop(make_sample_database, rows=False)
    certificate = tmp_path / "cert.json"
    returncode, out, err = await _run_worker(suite, source, target, certificate)

    assert returncode == 0, err
    summary = json.loads(out.splitlines()[-1])
    assert summary["status"] == "COMPLETED"
    assert summary["verificationStatus"] == "PASSED"
    assert summary["score"] == 1.0
    assert summary["validity"] == "VALID"
    assert "migrated public.orders (2/2, 12000 rows)" in err

    owner = await suite.owner()
    migrations = suite.stub("migration", migration_pb2_grpc.MigrationServiceStub)
    migration = (
        await migrations.GetMigration(
            migration_pb2.GetMigrationRequest(name=summary["migration"]), metadata=owner.metadata
        )
    ).migration
    assert migration.status == migration_pb2.MIGRATION_STATUS_COMPLETED
    assert migration.progress == 1.0
    assert migration.start_time.seconds and migration.complete_time.seconds
    agents = suite.stub("migration", agent_execution_pb2_grpc.AgentExecutionServiceStub)
    executions = (
        await agents.ListAgentExecutions(
            agent_execution_pb2.ListAgentExecutionsRequest(parent=migration.name),
            metadata=owner.metadata,
        )
    ).agent_executions
    assert [e.agent_type for e in executions] == [
        agent_execution_pb2.AGENT_TYPE_SCHEMA_ANALYZER,
        agent_execution_pb2.AGENT_TYPE_SCHEMA_MAPPER,
        agent_execution_pb2.AGENT_TYPE_DATA_MIGRATOR,
        agent_execution_pb2.AGENT_TYPE_VALIDATOR,
    ]
    assert all(e.status == agent_execution_pb2.AGENT_EXECUTION_STATUS_SUCCEEDED for e in executions)
    assert sum(e.tokens_used for e in executions) == summary["tokensUsed"]
    # The saved certificate is the one the service vouches for.
    verifications = suite.stub("verification", verification_pb2_grpc.VerificationServiceStub)
    verdict = await verifications.VerifyCertificate(
        verification_pb2.VerifyCertificateRequest(envelope=certificate.read_bytes())
    )
    assert verdict.validity == verification_pb2.CERTIFICATE_VALIDITY_VALID
    # And the worker's own offline check says no when it should.
    keys = await verifications.ListSigningKeys(verification_pb2.ListSigningKeysRequest())
    jwks = {"keys": [json_format.MessageToDict(key.jwk) for key in keys.signing_keys]}
    envelope = json.loads(certificate.read_bytes())
    assert verify_offline(certificate.read_bytes(), jwks) == "VALID"
    forged = {**envelope, "payload": base64.b64encode(b'{"predicate": {}}').decode()}
    assert verify_offline(json.dumps(forged).encode(), jwks) == "SIGNATURE_INVALID"
    revoked = {"keys": [{**key, "status": "revoked"} for key in jwks["keys"]]}
    assert verify_offline(certificate.read_bytes(), revoked) == "KEY_REVOKED"
    assert verify_offline(certificate.read_bytes(), {"keys": []}) == "UNKNOWN_KEY"


async def test_the_worker_moves_a_mariadb_database_into_postgresql(
    suite: Suite,
    mysql_server: MySQLServer,
    make_mysql_database: Callable[[], Awaitable[str]],
    make_sample_database: Callable[[], Awaitable[str]],
    tmp_path: Path,
) -> None:
    await suite.start("migration", "verification")
    # Every type of the type map, and an empty PostgreSQL database: the worker creates the
    # tables with the mapped types, copies the rows and verifies them.
    database = await make_mysql_database()
    await run_mysql(mysql_server, database, f"{MYSQL_DDL};\n{MYSQL_ROWS}")
    target = await make_sample_database()

    returncode, out, err = await _run_worker(
        suite, mysql_server.url(database), target, tmp_path / "cert.json"
    )

    assert returncode == 0, err
    summary = json.loads(out.splitlines()[-1])
    assert (summary["status"], summary["verificationStatus"]) == ("COMPLETED", "PASSED")
    assert summary["validity"] == "VALID"
    assert "created 4 target tables from the source schema" in err
    assert f"migrated {database}.everything" in err
    conn = await asyncpg.connect(target)
    try:
        types = dict(
            await conn.fetch(
                "SELECT column_name, data_type FROM information_schema.columns"
                " WHERE table_schema = 'public' AND table_name = 'everything'"
            )
        )
        flags = [r["flag"] for r in await conn.fetch("SELECT flag FROM everything ORDER BY id")]
    finally:
        await conn.close()
    assert types["flag"] == "boolean"
    assert types["big_u"] == "numeric"
    assert types["stamped"] == "timestamp with time zone"
    assert types["doc"] == "jsonb"
    assert flags == [True, False, False]
