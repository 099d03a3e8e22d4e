"""SchemaService over gRPC: create, capture from a live database, get, list, diff."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import grpc
from google.protobuf import json_format

from sensei.migration.v1 import schema_pb2
from services.migration.schema_canonical import fingerprint_of
from tests.harness import Identity, bad_request_fields, error_info
from tests.migration.conftest import Api, rpc_error, struct

MakeDatabase = Callable[..., Awaitable[str]]

DEFINITION: dict[str, Any] = {
    "version": 1,
    "tables": {
        "public.users": {
            "columns": {
                "id": {"position": 1, "type": "int8", "nullable": False},
                "email": {"position": 2, "type": "text", "nullable": False},
            },
            "primary_key": {"name": "users_pkey", "columns": ["id"]},
            "unique_constraints": [{"name": "users_email_key", "columns": ["email"]}],
        }
    },
}

SOURCE_DDL = """
CREATE TABLE customers (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email text NOT NULL UNIQUE
);
CREATE TABLE orders (
    id bigserial PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    total numeric(12, 2) NOT NULL DEFAULT 0
);
CREATE INDEX orders_customer_idx ON orders (customer_id);
"""
# The target lost an index and widened a column.
TARGET_DDL = SOURCE_DDL.replace("numeric(12, 2)", "numeric(14, 2)").replace(
    "CREATE INDEX orders_customer_idx ON orders (customer_id);", ""
)


def _dict(message: Any) -> dict[str, Any]:
    value: dict[str, Any] = json_format.MessageToDict(message)
    return value


async def _create_schema(
    api: Api, who: Identity, parent: str, definition: dict[str, Any], kind: int, **extra: Any
) -> schema_pb2.Schema:
    response = await api.schemas.CreateSchema(
        schema_pb2.CreateSchemaRequest(
            parent=parent,
            schema=schema_pb2.Schema(type=kind, definition=struct(definition)),  # type: ignore[arg-type]
            **extra,
        ),
        metadata=who.metadata,
    )
    schema: schema_pb2.Schema = response.schema
    return schema


async def _database(make_sample_database: MakeDatabase, ddl: str) -> str:
    dsn = await make_sample_database()
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(ddl)
    finally:
        await conn.close()
    return dsn


async def test_create_schema_stores_the_canonical_form_and_fingerprint(api: Api) -> None:
    owner = await api.tenant()
    migration = await api.create(owner)
    schema = await _create_schema(
        api, owner, migration.name, DEFINITION, schema_pb2.SCHEMA_TYPE_TARGET
    )
    assert schema.name == f"{migration.name}/schemas/{schema.id}"
    assert schema.fingerprint == fingerprint_of(DEFINITION)
    columns = _dict(schema.definition)["tables"]["public.users"]["columns"]
    assert columns["id"]["type"] == "bigint"  # normalized
    got = await api.schemas.GetSchema(
        schema_pb2.GetSchemaRequest(name=schema.name), metadata=owner.metadata
    )
    assert got.schema == schema


async def test_equal_schemas_in_any_key_order_have_one_fingerprint(api: Api) -> None:
    owner = await api.tenant()
    migration = await api.create(owner)
    reordered = copy.deepcopy(DEFINITION)
    table = reordered["tables"]["public.users"]
    table["columns"] = dict(reversed(list(table["columns"].items())))
    a = await _create_schema(api, owner, migration.name, DEFINITION, schema_pb2.SCHEMA_TYPE_SOURCE)
    b = await _create_schema(api, owner, migration.name, reordered, schema_pb2.SCHEMA_TYPE_TARGET)
    assert a.fingerprint == b.fingerprint


async def test_invalid_schema_lists_every_problem_by_path(api: Api) -> None:
    owner = await api.tenant()
    migration = await api.create(owner)
    broken = copy.deepcopy(DEFINITION)
    broken["tables"]["public.users"]["primary_key"]["columns"] = ["nope"]
    broken["tables"]["public.users"]["columns"]["email"]["nullable"] = "maybe"
    error = await rpc_error(_create_schema(api, owner, migration.name, broken, 0))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request_fields(error) == {
        "schema.type",
        "schema.definition.tables/public.users/primary_key/columns/0",
        "schema.definition.tables/public.users/columns/email/nullable",
    }


async def test_create_schema_is_idempotent_by_request_id(api: Api) -> None:
    owner = await api.tenant()
    migration = await api.create(owner)
    request_id = str(uuid.uuid4())
    first = await _create_schema(api, owner, migration.name, DEFINITION, 1, request_id=request_id)
    again = await _create_schema(api, owner, migration.name, DEFINITION, 1, request_id=request_id)
    assert again == first
    count = await api.fetchval(
        "SELECT count(*) FROM schemas WHERE migration_id = $1", uuid.UUID(migration.id)
    )
    assert count == 1


async def test_schema_of_an_unknown_migration_is_not_found(api: Api) -> None:
    owner = await api.tenant()
    missing = f"{owner.org_name}/migrations/00000000-0000-4000-8000-000000000000"
    error = await rpc_error(_create_schema(api, owner, missing, DEFINITION, 1))
    assert error.code() == grpc.StatusCode.NOT_FOUND


async def test_list_schemas_pages_and_filters_by_type(api: Api) -> None:
    owner = await api.tenant()
    migration = await api.create(owner)
    kinds = [1, 2, 1, 1, 2]
    made = [
        (await _create_schema(api, owner, migration.name, DEFINITION, kind)).id for kind in kinds
    ]
    seen: list[str] = []
    token = ""
    while True:
        page = await api.schemas.ListSchemas(
            schema_pb2.ListSchemasRequest(parent=migration.name, page_size=2, page_token=token),
            metadata=owner.metadata,
        )
        seen += [s.id for s in page.schemas]
        token = page.next_page_token
        if not token:
            break
    assert seen == made
    targets = await api.schemas.ListSchemas(
        schema_pb2.ListSchemasRequest(parent=migration.name, type=schema_pb2.SCHEMA_TYPE_TARGET),
        metadata=owner.metadata,
    )
    assert [s.id for s in targets.schemas] == [made[1], made[4]]


async def test_capture_and_diff_live_databases(
    api: Api, make_sample_database: MakeDatabase
) -> None:
    owner = await api.tenant()
    migration = await api.create(
        owner,
        source_config={"dsn": await _database(make_sample_database, SOURCE_DDL)},
        target_config={"dsn": await _database(make_sample_database, TARGET_DDL)},
    )
    service = await api.suite.service()
    captured = {}
    for kind, who in (
        (schema_pb2.SCHEMA_TYPE_SOURCE, owner),
        (schema_pb2.SCHEMA_TYPE_TARGET, service),
    ):
        response = await api.schemas.CaptureSchema(
            schema_pb2.CaptureSchemaRequest(
                parent=migration.name, type=kind, schemas=["public"], metadata=struct({"by": "t"})
            ),
            metadata=who.metadata,
        )
        captured[kind] = response.schema
    source = captured[schema_pb2.SCHEMA_TYPE_SOURCE]
    definition = _dict(source.definition)
    assert sorted(definition["tables"]) == ["public.customers", "public.orders"]
    orders = definition["tables"]["public.orders"]
    assert orders["foreign_keys"][0]["on_delete"] == "CASCADE"
    assert [i["name"] for i in orders["indexes"]] == ["orders_customer_idx"]
    assert source.fingerprint == fingerprint_of(definition)
    metadata = _dict(source.metadata)
    assert metadata["captured_from"] == "source" and metadata["by"] == "t"
    assert metadata["server_version"]
    diff = await api.schemas.DiffSchemas(
        schema_pb2.DiffSchemasRequest(
            base_schema=source.name, target_schema=captured[schema_pb2.SCHEMA_TYPE_TARGET].name
        ),
        metadata=service.metadata,
    )
    assert diff.base_fingerprint == source.fingerprint
    found = {(d.path, schema_pb2.DifferenceKind.Name(d.kind)) for d in diff.differences}
    assert found == {
        ("tables/public.orders/columns/total/type", "DIFFERENCE_KIND_CHANGED"),
        ("tables/public.orders/indexes/orders_customer_idx", "DIFFERENCE_KIND_REMOVED"),
    }
    changed = next(d for d in diff.differences if d.attribute == "type")
    assert changed.before.string_value == "numeric(12,2)"
    assert changed.after.string_value == "numeric(14,2)"


async def test_diff_of_equal_schemas_is_empty(api: Api) -> None:
    owner = await api.tenant()
    migration = await api.create(owner)
    a = await _create_schema(api, owner, migration.name, DEFINITION, 1)
    b = await _create_schema(api, owner, migration.name, DEFINITION, 2)
    diff = await api.schemas.DiffSchemas(
        schema_pb2.DiffSchemasRequest(base_schema=a.name, target_schema=b.name),
        metadata=owner.metadata,
    )
    assert list(diff.differences) == [] and diff.base_fingerprint == diff.target_fingerprint


async def test_capture_without_a_config_is_a_failed_precondition(api: Api) -> None:
    owner = await api.tenant()
    migration = await api.create(owner)
    error = await rpc_error(
        api.schemas.CaptureSchema(
            schema_pb2.CaptureSchemaRequest(parent=migration.name, type=1),
            metadata=owner.metadata,
        )
    )
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_info(error).reason == "CONNECTION_NOT_CONFIGURED"


async def test_capture_of_a_loopback_port_is_not_allowed(api: Api) -> None:
    owner = await api.tenant()
    # Loopback other than the sample server: refused before any connection is tried.
    migration = await api.create(owner, source_config={"host": "127.0.0.1", "port": 1})
    error = await rpc_error(
        api.schemas.CaptureSchema(
            schema_pb2.CaptureSchemaRequest(parent=migration.name, type=1),
            metadata=owner.metadata,
        )
    )
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_info(error).reason == "DESTINATION_NOT_ALLOWED"


async def test_capture_of_a_missing_database_is_target_unreachable(
    api: Api, make_sample_database: MakeDatabase
) -> None:
    owner = await api.tenant()
    dsn = await make_sample_database()
    missing = dsn.rsplit("/", 1)[0] + "/no_such_database_" + uuid.uuid4().hex[:6]
    migration = await api.create(owner, target_config={"dsn": missing})
    error = await rpc_error(
        api.schemas.CaptureSchema(
            schema_pb2.CaptureSchemaRequest(parent=migration.name, type=2),
            metadata=owner.metadata,
        )
    )
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_info(error).reason == "TARGET_UNREACHABLE"
    assert "no_such_database" not in error.details()
