"""The grpcurl walk-through of README.md, run as written against running services.

The commands between `<!-- grpcurl-walkthrough:start -->` and `…:end -->` run in bash with
the suite's addresses and keys in the environment (instead of `source .sensei/dev.env`),
this venv's grpcurl, and two identical databases on the sample server as the dev stack's
sample source and target (`SENSEI_SAMPLE_SOURCE_URL` / `_TARGET_URL`). Where the
machine has no `jq`, a stand-in that understands the `jq -r .a.b` filters the README uses
goes first on PATH.

The MySQL → PostgreSQL variant (`…-mysql:start -->`) runs when MariaDB is reachable
(tests/mysql_server.py), with the dev stack's own sample MySQL database
(devstack/mysql_sample.py) on a fresh database and the dev stack's shop on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import shutil
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg

from devstack.__main__ import SAMPLE_ROWS, SAMPLE_SHOP
from devstack.mysql_sample import SampleServer, prepare_sample_mysql
from tests.harness import Suite
from tests.mysql_server import MySQLServer

REPO = Path(__file__).resolve().parents[2]
GRPCURL = Path(sys.executable).parent / "grpcurl"
START = "<!-- grpcurl-walkthrough:start -->"
END = "<!-- grpcurl-walkthrough:end -->"
MYSQL_START = "<!-- grpcurl-walkthrough-mysql:start -->"
MYSQL_END = "<!-- grpcurl-walkthrough-mysql:end -->"
DEV_ENV_LINE = "source .sensei/dev.env"
SCRIPT_SECONDS = 120.0

JQ_STAND_IN = """#!PYTHON
# Stand-in for `jq [-r] .a.b` (the only filters README.md uses), for machines without jq.
import json, sys
arguments = [a for a in sys.argv[1:] if a != "-r"]
value = json.load(sys.stdin)
for key in arguments[0].strip(".").split("."):
    value = value[key] if key else value
print(value if isinstance(value, str) and "-r" in sys.argv else json.dumps(value))
"""

TABLES = """
CREATE TABLE products (id int PRIMARY KEY, sku text NOT NULL UNIQUE, price numeric(8, 2));
INSERT INTO products SELECT i, 'sku-' || i, i * 0.5 FROM generate_series(1, 50) AS i;
"""


def walkthrough(start: str = START, end: str = END) -> str:
    """The shell commands of one of the README's grpcurl walk-throughs."""
    text = (REPO / "README.md").read_text()
    assert start in text and end in text, "README.md lost its grpcurl walk-through markers"
    block = text.split(start, 1)[1].split(end, 1)[0]
    return block.split("```sh\n", 1)[1].rsplit("```", 1)[0]


def runnable(script: str) -> str:
    """The walk-through with the environment given instead of sourced, and this venv's grpcurl."""
    lines = script.splitlines()
    assert DEV_ENV_LINE in lines, "the walk-through should start from .sensei/dev.env"
    body = "\n".join(line for line in lines if line != DEV_ENV_LINE)
    return "set -euo pipefail\n" + body.replace(".venv/bin/grpcurl", shlex.quote(str(GRPCURL)))


def json_documents(text: str) -> list[object]:
    """Every JSON object in grpcurl's output (a stream prints one object per message)."""
    decoder, documents, position = json.JSONDecoder(), [], 0
    while (start := text.find("{", position)) != -1:
        try:
            document, position = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            position = start + 1
            continue
        documents.append(document)
    return documents


async def _database(make_sample_database: Callable[[], Awaitable[str]]) -> str:
    dsn = await make_sample_database()
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(TABLES)
    finally:
        await conn.close()
    return dsn


