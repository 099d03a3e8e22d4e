"""Verifications of a MySQL/MariaDB → PostgreSQL migration end to end: real MariaDB, real
PostgreSQL, real org, migration and verification services over gRPC.

The sample (tests/mysql/sample.py) holds every type of the type map on both sides, translated
faithfully: emoji, accents, NULLs, -0.0, large decimals, microsecond timestamps, JSON, binary.
Zero dates: MariaDB accepts `0000-00-00` (no NO_ZERO_DATE in its default sql_mode) and
PostgreSQL has no such date, so a row holding one is reported changed whatever the target holds.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import pytest
from google.protobuf import json_format

from sensei.verification.v1 import verification_pb2
from tests.harness import Suite
from tests.mysql.sample import MYSQL_DDL, MYSQL_ROWS, POSTGRES_DDL, POSTGRES_ROWS
from tests.mysql_server import MySQLServer, run_mysql
from tests.verification.conftest import Stack, connection_config, create_migration

pb = verification_pb2
ENGINES = {"source": "mysql", "target": "postgresql"}
SAMPLE_TABLES = ["public.customers", "public.everything", "public.pairs", "public.words"]

# A table big enough to be cut into ranges and bisected; text keys whose binary order differs
# from MySQL's case-insensitive one ('B2' < 'a1' by bytes, 'a1' < 'B2' by the collation).
MYSQL_CODES = """
CREATE TABLE codes (
    code varchar(20) NOT NULL PRIMARY KEY,
    n int NOT NULL,
    amount decimal(12,2),
    at datetime(6)
);
INSERT INTO codes
WITH digits (d) AS (SELECT 0 UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3
    UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7
    UNION ALL SELECT 8 UNION ALL SELECT 9)
SELECT CONCAT(IF(i % 2 = 0, 'a', 'B'), i), i, i / 100, TIMESTAMPADD(MICROSECOND, i * 1001,
       '2024-01-01 00:00:00')
FROM (SELECT a.d + 10 * b.d + 100 * c.d + 1000 * e.d + 10000 * f.d + 1 AS i
      FROM digits a, digits b, digits c, digits e, digits f) AS seq
WHERE i <= 12000
"""
POSTGRES_CODES = """
CREATE TABLE codes (
    code character varying(20) NOT NULL PRIMARY KEY,
    n integer NOT NULL,
    amount numeric(12,2),
    at timestamp(6)
);
INSERT INTO codes
SELECT CASE WHEN i % 2 = 0 THEN 'a' ELSE 'B' END || i, i, i / 100.0,
       timestamp '2024-01-01 00:00:00' + i * 1001 * interval '1 microsecond'
