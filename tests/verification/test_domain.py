"""The pure rules: request validation, connection configs, schema parity scoring, retries."""

from __future__ import annotations

import pytest

from services.verification.domain import (
    JobPolicy,
    VerificationType,
    parse_list_parent,
    parse_signing_key_name,
    validate_new_verification,
)
from services.verification.schema_parity import (
    SchemaDifference,
    SchemaRef,
    schema_items,
    schema_parity,
)
from shared.errors import InvalidArgument

ORG = "6f1c1e52-7a0e-4c4e-9a10-000000000001"
MIGRATION = "6f1c1e52-7a0e-4c4e-9a10-000000000002"
PARENT = f"organizations/{ORG}/migrations/{MIGRATION}"


def _table(*columns: str, pk: bool = True, indexes: tuple[str, ...] = ()) -> dict[str, object]:
    return {
        "columns": {name: {"position": i + 1, "type": "integer"} for i, name in enumerate(columns)},
        "primary_key": {"name": "pk", "columns": [columns[0]]} if pk else None,
        "unique_constraints": [],
        "foreign_keys": [],
        "indexes": [{"name": name} for name in indexes],
    }


def _schema(name: str, **tables: dict[str, object]) -> SchemaRef:
    return SchemaRef(
        name, "a" * 64, {"version": 1, "tables": {f"public.{t}": d for t, d in tables.items()}}
    )


def test_a_valid_request_is_normalized() -> None:
    new = validate_new_verification(PARENT, "CHECKSUM", ["orders", "sales.items"])
    assert (new.org_id, new.migration_id) == (ORG, MIGRATION)
    assert new.type is VerificationType.CHECKSUM
    assert new.tables == ("public.orders", "sales.items")


def test_every_violation_is_reported_at_once() -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate_new_verification("migrations/x", "", ["", "a.b", "a.b", "x."])
    assert {v.field for v in caught.value.violations} == {
        "parent",
        "verification.type",
        "verification.tables[0]",
        "verification.tables[2]",
        "verification.tables[3]",
    }


def test_list_parent_accepts_every_migration_wildcard() -> None:
    assert parse_list_parent(f"organizations/{ORG}/migrations/-") == (ORG, None)
    assert parse_list_parent(PARENT) == (ORG, MIGRATION)


def test_signing_key_names_need_a_hex_sha256() -> None:
    assert parse_signing_key_name("signingKeys/" + "ab" * 32) == "ab" * 32
    with pytest.raises(InvalidArgument):
        parse_signing_key_name("signingKeys/ABC")


def test_schema_items_are_tables_columns_keys_constraints_and_indexes() -> None:
    schema = _schema("s", users=_table("id", "email", indexes=("users_email_idx",)))
    assert schema_items(schema.definition) == {
        "tables/public.users",
        "tables/public.users/columns/id",
        "tables/public.users/columns/email",
        "tables/public.users/primary_key",
        "tables/public.users/indexes/users_email_idx",
    }


def test_identical_schemas_score_one() -> None:
    schema = _schema("s", users=_table("id", "email"))
    result = schema_parity(schema, schema, [])
    assert (result["checks_passed"], result["checks_total"], result["score"]) == (4, 4, 1.0)


def test_a_missing_table_leaves_all_its_objects_unmatched() -> None:
    source = _schema("s", users=_table("id", "email"), orders=_table("id"))
    target = _schema("t", users=_table("id", "email"))
    removed = SchemaDifference("REMOVED", "TABLE", "tables/public.orders", "public.orders")
    result = schema_parity(source, target, [removed])
    # users: table, 2 columns, pk = 4 matched; orders: table, column, pk = 3 unmatched.
    assert (result["checks_passed"], result["checks_total"]) == (4, 7)


def test_a_changed_attribute_unmatches_only_its_object() -> None:
    schema = _schema("s", users=_table("id", "email"))
    changed = SchemaDifference(
        "CHANGED",
        "COLUMN",
        "tables/public.users/columns/email/nullable",
        "public.users",
        "email",
        "nullable",
        True,
        False,
    )
    result = schema_parity(schema, schema, [changed])
    assert (result["checks_passed"], result["checks_total"]) == (3, 4)


def test_a_renamed_index_counts_once_as_unmatched_under_each_name() -> None:
    source = _schema("s", users=_table("id", indexes=("old_idx",)))
    target = _schema("t", users=_table("id", indexes=("new_idx",)))
    renamed = SchemaDifference(
        "CHANGED",
        "INDEX",
        "tables/public.users/indexes/new_idx/name",
        "public.users",
        "new_idx",
        "name",
        "old_idx",
        "new_idx",
    )
    result = schema_parity(source, target, [renamed])
    assert (result["checks_passed"], result["checks_total"]) == (3, 5)


def test_schema_parity_can_be_limited_to_tables() -> None:
    source = _schema("s", users=_table("id"), orders=_table("id"))
    target = _schema("t", users=_table("id"))
    removed = SchemaDifference("REMOVED", "TABLE", "tables/public.orders", "public.orders")
    result = schema_parity(source, target, [removed], ["public.users"])
    assert result["score"] == 1.0
    assert result["differences"] == []


def test_retries_back_off_up_to_a_limit() -> None:
    policy = JobPolicy(max_attempts=3, max_retry_delay_seconds=5)
    assert [policy.retry_delay(n) for n in (1, 2, 3, 4, 5)] == [1, 2, 4, 5, 5]
    assert not policy.exhausted(3)
    assert policy.exhausted(4)
