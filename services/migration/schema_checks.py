"""Validation of a schema definition's JSON form: every violation, each with its path.

The form is described in `schema_model.py` and docs/schema-definition.md; a violation's `field`
is the path of what it is about, e.g. ``tables/public.users/columns/email/type``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from services.migration.schema_model import (
    ENGINES,
    IDENTITY_KINDS,
    REFERENTIAL_ACTIONS,
    SCHEMA_FORMAT_VERSION,
    as_integer,
    path_segment,
    split_table_name,
)
from shared.errors import FieldViolation, InvalidArgument

_TOP_KEYS = frozenset({"version", "engine", "tables"})
# Column keys only a MySQL definition has (docs/schema-definition.md#mysql-and-mariadb).
_MYSQL_COLUMN_KEYS = frozenset({"charset", "collation"})
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


def _is_qualified(name: Any) -> bool:
    if not isinstance(name, str):
        return False
    schema, table = split_table_name(name)
    return bool(schema) and bool(table)


def _join(path: str, segment: str) -> str:
    return f"{path}/{segment}" if path else segment


class _Checker:
    """Collects every violation of one definition, each with its path."""

    def __init__(self) -> None:
        self.violations: list[FieldViolation] = []
        self.engine = "postgresql"

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
        engine = definition.get("engine", "postgresql")
        if engine not in ENGINES:
            self.add("engine", f"must be one of {', '.join(ENGINES)}")
        self.engine = engine if engine in ENGINES else "postgresql"
        version = definition.get("version", SCHEMA_FORMAT_VERSION)
        if as_integer(version) != SCHEMA_FORMAT_VERSION:
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
        mysql = self.engine == "mysql"
        if not self.object(
            column, path, _COLUMN_KEYS | _MYSQL_COLUMN_KEYS if mysql else _COLUMN_KEYS
        ):
            return
        for key in _MYSQL_COLUMN_KEYS if mysql else ():
            self.text(column.get(key), f"{path}/{key}", required=False)
        position = as_integer(column.get("position"))
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
    """Raise InvalidArgument (fields ``{field}.{path}``) if ``definition`` has any violation."""
    violations = definition_violations(definition)
    if violations:
        raise InvalidArgument(
            FieldViolation(f"{field}.{v.field}" if v.field else field, v.description)
            for v in violations
        )
