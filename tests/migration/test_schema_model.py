"""The schema definition JSON form: validation, canonical form, fingerprint and diff."""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable
from typing import Any

import pytest
import rfc8785

from services.migration.schema_canonical import canonical_definition, fingerprint_of
from services.migration.schema_checks import definition_violations, require_valid_definition
from services.migration.schema_diff import diff
from services.migration.schema_difference import DifferenceKind, SchemaDifference, SchemaObjectType
from services.migration.schema_model import normalize_type
from shared.errors import InvalidArgument

Definition = dict[str, Any]


def sample() -> Definition:
    """Two tables using every part of the form."""
    return {
        "version": 1,
        "tables": {
            "public.orgs": {
                "columns": {
                    "id": {
                        "position": 1,
                        "type": "bigint",
                        "nullable": False,
                        "identity": "ALWAYS",
                    },
                    "slug": {"position": 2, "type": "text", "nullable": False},
                },
                "primary_key": {"name": "orgs_pkey", "columns": ["id"]},
                "unique_constraints": [{"name": "orgs_slug_key", "columns": ["slug"]}],
            },
            "public.users": {
                "columns": {
                    "id": {
                        "position": 1,
                        "type": "integer",
                        "nullable": False,
                        "default": "nextval('users_id_seq'::regclass)",
                    },
                    "org_id": {"position": 2, "type": "bigint", "nullable": False},
                    "email": {"position": 3, "type": "character varying(255)", "nullable": False},
                    "name": {"position": 4, "type": "text", "default": "''::text"},
                },
                "primary_key": {"name": "users_pkey", "columns": ["id"]},
                "unique_constraints": [
                    {"name": "users_org_email_key", "columns": ["org_id", "email"]},
                    {"name": "users_name_key", "columns": ["name"]},
                ],
                "foreign_keys": [
                    {
                        "name": "users_org_id_fkey",
                        "columns": ["org_id"],
                        "referenced_table": "public.orgs",
                        "referenced_columns": ["id"],
                        "on_delete": "CASCADE",
                    },
                ],
                "indexes": [
                    {
                        "name": "users_lower_email_idx",
                        "keys": [{"expression": "lower((email)::text)"}],
                        "predicate": "(email IS NOT NULL)",
                    },
                    {"name": "users_name_idx", "keys": ["name"], "include": ["email"]},
                ],
            },
        },
    }


def users(definition: Definition) -> dict[str, Any]:
    table: dict[str, Any] = definition["tables"]["public.users"]
    return table


def violation_fields(definition: Any) -> list[str]:
    return [v.field for v in definition_violations(definition)]


# --- validation --------------------------------------------------------------------------


def test_sample_definition_is_valid() -> None:
    assert definition_violations(sample()) == []


def _set(path: list[Any], value: Any) -> Callable[[Definition], None]:
    def mutate(definition: Definition) -> None:
        target: Any = definition
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return mutate


def _rename_table(definition: Definition) -> None:
    definition["tables"]["users"] = definition["tables"].pop("public.users")


def _delete_type(definition: Definition) -> None:
    del users(definition)["columns"]["email"]["type"]


