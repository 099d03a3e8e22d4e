"""MySQL/MariaDB sources: connection configs, CaptureSchema over information_schema and
DiffSchemas against a PostgreSQL target (the type map), through the running service."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from google.protobuf import json_format

from sensei.migration.v1 import schema_pb2
from services.migration.schema_canonical import fingerprint_of
from tests.migration.conftest import Api, rpc_error
from tests.mysql.sample import MYSQL_DDL, POSTGRES_DDL
from tests.mysql_server import MySQLServer, run_mysql

MakeDatabase = Callable[..., Awaitable[str]]


def _dict(message: Any) -> dict[str, Any]:
    value: dict[str, Any] = json_format.MessageToDict(message)
    return value


async def _postgres(make_sample_database: MakeDatabase, ddl: str) -> str:
    dsn = await make_sample_database()
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(ddl)
    finally:
        await conn.close()
    return dsn


async def _captured(  # noqa: PLR0917
    api: Api,
    mysql_server: MySQLServer,
    make_mysql_database: MakeDatabase,
    make_sample_database: MakeDatabase,
    target_ddl: str = POSTGRES_DDL,
    mysql_ddl: str = MYSQL_DDL,
) -> tuple[Any, schema_pb2.Schema, schema_pb2.Schema]:
    """(owner, source schema, target schema) of a MySQL → PostgreSQL migration."""
    owner = await api.tenant()
    database = await make_mysql_database()
    await run_mysql(mysql_server, database, mysql_ddl)
    migration = await api.create(
        owner,
        source_config={"dsn": mysql_server.url(database)},
        target_config={"dsn": await _postgres(make_sample_database, target_ddl)},
    )
    assert migration.source_engine == "mysql" and migration.target_engine == "postgresql"
    schemas = []
    for kind in (schema_pb2.SCHEMA_TYPE_SOURCE, schema_pb2.SCHEMA_TYPE_TARGET):
        response = await api.schemas.CaptureSchema(
            schema_pb2.CaptureSchemaRequest(parent=migration.name, type=kind),
            metadata=owner.metadata,
        )
        schemas.append(response.schema)
    return owner, schemas[0], schemas[1]


async def _differences(api: Api, owner: Any, source: Any, target: Any) -> dict[str, Any]:
    diff = await api.schemas.DiffSchemas(
        schema_pb2.DiffSchemasRequest(base_schema=source.name, target_schema=target.name),
        metadata=owner.metadata,
    )
    return {d.path: d for d in diff.differences}


async def test_mysql_config_is_accepted_and_redacted(api: Api) -> None:
    owner = await api.tenant()
    migration = await api.create(
        owner,
        source_config={"engine": "mysql", "host": "db.example.com", "password": "s3cret"},
        target_config={"dsn": "postgresql://u:pw@db2.example.com/t"},
    )
    assert migration.source_engine == "mysql"
    assert _dict(migration.source_config)["password"] == "REDACTED"
    other = await api.create(
        owner, source_config={"dsn": "mariadb://root:pw@db.example.com:3307/shop"}
    )
    assert other.source_engine == "mysql"
    assert _dict(other.source_config)["dsn"] == "mariadb://root:REDACTED@db.example.com:3307/shop"


async def test_mysql_config_with_a_conflicting_engine_is_refused(api: Api) -> None:
    owner = await api.tenant()
    error = await rpc_error(
        api.create(owner, source_config={"dsn": "mysql://h/db", "engine": "postgresql"})
    )
    assert "engine" in (error.details() or "")


async def test_capture_of_a_mariadb_schema(
    api: Api,
    mysql_server: MySQLServer,
    make_mysql_database: MakeDatabase,
    make_sample_database: MakeDatabase,
) -> None:
    _, source, _ = await _captured(api, mysql_server, make_mysql_database, make_sample_database)
    definition = _dict(source.definition)
    assert source.engine == "mysql" and definition["engine"] == "mysql"
    assert source.fingerprint == fingerprint_of(definition)
    assert _dict(source.metadata)["server_version"]
    tables = {name.split(".", 1)[1]: table for name, table in definition["tables"].items()}
    assert sorted(tables) == ["customers", "everything", "pairs", "words"]
    columns = tables["everything"]["columns"]
    types = {name: column["type"] for name, column in columns.items()}
    assert types["flag"] == "tinyint(1)"
    assert types["regular_u"].startswith("int(") and types["regular_u"].endswith(" unsigned")
    assert types["size"] == "enum('small','medium','large')"
    assert types["tags"] == "set('red','green','blue')"
    assert types["doc"] == "json"  # MariaDB: longtext with a json_valid check
    assert types["seen"] == "datetime(6)" and types["amount"] == "decimal(12,4)"
    assert columns["label"]["charset"] == "utf8mb4"
    assert columns["ratio"]["default"] is None  # MariaDB's "NULL" text is no default
    assert columns["doubled"]["generated"]["stored"] is True
    customers = tables["customers"]
    assert customers["columns"]["id"]["identity"] == "BY DEFAULT"
    assert customers["columns"]["code"]["collation"] == "latin1_swedish_ci"
    assert customers["columns"]["code"]["default"] == "'abc'"
    assert customers["primary_key"] == {"name": "PRIMARY", "columns": ["id"]}
    assert customers["unique_constraints"] == [
        {"name": "customers_email_key", "columns": ["email"]}
    ]
    everything = tables["everything"]
    assert everything["foreign_keys"][0]["on_delete"] == "SET NULL"
    assert "everything_label_idx" in {i["name"] for i in everything["indexes"]}
    assert tables["pairs"]["primary_key"]["columns"] == ["region", "seq"]


async def test_diff_of_a_faithful_translation_is_empty(
    api: Api,
    mysql_server: MySQLServer,
    make_mysql_database: MakeDatabase,
    make_sample_database: MakeDatabase,
) -> None:
    owner, source, target = await _captured(
        api, mysql_server, make_mysql_database, make_sample_database
    )
    assert await _differences(api, owner, source, target) == {}


PLANTED = (
    POSTGRES_DDL.replace("email character varying(200)", "email character varying(50)")
    .replace("big_u numeric(20)", "big_u integer")
    .replace("amount numeric(12,4)", "amount numeric(10,2)")
    .replace("label character varying(50),", "label character varying(50) NOT NULL,")
    .replace("    meaning text\n", "    meaning text,\n    extra integer\n")
    .replace("    note character varying(40),\n", "")
    .replace("CONSTRAINT customers_email_key UNIQUE (email)", "CHECK (true)")
    .replace("REFERENCES customers (id) ON DELETE SET NULL", "")
    .replace("CREATE INDEX everything_label_born ON everything (label, born);", "")
    + "CREATE TABLE leftover (id integer);"
)


async def test_diff_names_every_planted_mismatch(
    api: Api,
    mysql_server: MySQLServer,
    make_mysql_database: MakeDatabase,
    make_sample_database: MakeDatabase,
) -> None:
    owner, source, target = await _captured(
        api, mysql_server, make_mysql_database, make_sample_database, target_ddl=PLANTED
    )
    found = await _differences(api, owner, source, target)
    kinds = {path: schema_pb2.DifferenceKind.Name(d.kind)[16:] for path, d in found.items()}
    assert kinds == {
        "tables/public.customers/columns/email/type": "CHANGED",
        "tables/public.everything/columns/big_u/type": "CHANGED",
        "tables/public.everything/columns/amount/type": "CHANGED",
        "tables/public.everything/columns/label/nullable": "CHANGED",
        "tables/public.words/columns/extra": "ADDED",
        "tables/public.pairs/columns/note": "REMOVED",
        "tables/public.customers/unique_constraints/customers_email_key": "REMOVED",
        "tables/public.everything/foreign_keys/everything_customer_fk": "REMOVED",
        "tables/public.everything/indexes/everything_label_idx": "REMOVED",
        "tables/public.leftover": "ADDED",
    }
    email = found["tables/public.customers/columns/email/type"]
    assert email.table == "public.customers" and email.object_name == "email"
    assert email.reason == "character varying(50) is too short for varchar(200)"
    assert "cannot hold" in found["tables/public.everything/columns/big_u/type"].reason
    assert "cannot hold" in found["tables/public.everything/columns/amount/type"].reason
    assert all(d.reason for d in found.values())