FROM generate_series(1, 12000) AS i;
"""


def result_of(verification: Any) -> dict[str, Any]:
    """The result Struct as a dict."""
    result: dict[str, Any] = json_format.MessageToDict(verification.result)
    return result


def tables_of(verification: Any) -> dict[str, dict[str, Any]]:
    """The per-table results by table name."""
    return {t["table"]: t for t in result_of(verification)["tables"]}


@pytest.fixture
async def mysql_stack(
    suite: Suite,
    mysql_server: MySQLServer,
    make_mysql_database: Callable[[], Awaitable[str]],
    make_sample_database: Callable[[], Awaitable[str]],
) -> tuple[Stack, str]:
    """The services and a migration from a fresh MariaDB database (its name is returned too)
    to a fresh PostgreSQL one; both hold the sample and `codes`, translated faithfully."""
    await suite.start("migration", "verification")
    owner = await suite.owner()
    database = await make_mysql_database()
    target_dsn = await make_sample_database()
    await run_mysql(mysql_server, database, f"{MYSQL_DDL};\n{MYSQL_ROWS};\n{MYSQL_CODES}")
    target = await asyncpg.connect(target_dsn)
    try:
        await target.execute(POSTGRES_DDL + POSTGRES_ROWS + ";" + POSTGRES_CODES)
    finally:
        await target.close()
    migration = await create_migration(
        suite, owner, mysql_server.config(database), connection_config(target_dsn)
    )
    return Stack(suite, owner, mysql_server.url(database), target_dsn, migration), database


async def _on_target(stack: Stack, sql: str) -> None:
    conn = await asyncpg.connect(stack.target_dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def test_a_faithful_translation_passes_every_check(mysql_stack: tuple[Stack, str]) -> None:
    stack, _ = mysql_stack

    parity = await stack.run(pb.VERIFICATION_TYPE_SCHEMA_PARITY)
    counts = await stack.run(pb.VERIFICATION_TYPE_ROW_COUNT)
    checksum = await stack.run(pb.VERIFICATION_TYPE_CHECKSUM)

    assert result_of(parity)["differences"] == []
    assert parity.status == pb.VERIFICATION_STATUS_PASSED, result_of(parity)
    assert counts.status == pb.VERIFICATION_STATUS_PASSED, result_of(counts)
    assert checksum.status == pb.VERIFICATION_STATUS_PASSED, result_of(checksum)
    for done in (parity, counts, checksum):
        assert done.score == 1.0
        assert result_of(done)["engines"] == ENGINES
    assert sorted(tables_of(checksum)) == sorted([*SAMPLE_TABLES, "public.codes"])
    codes = tables_of(checksum)["public.codes"]
    assert (codes["source_rows"], codes["target_rows"], codes["ranges"]) == (12000, 12000, 2)
    assert tables_of(counts)["public.everything"]["source_rows"] == 3
    certificate = (
        await stack.verifications.GetCertificate(
            pb.GetCertificateRequest(name=checksum.certificate), metadata=stack.owner.metadata
        )
    ).certificate
    verdict = await stack.verifications.VerifyCertificate(
        pb.VerifyCertificateRequest(envelope=certificate.envelope)
    )
    assert verdict.validity == pb.CERTIFICATE_VALIDITY_VALID
    statement = json.loads(base64.b64decode(json.loads(certificate.envelope)["payload"]))
    assert statement["predicate"]["result"]["engines"] == ENGINES


async def test_planted_rows_are_named_exactly(
    mysql_stack: tuple[Stack, str], mysql_server: MySQLServer
) -> None:
    stack, database = mysql_stack
    await run_mysql(
        mysql_server,
        database,
        "INSERT INTO everything (id, flag, born) VALUES (4, 0, '0000-00-00')",
    )
    await _on_target(
        stack,
        "INSERT INTO everything (id, flag, born) VALUES (4, false, NULL);"
        # case only, trailing space only, in values
        " UPDATE words SET meaning = 'LOWER' WHERE word = 'abc';"
        " UPDATE everything SET body = 'x' WHERE id = 3;"
        # keys MySQL's collation would call equal: 'abd' = 'ABD', 'é ' = 'é'
        " INSERT INTO words VALUES ('abd', 'folded'), ('é ', 'padded');"
        " DELETE FROM words WHERE word = 'b';"
        # composite keys: ('EU', 1) is not ('eu', 1)
        " DELETE FROM pairs WHERE region = 'eu' AND seq = 2;"
        " INSERT INTO pairs VALUES ('EU', 1, 'x');"
        " UPDATE pairs SET note = 'C' WHERE region = 'us' AND seq = 1;"
        # deep inside the ranges of a larger table
        " UPDATE codes SET amount = amount + 0.01 WHERE code = 'a7000';"
        " UPDATE codes SET code = 'b7001' WHERE code = 'B7001';"
        " DELETE FROM codes WHERE code = 'a1234';"
        " UPDATE codes SET at = at + interval '1 microsecond' WHERE code = 'B11999'",
    )

    done = await stack.run(pb.VERIFICATION_TYPE_CHECKSUM)

    assert done.status == pb.VERIFICATION_STATUS_FAILED
    assert result_of(done)["engines"] == ENGINES
    tables = tables_of(done)
    found = {
        name: (t["status"], t["changed"], t["missing_in_target"], t["extra_in_target"])
        for name, t in tables.items()
    }
    assert found == {
        "public.customers": ("MATCH", [], [], []),
        "public.everything": ("MISMATCH", [["3"], ["4"]], [], []),
        "public.pairs": ("MISMATCH", [["us", "1"]], [["eu", "2"]], [["EU", "1"]]),
        "public.words": ("MISMATCH", [["abc"]], [["b"]], [["abd"], ["é "]]),
        "public.codes": ("MISMATCH", [["B11999"], ["a7000"]], [["B7001"], ["a1234"]], [["b7001"]]),
    }
    assert done.score == 1 / 5


async def test_row_counts_and_schema_differences_are_named(
    mysql_stack: tuple[Stack, str],
) -> None:
    stack, _ = mysql_stack
    await _on_target(
        stack,
        "DELETE FROM words WHERE word = 'b'; ALTER TABLE pairs DROP COLUMN note;"
        " ALTER TABLE codes ALTER COLUMN code TYPE character varying(10)",
    )

    counts = await stack.run(pb.VERIFICATION_TYPE_ROW_COUNT)
    parity = await stack.run(pb.VERIFICATION_TYPE_SCHEMA_PARITY)

    assert counts.status == pb.VERIFICATION_STATUS_FAILED
    assert {
        name: (t["source_rows"], t["target_rows"])
        for name, t in tables_of(counts).items()
        if not t["matched"]
    } == {"public.words": (4, 3)}
    assert parity.status == pb.VERIFICATION_STATUS_FAILED
    result = result_of(parity)
    assert result["engines"] == ENGINES
    reasons = {(d["kind"], d["path"]): d.get("reason") for d in result["differences"]}
    assert reasons == {
        ("REMOVED", "tables/public.pairs/columns/note"): "column of the source is missing in the"
        " target",
        ("CHANGED", "tables/public.codes/columns/code/type"): "character varying(10) is too short"
        " for varchar(20)",
    }
    # Every object counts once, under the target's names: two of them differ.
    assert result["checks_total"] - result["checks_passed"] == 2