U = ["tables", "public.users"]
CASES: list[tuple[str, Callable[[Definition], None], str]] = [
    ("version", _set(["version"], 2), "version"),
    ("tables not an object", _set(["tables"], []), "tables"),
    ("unknown top-level key", _set(["colour"], 1), "colour"),
    ("unqualified table", _rename_table, "tables/users"),
    ("unknown table key", _set([*U, "colour"], 1), "tables/public.users/colour"),
    ("columns missing", _set([*U, "columns"], None), "tables/public.users/columns"),
    ("column type missing", _delete_type, "tables/public.users/columns/email/type"),
    (
        "position zero",
        _set([*U, "columns", "name", "position"], 0),
        "tables/public.users/columns/name/position",
    ),
    (
        "position repeated",
        _set([*U, "columns", "name", "position"], 1),
        "tables/public.users/columns/name/position",
    ),
    (
        "position fractional",
        _set([*U, "columns", "name", "position"], 4.5),
        "tables/public.users/columns/name/position",
    ),
    (
        "nullable not bool",
        _set([*U, "columns", "name", "nullable"], "yes"),
        "tables/public.users/columns/name/nullable",
    ),
    (
        "empty default",
        _set([*U, "columns", "name", "default"], ""),
        "tables/public.users/columns/name/default",
    ),
    (
        "bad identity",
        _set([*U, "columns", "org_id", "identity"], "SOMETIMES"),
        "tables/public.users/columns/org_id/identity",
    ),
    (
        "identity with default",
        _set([*U, "columns", "id", "identity"], "ALWAYS"),
        "tables/public.users/columns/id",
    ),
    (
        "generated without expression",
        _set([*U, "columns", "org_id", "generated"], {}),
        "tables/public.users/columns/org_id/generated/expression",
    ),
    (
        "unknown column key",
        _set([*U, "columns", "name", "collation"], "C"),
        "tables/public.users/columns/name/collation",
    ),
    (
        "primary key on missing column",
        _set([*U, "primary_key", "columns"], ["uid"]),
        "tables/public.users/primary_key/columns/0",
    ),
    (
        "primary key without columns",
        _set([*U, "primary_key", "columns"], []),
        "tables/public.users/primary_key/columns",
    ),
    (
        "unique without name",
        _set([*U, "unique_constraints", 0, "name"], ""),
        "tables/public.users/unique_constraints/0/name",
    ),
    (
        "unique column twice",
        _set([*U, "unique_constraints", 0, "columns"], ["email", "email"]),
        "tables/public.users/unique_constraints/0/columns/1",
    ),
    (
        "constraint name reused",
        _set([*U, "unique_constraints", 1, "name"], "users_pkey"),
        "tables/public.users/unique_constraints/1/name",
    ),
    (
        "unique constraints not a list",
        _set([*U, "unique_constraints"], {}),
        "tables/public.users/unique_constraints",
    ),
    (
        "foreign key to unqualified table",
        _set([*U, "foreign_keys", 0, "referenced_table"], "orgs"),
        "tables/public.users/foreign_keys/0/referenced_table",
    ),
    (
        "foreign key to missing column",
        _set([*U, "foreign_keys", 0, "referenced_columns"], ["uuid"]),
        "tables/public.users/foreign_keys/0/referenced_columns/0",
    ),
    (
        "foreign key column count",
        _set([*U, "foreign_keys", 0, "referenced_columns"], ["id", "slug"]),
        "tables/public.users/foreign_keys/0/referenced_columns",
    ),
    (
        "bad referential action",
        _set([*U, "foreign_keys", 0, "on_update"], "EXPLODE"),
        "tables/public.users/foreign_keys/0/on_update",
    ),
    (
        "index without keys",
        _set([*U, "indexes", 0, "keys"], []),
        "tables/public.users/indexes/0/keys",
    ),
    (
        "index key column and expression",
        _set([*U, "indexes", 0, "keys"], [{"column": "email", "expression": "lower(email)"}]),
        "tables/public.users/indexes/0/keys/0",
    ),
    (
        "index key on missing column",
        _set([*U, "indexes", 1, "keys"], ["nickname"]),
        "tables/public.users/indexes/1/keys/0/column",
    ),
    (
        "index include missing column",
        _set([*U, "indexes", 1, "include"], ["nickname"]),
        "tables/public.users/indexes/1/include/0",
    ),
    (
        "bad index method",
        _set([*U, "indexes", 0, "method"], "b tree"),
        "tables/public.users/indexes/0/method",
    ),
    (
        "index unique not bool",
        _set([*U, "indexes", 0, "unique"], 1),
        "tables/public.users/indexes/0/unique",
    ),
    (
        "index name reused",
        _set([*U, "indexes", 1, "name"], "users_lower_email_idx"),
        "tables/public.users/indexes/1/name",
    ),
]


