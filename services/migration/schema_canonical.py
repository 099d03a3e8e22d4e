"""The canonical form of a schema definition and its fingerprint.

The canonical form fills every default, renumbers column positions densely (1..n in position
order), and sorts constraints and indexes by name (`schema_model.py` has the whole form). Only a
valid definition has one: `canonical_definition` checks it first (`schema_checks.py`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import rfc8785

from services.migration.schema_checks import require_valid_definition
from services.migration.schema_model import (
    SCHEMA_FORMAT_VERSION,
    as_integer,
    normalize_mysql_type,
    normalize_type,
)


def _flag(value: Any, default: bool) -> bool:
    return default if value is None else bool(value)


def _canonical_column(column: Mapping[str, Any], position: int, mysql: bool) -> dict[str, Any]:
    generated = column.get("generated")
    identity = column.get("identity")
    extra = {"charset": column.get("charset"), "collation": column.get("collation")}
    return {
        "position": position,
        "type": normalize_mysql_type(column["type"]) if mysql else normalize_type(column["type"]),
        "nullable": _flag(column.get("nullable"), True),
        "default": column.get("default"),
        "identity": identity.upper() if identity is not None else None,
        "generated": None
        if generated is None
        else {
            "expression": generated["expression"],
            "stored": _flag(generated.get("stored"), True),
        },
        **(extra if mysql else {}),
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


def _canonical_table(table: Mapping[str, Any], mysql: bool) -> dict[str, Any]:
    columns = table["columns"]
    ordered = sorted(columns, key=lambda name: as_integer(columns[name]["position"]) or 0)
    primary_key = table.get("primary_key")
    return {
        "columns": {
            name: _canonical_column(columns[name], i, mysql)
            for i, name in enumerate(ordered, start=1)
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
    """The canonical form of a valid ``definition``; raises InvalidArgument if it is not valid."""
    require_valid_definition(definition, field=field)
    tables = definition["tables"]
    mysql = definition.get("engine") == "mysql"
    # PostgreSQL is the default engine and stays implicit, so its fingerprints never change.
    engine = {"engine": "mysql"} if mysql else {}
    return {
        "version": SCHEMA_FORMAT_VERSION,
        **engine,
        "tables": {name: _canonical_table(tables[name], mysql) for name in sorted(tables)},
    }


def fingerprint_of(definition: Any) -> str:
    """Hex SHA-256 of the RFC 8785 canonical JSON of the canonical form of ``definition``."""
    return hashlib.sha256(rfc8785.dumps(canonical_definition(definition))).hexdigest()
