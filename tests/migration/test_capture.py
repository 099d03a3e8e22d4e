"""capture_schema against real PostgreSQL databases (on the sample server)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import pytest

from services.migration.capture import capture_schema
from services.migration.schema_canonical import fingerprint_of
from services.migration.schema_checks import definition_violations
from services.migration.schema_diff import diff

MakeDatabase = Callable[..., Awaitable[str]]

DDL = """
CREATE SCHEMA app;
CREATE SCHEMA other;
CREATE TABLE app.orgs (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slug text NOT NULL UNIQUE
);
CREATE TABLE app.users (
    id serial PRIMARY KEY,
    org_id bigint NOT NULL REFERENCES app.orgs (id) ON DELETE CASCADE ON UPDATE RESTRICT,
    email varchar(255) NOT NULL,
    name text DEFAULT 'anonymous',
    created timestamptz NOT NULL DEFAULT now(),
    score numeric(10, 2),
    doubled integer GENERATED ALWAYS AS (id * 2) STORED,
    CONSTRAINT users_org_email_key UNIQUE (org_id, email)
);
CREATE INDEX users_lower_email_idx ON app.users (lower(email) DESC NULLS LAST)
    INCLUDE (name) WHERE email IS NOT NULL;
CREATE INDEX users_created_brin ON app.users USING brin (created);
CREATE TABLE other.notes (body text);
"""


async def _connect(make_sample_database: MakeDatabase, ddl: str = DDL) -> asyncpg.Connection:
    conn = await asyncpg.connect(await make_sample_database())
    await conn.execute(ddl)
    return conn


@pytest.fixture
async def source(make_sample_database: MakeDatabase) -> AsyncIterator[asyncpg.Connection]:
    """A fresh database with the DDL above."""
    conn = await _connect(make_sample_database)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
async def captured(source: asyncpg.Connection) -> dict[str, Any]:
    """The captured definition of ``source``."""
    return await capture_schema(source)


def test_capture_lists_the_user_tables(captured: dict[str, Any]) -> None:
    assert sorted(captured["tables"]) == ["app.orgs", "app.users", "other.notes"]


def test_captured_definition_is_valid(captured: dict[str, Any]) -> None:
    assert definition_violations(captured) == []


def test_capture_describes_columns(captured: dict[str, Any]) -> None:
    columns = captured["tables"]["app.users"]["columns"]
    assert list(columns) == ["id", "org_id", "email", "name", "created", "score", "doubled"]
    assert columns["email"] == {
        "position": 3,
        "type": "character varying(255)",
        "nullable": False,
        "default": None,
        "identity": None,
        "generated": None,
    }
    assert columns["name"]["default"] == "'anonymous'::text"
    assert columns["created"]["type"] == "timestamp with time zone"
    assert columns["score"]["type"] == "numeric(10,2)"
    assert columns["id"]["default"].startswith("nextval(")


def test_capture_describes_identity_and_generated_columns(captured: dict[str, Any]) -> None:
    orgs_id = captured["tables"]["app.orgs"]["columns"]["id"]
    doubled = captured["tables"]["app.users"]["columns"]["doubled"]
    assert (orgs_id["identity"], orgs_id["default"]) == ("ALWAYS", None)
    assert doubled["generated"] == {"expression": "(id * 2)", "stored": True}
    assert doubled["default"] is None


def test_capture_describes_keys(captured: dict[str, Any]) -> None:
    users = captured["tables"]["app.users"]
    assert users["primary_key"] == {"name": "users_pkey", "columns": ["id"]}
    assert users["unique_constraints"] == [
        {"name": "users_org_email_key", "columns": ["org_id", "email"]}
    ]
    assert users["foreign_keys"] == [
        {
            "name": "users_org_id_fkey",
            "columns": ["org_id"],
            "referenced_table": "app.orgs",
            "referenced_columns": ["id"],
            "on_delete": "CASCADE",
            "on_update": "RESTRICT",
        }
    ]


def test_capture_describes_indexes_but_not_those_of_constraints(
    captured: dict[str, Any],
) -> None:
    indexes = {i["name"]: i for i in captured["tables"]["app.users"]["indexes"]}
    assert sorted(indexes) == ["users_created_brin", "users_lower_email_idx"]
    assert captured["tables"]["app.orgs"]["indexes"] == []
    expression = indexes["users_lower_email_idx"]
    assert expression["keys"] == [
        {
            "column": None,
            "expression": "lower((email)::text)",
            "descending": True,
            "nulls_first": False,
        }
    ]
    assert (expression["include"], expression["method"], expression["unique"]) == (
        ["name"],
        "btree",
        False,
    )
    assert expression["predicate"] == "(email IS NOT NULL)"
    assert indexes["users_created_brin"]["method"] == "brin"


def test_table_without_keys_has_empty_constraints(captured: dict[str, Any]) -> None:
    notes = captured["tables"]["other.notes"]
    assert (notes["primary_key"], notes["unique_constraints"], notes["indexes"]) == (None, [], [])


async def test_capture_can_be_limited_to_some_schemas(source: asyncpg.Connection) -> None:
    definition = await capture_schema(source, ["other"])
    assert list(definition["tables"]) == ["other.notes"]


async def test_capture_of_an_empty_database_has_no_tables(
    make_sample_database: MakeDatabase,
) -> None:
    conn = await asyncpg.connect(await make_sample_database())
    try:
        assert await capture_schema(conn) == {"version": 1, "tables": {}}
    finally:
        await conn.close()


async def test_fingerprint_is_stable_across_captures(source: asyncpg.Connection) -> None:
    first = await capture_schema(source)
    second = await capture_schema(source)
    assert fingerprint_of(first) == fingerprint_of(second)


async def test_same_ddl_in_two_databases_gives_the_same_fingerprint(
    source: asyncpg.Connection, make_sample_database: MakeDatabase
) -> None:
    twin = await _connect(make_sample_database)
    try:
        assert fingerprint_of(await capture_schema(twin)) == fingerprint_of(
            await capture_schema(source)
        )
    finally:
        await twin.close()


async def test_dropped_column_does_not_leave_a_gap_in_positions(
    source: asyncpg.Connection,
) -> None:
    await source.execute("ALTER TABLE app.users DROP COLUMN score")
    columns = (await capture_schema(source))["tables"]["app.users"]["columns"]
    assert [c["position"] for c in columns.values()] == [1, 2, 3, 4, 5, 6]


async def test_diff_against_a_modified_database_finds_each_change(
    source: asyncpg.Connection, make_sample_database: MakeDatabase
) -> None:
    target = await _connect(make_sample_database)
    try:
        await target.execute(
            """
            ALTER TABLE app.users ALTER COLUMN name SET NOT NULL;
            ALTER TABLE app.users ALTER COLUMN email TYPE text;
            ALTER TABLE app.users ADD COLUMN bio text;
            DROP INDEX app.users_created_brin;
            CREATE UNIQUE INDEX users_name_idx ON app.users (name);
            ALTER TABLE app.orgs DROP CONSTRAINT orgs_slug_key;
            DROP TABLE other.notes;
            """
        )
        found = diff(await capture_schema(source), await capture_schema(target))
    finally:
        await target.close()
    assert [(d.kind.value, d.path) for d in found] == [
        ("REMOVED", "tables/app.orgs/unique_constraints/orgs_slug_key"),
        ("ADDED", "tables/app.users/columns/bio"),
        ("CHANGED", "tables/app.users/columns/email/type"),
        ("CHANGED", "tables/app.users/columns/name/nullable"),
        ("REMOVED", "tables/app.users/indexes/users_created_brin"),
        # The expression index now reads lower(email): the cast went with the type change.
        ("CHANGED", "tables/app.users/indexes/users_lower_email_idx/keys"),
        ("ADDED", "tables/app.users/indexes/users_name_idx"),
        ("REMOVED", "tables/other.notes"),
    ]