@pytest.mark.parametrize(("mutate", "path"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_violation_is_reported_with_its_path(
    mutate: Callable[[Definition], None], path: str
) -> None:
    definition = sample()
    mutate(definition)
    assert violation_fields(definition) == [path]


def test_every_violation_is_reported_at_once() -> None:
    definition = sample()
    _set([*U, "columns", "name", "nullable"], "yes")(definition)
    _set([*U, "indexes", 0, "method"], "b tree")(definition)
    _set(["tables", "public.orgs", "primary_key", "columns"], [])(definition)
    assert sorted(violation_fields(definition)) == [
        "tables/public.orgs/primary_key/columns",
        "tables/public.users/columns/name/nullable",
        "tables/public.users/indexes/0/method",
    ]


def test_definition_that_is_not_an_object_is_a_violation() -> None:
    assert violation_fields([1, 2]) == [""]


def test_invalid_definition_raises_with_prefixed_fields() -> None:
    definition = sample()
    _set(["version"], 2)(definition)
    with pytest.raises(InvalidArgument) as caught:
        require_valid_definition(definition, field="schema.definition")
    assert [v.field for v in caught.value.violations] == ["schema.definition.version"]


# --- canonical form and fingerprint ------------------------------------------------------


def reversed_keys(value: Any) -> Any:
    """The same JSON with every object's keys in reverse order."""
    if isinstance(value, dict):
        return {k: reversed_keys(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [reversed_keys(v) for v in value]
    return value


def test_fingerprint_is_the_sha256_of_the_rfc8785_canonical_form() -> None:
    expected = hashlib.sha256(rfc8785.dumps(canonical_definition(sample()))).hexdigest()
    assert fingerprint_of(sample()) == expected


def test_fingerprint_ignores_key_order() -> None:
    assert fingerprint_of(reversed_keys(sample())) == fingerprint_of(sample())


def test_fingerprint_ignores_constraint_and_index_order() -> None:
    shuffled = sample()
    users(shuffled)["unique_constraints"].reverse()
    users(shuffled)["indexes"].reverse()
    assert fingerprint_of(shuffled) == fingerprint_of(sample())


def test_fingerprint_ignores_gaps_in_column_positions() -> None:
    sparse = sample()
    for i, column in enumerate(users(sparse)["columns"].values()):
        column["position"] = 10 * (i + 1)
    assert fingerprint_of(sparse) == fingerprint_of(sample())


def test_fingerprint_ignores_omitted_defaults() -> None:
    explicit = sample()
    users(explicit)["columns"]["name"].update(nullable=True, identity=None, generated=None)
    users(explicit)["indexes"][1].update(unique=False, method="btree", predicate=None)
    assert fingerprint_of(explicit) == fingerprint_of(sample())


def test_fingerprint_ignores_struct_doubles_for_integers() -> None:
    doubles = sample()
    doubles["version"] = 1.0
    users(doubles)["columns"]["id"]["position"] = 1.0
    assert fingerprint_of(doubles) == fingerprint_of(sample())


def test_fingerprint_ignores_type_aliases() -> None:
    aliased = sample()
    users(aliased)["columns"]["id"]["type"] = "INT4"
    users(aliased)["columns"]["email"]["type"] = "varchar(255)"
    assert fingerprint_of(aliased) == fingerprint_of(sample())


@pytest.mark.parametrize(
    "mutate",
    [
        _set([*U, "columns", "name", "nullable"], False),
        _set([*U, "columns", "email", "type"], "text"),
        _set([*U, "foreign_keys", 0, "on_delete"], "RESTRICT"),
        _set([*U, "indexes", 1, "unique"], True),
        _set([*U, "primary_key", "columns"], ["id", "org_id"]),
        _set([*U, "unique_constraints", 0, "columns"], ["email", "org_id"]),
    ],
)
def test_fingerprint_changes_with_a_real_change(mutate: Callable[[Definition], None]) -> None:
    changed = sample()
    mutate(changed)
    assert fingerprint_of(changed) != fingerprint_of(sample())


def test_fingerprint_changes_with_column_order() -> None:
    swapped = sample()
    columns = users(swapped)["columns"]
    columns["email"]["position"], columns["name"]["position"] = 4, 3
    assert fingerprint_of(swapped) != fingerprint_of(sample())


def test_canonical_form_sorts_constraints_and_fills_defaults() -> None:
    table = canonical_definition(sample())["tables"]["public.users"]
    assert [u["name"] for u in table["unique_constraints"]] == [
        "users_name_key",
        "users_org_email_key",
    ]
    assert table["indexes"][1]["keys"] == [
        {"column": "name", "expression": None, "descending": False, "nulls_first": False}
    ]
    assert table["foreign_keys"][0]["on_update"] == "NO ACTION"


def test_canonical_form_is_its_own_canonical_form() -> None:
    canonical = canonical_definition(sample())
    assert canonical_definition(copy.deepcopy(canonical)) == canonical


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        ("int", "integer"),
        ("INT8", "bigint"),
        ("bool", "boolean"),
        ("varchar(20)", "character varying(20)"),
        ("numeric(10, 2)", "numeric(10,2)"),
        ("timestamptz", "timestamp with time zone"),
        ("timestamp(3)", "timestamp(3) without time zone"),
        ("TIMESTAMP(3) WITH TIME ZONE", "timestamp(3) with time zone"),
        ("time", "time without time zone"),
        ("int4[]", "integer[]"),
        ("text[3]", "text[]"),
        ("double  precision", "double precision"),
        ('"Money"', '"Money"'),
    ],
)
def test_type_aliases_are_normalized(spelling: str, canonical: str) -> None:
    assert normalize_type(spelling) == canonical


# --- diff --------------------------------------------------------------------------------


def changed(mutate: Callable[[Definition], None]) -> list[SchemaDifference]:
    target = sample()
    mutate(target)
    return diff(sample(), target)


def summary(differences: list[SchemaDifference]) -> list[tuple[str, str, str]]:
    return [(d.kind.value, d.object_type.value, d.path) for d in differences]


def test_equal_schemas_have_no_difference() -> None:
    assert diff(sample(), reversed_keys(sample())) == []


def test_diff_finds_an_added_table() -> None:
    def add(d: Definition) -> None:
        d["tables"]["audit.events"] = {"columns": {"id": {"position": 1, "type": "uuid"}}}

    (difference,) = changed(add)
    assert summary([difference]) == [("ADDED", "TABLE", "tables/audit.events")]
    assert difference.after["columns"]["id"]["type"] == "uuid"


def test_diff_finds_a_removed_table() -> None:
    def remove(d: Definition) -> None:
        del d["tables"]["public.orgs"]
        del users(d)["foreign_keys"][0]

    assert ("REMOVED", "TABLE", "tables/public.orgs") in summary(changed(remove))


def test_diff_finds_an_added_column() -> None:
    def add(d: Definition) -> None:
        users(d)["columns"]["bio"] = {"position": 5, "type": "text"}

    assert summary(changed(add)) == [("ADDED", "COLUMN", "tables/public.users/columns/bio")]


def test_diff_finds_a_removed_column_without_moving_the_others() -> None:
    def remove(d: Definition) -> None:
        del users(d)["columns"]["org_id"]
        del users(d)["foreign_keys"][0]
        users(d)["unique_constraints"].pop(0)

    found = summary(changed(remove))
    assert ("REMOVED", "COLUMN", "tables/public.users/columns/org_id") in found
    assert not [path for _, _, path in found if path.endswith("/position")]


@pytest.mark.parametrize(
    ("column", "attribute", "value", "before"),
    [
        ("email", "type", "text", "character varying(255)"),
        ("name", "nullable", False, True),
        ("name", "default", None, "''::text"),
        ("org_id", "identity", "BY DEFAULT", None),
    ],
)
def test_diff_finds_a_changed_column_attribute(
    column: str, attribute: str, value: Any, before: Any
) -> None:
    (difference,) = changed(_set([*U, "columns", column, attribute], value))
    assert summary([difference]) == [
        ("CHANGED", "COLUMN", f"tables/public.users/columns/{column}/{attribute}")
    ]
    assert (difference.attribute, difference.before, difference.after) == (attribute, before, value)


def test_diff_finds_a_moved_column() -> None:
    def swap(d: Definition) -> None:
        users(d)["columns"]["email"]["position"] = 4
        users(d)["columns"]["name"]["position"] = 3

    assert summary(changed(swap)) == [
        ("CHANGED", "COLUMN", "tables/public.users/columns/email/position"),
        ("CHANGED", "COLUMN", "tables/public.users/columns/name/position"),
    ]


def test_diff_finds_a_removed_primary_key() -> None:
    assert summary(changed(_set([*U, "primary_key"], None))) == [
        ("REMOVED", "PRIMARY_KEY", "tables/public.users/primary_key")
    ]


def test_diff_finds_an_added_primary_key() -> None:
    def add(d: Definition) -> None:
        users(d)["primary_key"] = None

    target = sample()
    base = sample()
    add(base)
    assert summary(diff(base, target)) == [
        ("ADDED", "PRIMARY_KEY", "tables/public.users/primary_key")
    ]


def test_diff_finds_changed_primary_key_columns() -> None:
    found = changed(_set([*U, "primary_key", "columns"], ["id", "org_id"]))
    assert summary(found) == [("CHANGED", "PRIMARY_KEY", "tables/public.users/primary_key/columns")]


def test_diff_finds_an_added_unique_constraint() -> None:
    def add(d: Definition) -> None:
        users(d)["unique_constraints"].append({"name": "users_email_key", "columns": ["email"]})

    assert summary(changed(add)) == [
        ("ADDED", "UNIQUE_CONSTRAINT", "tables/public.users/unique_constraints/users_email_key")
    ]


def test_diff_finds_a_removed_unique_constraint() -> None:
    def remove(d: Definition) -> None:
        users(d)["unique_constraints"].pop(1)

    assert summary(changed(remove)) == [
        ("REMOVED", "UNIQUE_CONSTRAINT", "tables/public.users/unique_constraints/users_name_key")
    ]


def test_diff_reports_a_renamed_constraint_as_a_name_change() -> None:
    (difference,) = changed(_set([*U, "unique_constraints", 1, "name"], "users_name_uq"))
    assert summary([difference]) == [
        (
            "CHANGED",
            "UNIQUE_CONSTRAINT",
            "tables/public.users/unique_constraints/users_name_uq/name",
        )
    ]
    assert (difference.before, difference.after) == ("users_name_key", "users_name_uq")


def test_diff_finds_a_changed_foreign_key_action() -> None:
    (difference,) = changed(_set([*U, "foreign_keys", 0, "on_delete"], "SET NULL"))
    assert summary([difference]) == [
        ("CHANGED", "FOREIGN_KEY", "tables/public.users/foreign_keys/users_org_id_fkey/on_delete")
    ]
    assert (difference.before, difference.after) == ("CASCADE", "SET NULL")


def test_diff_finds_a_removed_foreign_key() -> None:
    def remove(d: Definition) -> None:
        users(d)["foreign_keys"].clear()

    assert summary(changed(remove)) == [
        ("REMOVED", "FOREIGN_KEY", "tables/public.users/foreign_keys/users_org_id_fkey")
    ]


def test_diff_finds_an_added_index() -> None:
    def add(d: Definition) -> None:
        users(d)["indexes"].append({"name": "users_org_idx", "keys": ["org_id"], "method": "hash"})

    (difference,) = changed(add)
    assert summary([difference]) == [
        ("ADDED", "INDEX", "tables/public.users/indexes/users_org_idx")
    ]
    assert difference.after["method"] == "hash"


def test_diff_finds_a_removed_index() -> None:
    def remove(d: Definition) -> None:
        users(d)["indexes"].pop(0)

    assert summary(changed(remove)) == [
        ("REMOVED", "INDEX", "tables/public.users/indexes/users_lower_email_idx")
    ]


@pytest.mark.parametrize(
    ("attribute", "value"),
    [
        ("unique", True),
        ("predicate", None),
        ("method", "gin"),
        ("keys", [{"expression": "upper((email)::text)"}]),
    ],
)
def test_diff_finds_a_changed_index_attribute(attribute: str, value: Any) -> None:
    found = changed(_set([*U, "indexes", 0, attribute], value))
    assert summary(found) == [
        ("CHANGED", "INDEX", f"tables/public.users/indexes/users_lower_email_idx/{attribute}")
    ]


def test_diff_escapes_slashes_in_names() -> None:
    def add(d: Definition) -> None:
        users(d)["columns"]["a/b~c"] = {"position": 9, "type": "text"}

    (difference,) = changed(add)
    assert difference.path == "tables/public.users/columns/a~1b~0c"
    assert (difference.table, difference.object_name) == ("public.users", "a/b~c")


def test_diff_is_ordered_by_path() -> None:
    def several(d: Definition) -> None:
        users(d)["indexes"].clear()
        users(d)["columns"]["name"]["nullable"] = False
        d["tables"]["public.orgs"]["columns"]["slug"]["type"] = "citext"

    paths = [d.path for d in changed(several)]
    assert paths == sorted(paths) and len(paths) == 4


def test_diff_kinds_and_object_types_match_the_proto_enums() -> None:
    assert {k.value for k in DifferenceKind} == {"ADDED", "REMOVED", "CHANGED"}
    assert {t.value for t in SchemaObjectType} == {
        "TABLE",
        "COLUMN",
        "PRIMARY_KEY",
        "UNIQUE_CONSTRAINT",
        "FOREIGN_KEY",
        "INDEX",
    }
