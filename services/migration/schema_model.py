"""The JSON form of a database schema definition: validation, canonical form, fingerprint.

A definition (docs/schema-definition.md has the full reference) is an object::

    {"version": 1,
     "tables": {
       "public.users": {                                   # schema-qualified table name
         "columns": {                                      # keyed by column name
           "id":    {"position": 1, "type": "bigint", "nullable": false, "default": null,
                     "identity": "ALWAYS", "generated": null},
           "email": {"position": 2, "type": "text", "nullable": false,
                     "default": "''::text"}},
         "primary_key": {"name": "users_pkey", "columns": ["id"]},          # or null
         "unique_constraints": [{"name": "users_email_key", "columns": ["email"]}],
         "foreign_keys": [{"name": "users_org_fk", "columns": ["org_id"],
                           "referenced_table": "public.orgs", "referenced_columns": ["id"],
                           "on_delete": "CASCADE", "on_update": "NO ACTION"}],
         "indexes": [{"name": "users_lower_email_idx",
                      "keys": [{"expression": "lower(email)", "descending": false,
                                "nulls_first": false}],
                      "include": [], "unique": false, "method": "btree",
                      "predicate": "(email IS NOT NULL)"}]}}}

Column attributes: ``position`` (required, integer >= 1, unique in the table), ``type``
(required; PostgreSQL ``format_type`` spelling, common aliases such as ``int4``,
``varchar(20)`` or ``timestamptz`` are normalized), ``nullable`` (default true), ``default``
(expression text or null), ``identity`` (null, ``ALWAYS`` or ``BY DEFAULT``), ``generated``
(null or ``{"expression": ..., "stored": true}``). Every constraint and index has a ``name``.
Index ``keys`` are columns (``{"column": "email"}`` or just ``"email"``) or expressions
(``{"expression": "lower(email)"}``) with ``descending`` (default false) and ``nulls_first``
(default: same as ``descending``, PostgreSQL's default). Referential actions are ``NO ACTION``
(default), ``RESTRICT``, ``CASCADE``, ``SET NULL``, ``SET DEFAULT``. Unknown keys are errors.
Indexes that back a primary key or unique constraint are not listed as indexes.

The canonical form fills every default, renumbers column positions densely (1..n in position
order), and sorts constraints and indexes by name; column lists inside constraints and index
keys keep their order (it is meaningful). The fingerprint is the hex SHA-256 of the RFC 8785
canonical JSON of the canonical form, so it does not depend on key or constraint order.

Paths (in violations and differences) are slash-separated, e.g.
``tables/public.users/columns/email/nullable``; ``~`` and ``/`` inside a name are written
``~0`` and ``~1`` (as in JSON Pointer).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from typing import Any

import rfc8785

from services.migration.domain import InvalidInput
from shared.errors import FieldViolation

SCHEMA_FORMAT_VERSION = 1
REFERENTIAL_ACTIONS = frozenset({"NO ACTION", "RESTRICT", "CASCADE", "SET NULL", "SET DEFAULT"})
IDENTITY_KINDS = frozenset({"ALWAYS", "BY DEFAULT"})

_TOP_KEYS = frozenset({"version", "tables"})
_TABLE_KEYS = frozenset({"columns", "primary_key", "unique_constraints", "foreign_keys", "indexes"})
_COLUMN_KEYS = frozenset({"position", "type", "nullable", "default", "identity", "generated"})
_GENERATED_KEYS = frozenset({"expression", "stored"})
_PRIMARY_KEY_KEYS = frozenset({"name", "columns"})
_UNIQUE_KEYS = frozenset({"name", "columns"})
_FOREIGN_KEY_KEYS = frozenset(
    {"name", "columns", "referenced_table", "referenced_columns", "on_delete", "on_update"}
)
_INDEX_KEYS = frozenset({"name", "keys", "include", "unique", "method", "predicate"})
_INDEX_KEY_KEYS = frozenset({"column", "expression", "descending", "nulls_first"})
_METHOD = re.compile(r"^[a-z_][a-z0-9_]*$")


def path_segment(name: str) -> str:
    """``name`` escaped for use as one segment of a slash-separated path."""
    return name.replace("~", "~0").replace("/", "~1")


def split_table_name(qualified: str) -> tuple[str, str]:
    """``("public", "users")`` for ``"public.users"`` (split at the first dot)."""
    schema, _, table = qualified.partition(".")
    return schema, table


def _is_qualified(name: Any) -> bool:
    if not isinstance(name, str):
        return False
    schema, table = split_table_name(name)
    return bool(schema) and bool(table)


def _join(path: str, segment: str) -> str:
    return f"{path}/{segment}" if path else segment


def _flag(value: Any, default: bool) -> bool:
    return default if value is None else bool(value)


def _integer(value: Any) -> int | None:
    # Definitions travel as google.protobuf.Struct, where every number is a double.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and (not math.isfinite(value) or not value.is_integer()):
        return None
    return int(value)


# ---------------------------------------------------------------------------------------------
# Type spelling

_TYPE_ALIASES = {
    "int": "integer",
    "int4": "integer",
    "int2": "smallint",
    "int8": "bigint",
    "float8": "double precision",
    "float4": "real",
    "bool": "boolean",
    "varchar": "character varying",
    "varbit": "bit varying",
    "decimal": "numeric",
}
_ARRAY_SUFFIX = re.compile(r"(\s*\[\d*\])+$")
_TIME_ZONE = re.compile(r"^(?P<base>timestamp|time)(?: (?P<zone>with|without) time zone)?$")


def normalize_type(spelling: str) -> str:
    """The ``format_type`` spelling of a PostgreSQL type written in a common alias form."""
    text = " ".join(spelling.split())
    if '"' in text:
        return text  # a quoted (case-sensitive) user type: leave it exactly as written
    core = text.lower()
    array_match = _ARRAY_SUFFIX.search(core)
    array = "[]" if array_match else ""
    if array_match:
        core = core[: array_match.start()]
    mod = ""
    if "(" in core:
        head, _, tail = core.partition("(")
        inner, _, rest = tail.partition(")")
        mod = f"({inner.replace(' ', '')})"
        core = f"{head} {rest}"
    base = " ".join(core.split())
    zoned = {"timestamptz": "timestamp with time zone", "timetz": "time with time zone"}
    base = zoned.get(base, base)
    time_match = _TIME_ZONE.match(base)
    if time_match is not None:
        zone = time_match["zone"] or "without"
        return f"{time_match['base']}{mod} {zone} time zone{array}"
    return f"{_TYPE_ALIASES.get(base, base)}{mod}{array}"


# ---------------------------------------------------------------------------------------------
# Validation


class _Checker:
    """Collects every violation of one definition, each with its path."""

    def __init__(self) -> None:
        self.violations: list[FieldViolation] = []

    def add(self, path: str, description: str) -> None:
        self.violations.append(FieldViolation(path, description))

    def object(self, value: Any, path: str, allowed: frozenset[str]) -> bool:
        if not isinstance(value, Mapping):
            self.add(path, "must be an object")
            return False
        for key in sorted(set(value) - allowed):
            self.add(_join(path, path_segment(str(key))), "unknown key")
        return True

    def text(self, value: Any, path: str, *, required: bool = True) -> bool:
        if value is None and not required:
            return True
        if not isinstance(value, str) or not value.strip():
            self.add(path, "must be a non-empty string")
            return False
        return True

    def boolean(self, value: Any, path: str) -> None:
        if value is not None and not isinstance(value, bool):
            self.add(path, "must be true or false")

    def column_list(
        self, value: Any, path: str, columns: Mapping[str, Any] | None, *, empty_ok: bool = False
    ) -> None:
        if not isinstance(value, list) or (not value and not empty_ok):
            self.add(
                path,
                "must be a non-empty list of column names"
                if not empty_ok
                else "must be a list of column names",
            )
            return
        seen: set[str] = set()
        for i, name in enumerate(value):
            if not isinstance(name, str) or not name:
                self.add(f"{path}/{i}", "must be a column name")
            elif name in seen:
                self.add(f"{path}/{i}", f"column {name!r} is listed twice")
            elif columns is not None and name not in columns:
                self.add(f"{path}/{i}", f"no column {name!r} in the table")
            if isinstance(name, str):
                seen.add(name)

    def name(self, item: Mapping[str, Any], path: str, names: set[str]) -> None:
        name = item.get("name")
        if self.text(name, f"{path}/name") and isinstance(name, str):
            if name in names:
                self.add(f"{path}/name", f"name {name!r} is used twice in the table")
            names.add(name)

    def definition(self, definition: Any) -> None:
        if not self.object(definition, "", _TOP_KEYS):
            return
        version = definition.get("version", SCHEMA_FORMAT_VERSION)
        if _integer(version) != SCHEMA_FORMAT_VERSION:
            self.add("version", f"must be {SCHEMA_FORMAT_VERSION}")
        tables = definition.get("tables")
        if not isinstance(tables, Mapping):
            self.add("tables", "must be an object keyed by schema-qualified table name")
            return
        for table_name in sorted(tables, key=str):
            self.table(tables, table_name)

    def table(self, tables: Mapping[str, Any], table_name: str) -> None:
        path = f"tables/{path_segment(str(table_name))}"
        if not _is_qualified(table_name):
            self.add(path, "table names are schema-qualified: schema.table")
        table = tables[table_name]
        if not self.object(table, path, _TABLE_KEYS):
            return
        columns = table.get("columns")
        if not isinstance(columns, Mapping):
            self.add(f"{path}/columns", "must be an object keyed by column name")
            columns = None
        else:
            positions: dict[int, str] = {}
            for column_name in sorted(columns, key=str):
                self.column(
                    columns[column_name],
                    f"{path}/columns/{path_segment(column_name)}",
                    positions,
                    column_name,
                )
        names: set[str] = set()
        primary_key = table.get("primary_key")
        if primary_key is not None and self.object(
            primary_key, f"{path}/primary_key", _PRIMARY_KEY_KEYS
        ):
            self.name(primary_key, f"{path}/primary_key", names)
            self.column_list(primary_key.get("columns"), f"{path}/primary_key/columns", columns)
        for kind, allowed in (
            ("unique_constraints", _UNIQUE_KEYS),
            ("foreign_keys", _FOREIGN_KEY_KEYS),
            ("indexes", _INDEX_KEYS),
        ):
            items = table.get(kind, [])
            if not isinstance(items, list):
                self.add(f"{path}/{kind}", "must be a list")
                continue
            for i, item in enumerate(items):
                item_path = f"{path}/{kind}/{i}"
                if not self.object(item, item_path, allowed):
                    continue
                self.name(item, item_path, names if kind != "indexes" else set())
                if kind == "unique_constraints":
                    self.column_list(item.get("columns"), f"{item_path}/columns", columns)
                elif kind == "foreign_keys":
                    self.foreign_key(item, item_path, columns, tables)
                else:
                    self.index(item, item_path, columns)
        index_names = [i.get("name") for i in table.get("indexes", []) if isinstance(i, Mapping)]
        for i, index_name in enumerate(index_names):
            if isinstance(index_name, str) and index_name in index_names[:i]:
                self.add(f"{path}/indexes/{i}/name", f"name {index_name!r} is used twice")

    def column(self, column: Any, path: str, positions: dict[int, str], name: str) -> None:
        if not self.object(column, path, _COLUMN_KEYS):
            return
        position = _integer(column.get("position"))
        if position is None or position < 1:
            self.add(f"{path}/position", "must be an integer of at least 1")
        elif position in positions:
            self.add(f"{path}/position", f"position {position} is also {positions[position]!r}")
        else:
            positions[position] = name
        self.text(column.get("type"), f"{path}/type")
        self.boolean(column.get("nullable"), f"{path}/nullable")
        self.text(column.get("default"), f"{path}/default", required=False)
        identity = column.get("identity")
        if identity is not None and (
            not isinstance(identity, str) or identity.upper() not in IDENTITY_KINDS
        ):
            self.add(f"{path}/identity", "must be null, ALWAYS or BY DEFAULT")
        generated = column.get("generated")
        if generated is not None and self.object(generated, f"{path}/generated", _GENERATED_KEYS):
            self.text(generated.get("expression"), f"{path}/generated/expression")
            self.boolean(generated.get("stored"), f"{path}/generated/stored")
        has_default = column.get("default") is not None
        if (identity is not None) + (generated is not None) + has_default > 1:
            self.add(path, "at most one of default, identity and generated may be set")

    def foreign_key(
        self,
        item: Mapping[str, Any],
        path: str,
        columns: Mapping[str, Any] | None,
        tables: Mapping[str, Any],
    ) -> None:
        self.column_list(item.get("columns"), f"{path}/columns", columns)
        referenced = item.get("referenced_table")
        if not _is_qualified(referenced):
            self.add(f"{path}/referenced_table", "must be a schema-qualified table name")
        target = tables.get(referenced) if isinstance(referenced, str) else None
        target_columns = target.get("columns") if isinstance(target, Mapping) else None
        self.column_list(
            item.get("referenced_columns"),
            f"{path}/referenced_columns",
            target_columns if isinstance(target_columns, Mapping) else None,
        )
        if (
            isinstance(item.get("columns"), list)
            and isinstance(item.get("referenced_columns"), list)
            and len(item["columns"]) != len(item["referenced_columns"])
        ):
            self.add(f"{path}/referenced_columns", "must have as many columns as columns")
        for action in ("on_delete", "on_update"):
            value = item.get(action)
            if value is not None and (
                not isinstance(value, str) or value.upper() not in REFERENTIAL_ACTIONS
            ):
                self.add(
                    f"{path}/{action}", f"must be one of {', '.join(sorted(REFERENTIAL_ACTIONS))}"
                )

    def index(self, item: Mapping[str, Any], path: str, columns: Mapping[str, Any] | None) -> None:
        keys = item.get("keys")
        if not isinstance(keys, list) or not keys:
            self.add(f"{path}/keys", "must be a non-empty list of columns or expressions")
        else:
            for i, key in enumerate(keys):
                self.index_key(key, f"{path}/keys/{i}", columns)
        if item.get("include") is not None:
            self.column_list(item["include"], f"{path}/include", columns, empty_ok=True)
        self.boolean(item.get("unique"), f"{path}/unique")
        method = item.get("method")
        if method is not None and (
            not isinstance(method, str) or not _METHOD.match(method.lower())
        ):
            self.add(f"{path}/method", "must be an access method name such as btree")
        self.text(item.get("predicate"), f"{path}/predicate", required=False)

    def index_key(self, key: Any, path: str, columns: Mapping[str, Any] | None) -> None:
        if isinstance(key, str):
            key = {"column": key}
        if not self.object(key, path, _INDEX_KEY_KEYS):
            return
        column, expression = key.get("column"), key.get("expression")
        if (column is None) == (expression is None):
            self.add(path, "must have exactly one of column and expression")
        elif column is not None:
            if (
                self.text(column, f"{path}/column")
                and columns is not None
                and column not in columns
            ):
                self.add(f"{path}/column", f"no column {column!r} in the table")
        else:
            self.text(expression, f"{path}/expression")
        self.boolean(key.get("descending"), f"{path}/descending")
        self.boolean(key.get("nulls_first"), f"{path}/nulls_first")


def definition_violations(definition: Any) -> list[FieldViolation]:
    """Every violation in ``definition``; each ``field`` is its path in the definition."""
    checker = _Checker()
    checker.definition(definition)
    return checker.violations


def require_valid_definition(definition: Any, *, field: str = "schema.definition") -> None:
    """Raise InvalidInput (fields ``{field}.{path}``) if ``definition`` has any violation."""
    violations = definition_violations(definition)
    if violations:
        raise InvalidInput(
            FieldViolation(f"{field}.{v.field}" if v.field else field, v.description)
            for v in violations
        )


# ---------------------------------------------------------------------------------------------
# Canonical form and fingerprint


def _canonical_column(column: Mapping[str, Any], position: int) -> dict[str, Any]:
    generated = column.get("generated")
    identity = column.get("identity")
    return {
        "position": position,
        "type": normalize_type(column["type"]),
        "nullable": _flag(column.get("nullable"), True),
        "default": column.get("default"),
        "identity": identity.upper() if identity is not None else None,
        "generated": None
        if generated is None
        else {
            "expression": generated["expression"],
            "stored": _flag(generated.get("stored"), True),
        },
    }


def _canonical_index_key(key: Any) -> dict[str, Any]:
    if isinstance(key, str):
        key = {"column": key}
    descending = _flag(key.get("descending"), False)
    nulls_first = key.get("nulls_first")
    return {
        "column": key.get("column"),
        "expression": key.get("expression"),
        "descending": descending,
        "nulls_first": _flag(nulls_first, descending),
    }


def _canonical_table(table: Mapping[str, Any]) -> dict[str, Any]:
    columns = table["columns"]
    ordered = sorted(columns, key=lambda name: _integer(columns[name]["position"]) or 0)
    primary_key = table.get("primary_key")
    return {
        "columns": {
            name: _canonical_column(columns[name], i) for i, name in enumerate(ordered, start=1)
        },
        "primary_key": None
        if primary_key is None
        else {"name": primary_key["name"], "columns": list(primary_key["columns"])},
        "unique_constraints": sorted(
            (
                {"name": u["name"], "columns": list(u["columns"])}
                for u in table.get("unique_constraints", [])
            ),
            key=lambda u: u["name"],
        ),
        "foreign_keys": sorted(
            (
                {
                    "name": f["name"],
                    "columns": list(f["columns"]),
                    "referenced_table": f["referenced_table"],
                    "referenced_columns": list(f["referenced_columns"]),
                    "on_delete": (f.get("on_delete") or "NO ACTION").upper(),
                    "on_update": (f.get("on_update") or "NO ACTION").upper(),
                }
                for f in table.get("foreign_keys", [])
            ),
            key=lambda f: f["name"],
        ),
        "indexes": sorted(
            (
                {
                    "name": i["name"],
                    "keys": [_canonical_index_key(k) for k in i["keys"]],
                    "include": list(i.get("include") or []),
                    "unique": _flag(i.get("unique"), False),
                    "method": (i.get("method") or "btree").lower(),
                    "predicate": i.get("predicate"),
                }
                for i in table.get("indexes", [])
            ),
            key=lambda i: i["name"],
        ),
    }


def canonical_definition(definition: Any, *, field: str = "schema.definition") -> dict[str, Any]:
    """The canonical form of a valid ``definition``; raises InvalidInput if it is not valid."""
    require_valid_definition(definition, field=field)
    tables = definition["tables"]
    return {
        "version": SCHEMA_FORMAT_VERSION,
        "tables": {name: _canonical_table(tables[name]) for name in sorted(tables)},
    }


def fingerprint_of(definition: Any) -> str:
    """Hex SHA-256 of the RFC 8785 canonical JSON of the canonical form of ``definition``."""
    return hashlib.sha256(rfc8785.dumps(canonical_definition(definition))).hexdigest()