async def run_walkthrough(
    script: str, suite: Suite, samples: dict[str, str], tmp_path: Path
) -> tuple[int | None, str, str]:
    """Runs `script` in bash from `tmp_path` with the dev stack's environment; rc, out, err."""
    path = os.environ.get("PATH", "")
    if shutil.which("jq") is None:
        stand_ins = tmp_path / "bin"
        stand_ins.mkdir()
        (stand_ins / "jq").write_text(JQ_STAND_IN.replace("PYTHON", sys.executable, 1))
        (stand_ins / "jq").chmod(0o755)
        path = f"{stand_ins}{os.pathsep}{path}"
    env = {
        "PATH": path,
        "SENSEI_ORG_ADDR": suite.address("org"),
        "SENSEI_MIGRATION_ADDR": suite.address("migration"),
        "SENSEI_VERIFICATION_ADDR": suite.address("verification"),
        "SENSEI_ORG_ID": suite.org_id,
        "SENSEI_API_KEY": suite.owner_api_key,
        "SENSEI_DATABASE_URL": suite.database_url,
        **samples,
    }
    (tmp_path / ".sensei").mkdir()  # `make run` made it, with dev.env
    process = await asyncio.create_subprocess_exec(
        "bash",
        "-c",
        runnable(script),
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out_bytes, err_bytes = await asyncio.wait_for(process.communicate(), SCRIPT_SECONDS)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    return process.returncode, out_bytes.decode(), err_bytes.decode()


async def test_the_readme_grpcurl_walkthrough_runs_as_written(
    suite: Suite, make_sample_database: Callable[[], Awaitable[str]], tmp_path: Path
) -> None:
    await suite.start("migration", "verification")
    samples = {
        "SENSEI_SAMPLE_SOURCE_URL": await _database(make_sample_database),
        "SENSEI_SAMPLE_TARGET_URL": await _database(make_sample_database),
    }
    returncode, out, err = await run_walkthrough(walkthrough(), suite, samples, tmp_path)

    assert returncode == 0, f"{err}\n--- stdout ---\n{out}"
    assert "sensei.migration.v1.MigrationService" in out.splitlines()
    assert "rpc CreateMigration ( .sensei.migration.v1.CreateMigrationRequest )" in out
    assert "message Migration {" in out
    migration = f"organizations/{suite.org_id}/migrations/"
    assert any(line.startswith(migration) for line in out.splitlines())
    documents = json_documents(out)
    statuses = [
        d["verification"]["status"]  # type: ignore[index]
        for d in documents
        if isinstance(d, dict) and "verification" in d
    ]
    assert statuses[-1] == "VERIFICATION_STATUS_PASSED"
    assert {"validity": "CERTIFICATE_VALIDITY_VALID"}.items() <= next(
        d.items() for d in documents if isinstance(d, dict) and "validity" in d
    )
    # The watch began during `sleep 1`, so what it saw first may vary; its end may not.
    events = json_documents((tmp_path / ".sensei" / "watch.json").read_text())
    assert not (tmp_path / "watch.json").exists(), "the walk-through wrote into the clone"
    assert events[0]["event_type"] == "MIGRATION_EVENT_TYPE_SNAPSHOT"  # type: ignore[index]
    assert events[-1]["event_type"] == "MIGRATION_EVENT_TYPE_STATUS_CHANGED"  # type: ignore[index]
    assert events[-1]["migration"]["status"] == "MIGRATION_STATUS_COMPLETED"  # type: ignore[index]


async def test_the_readme_mysql_walkthrough_runs_as_written(
    suite: Suite,
    mysql_server: MySQLServer,
    make_mysql_database: Callable[[], Awaitable[str]],
    make_sample_database: Callable[[], Awaitable[str]],
    tmp_path: Path,
) -> None:
    await suite.start("migration", "verification")
    mysql = SampleServer.from_url(mysql_server.url(await make_mysql_database()))
    assert await prepare_sample_mysql(mysql)
    shop = await make_sample_database()
    conn = await asyncpg.connect(shop)
    try:
        await conn.execute(SAMPLE_SHOP + SAMPLE_ROWS)
    finally:
        await conn.close()
    samples = {"SENSEI_SAMPLE_MYSQL_URL": mysql.url, "SENSEI_SAMPLE_SOURCE_URL": shop}
    script = walkthrough(MYSQL_START, MYSQL_END)
    returncode, out, err = await run_walkthrough(script, suite, samples, tmp_path)

    assert returncode == 0, f"{err}\n--- stdout ---\n{out}"
    documents = [d for d in json_documents(out) if isinstance(d, dict)]
    last_status: dict[str, tuple[str, str]] = {}
    for document in documents:
        if "verification" in document:
            verification = document["verification"]
            last_status[verification["name"]] = (verification["type"], verification["status"])
    assert sorted(last_status.values()) == [
        ("VERIFICATION_TYPE_CHECKSUM", "VERIFICATION_STATUS_PASSED"),
        ("VERIFICATION_TYPE_ROW_COUNT", "VERIFICATION_STATUS_PASSED"),
        ("VERIFICATION_TYPE_SCHEMA_PARITY", "VERIFICATION_STATUS_PASSED"),
    ], out
    assert documents[-1] == {"source": "mysql", "target": "postgresql"}
