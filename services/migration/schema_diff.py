"""Every difference between two schema definitions (see schema_model.py for the JSON form).

Tables, columns, constraints and indexes are matched by name over the canonical forms, so
key and constraint order never shows up as a difference.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import rfc8785

from services.migration.schema_canonical import canonical_definition
from services.migration.schema_diff_engines import diff_across_engines
from services.migration.schema_differences import (
    DifferenceKind,
    SchemaDifference,
    SchemaObjectType,
)
from services.migration.schema_model import path_segment

__all__ = ["DifferenceKind", "SchemaDifference", "SchemaObjectType", "diff"]


_COLUMN_ATTRIBUTES = ("type", "nullable", "default", "identity", "generated")
_NAMED_LISTS = (
    ("unique_constraints", SchemaObjectType.UNIQUE_CONSTRAINT),
    ("foreign_keys", SchemaObjectType.FOREIGN_KEY),
    ("indexes", SchemaObjectType.INDEX),
)


def diff(base: Any, target: Any) -> list[SchemaDifference]:
    """Every difference between two valid definitions, ordered by path.

    Tables, columns, constraints and indexes are matched by name; a constraint or index
    whose only change is its name is reported as a CHANGED ``name``. Column positions are
    compared by the relative order of the columns both tables have, so adding or dropping
    one column does not report every later column as moved.
    """
    if _engine(base) != _engine(target):
        return diff_across_engines(base, target)
    a = canonical_definition(base, field="base")["tables"]
    b = canonical_definition(target, field="target")["tables"]
    found: list[SchemaDifference] = []
    for table in sorted(a.keys() | b.keys()):
        path = f"tables/{path_segment(table)}"
        if table not in b:
            found.append(
                SchemaDifference(
                    DifferenceKind.REMOVED, SchemaObjectType.TABLE, path, table, before=a[table]
                )
            )
        elif table not in a:
            found.append(
                SchemaDifference(
                    DifferenceKind.ADDED, SchemaObjectType.TABLE, path, table, after=b[table]
                )
            )
        else:
            found += _diff_table(table, path, a[table], b[table])
    return sorted(found, key=lambda d: (d.path, d.kind))


def _engine(definition: Any) -> Any:
    return definition.get("engine", "postgresql") if isinstance(definition, Mapping) else None


def _diff_table(
    table: str, path: str, a: Mapping[str, Any], b: Mapping[str, Any]
) -> list[SchemaDifference]:
    found = _diff_columns(table, path, a["columns"], b["columns"])
    pk_path = f"{path}/primary_key"
    pk_a, pk_b = a["primary_key"], b["primary_key"]
    if pk_a is not None and pk_b is None:
        found.append(
            SchemaDifference(
                DifferenceKind.REMOVED, SchemaObjectType.PRIMARY_KEY, pk_path, table, before=pk_a
            )
        )
    elif pk_a is None and pk_b is not None:
        found.append(
            SchemaDifference(
                DifferenceKind.ADDED, SchemaObjectType.PRIMARY_KEY, pk_path, table, after=pk_b
            )
        )
    elif pk_a is not None and pk_b is not None:
        found += _changed_attributes(
            SchemaObjectType.PRIMARY_KEY, pk_path, table=table, object_name="", a=pk_a, b=pk_b
        )
    for kind, object_type in _NAMED_LISTS:
        found += _diff_named(object_type, f"{path}/{kind}", table, a[kind], b[kind])
    return found


def _diff_columns(
    table: str, path: str, a: Mapping[str, Any], b: Mapping[str, Any]
) -> list[SchemaDifference]:
    found: list[SchemaDifference] = []
    common = [name for name in a if name in b]
    rank_a = {n: i for i, n in enumerate(sorted(common, key=lambda n: a[n]["position"]))}
    rank_b = {n: i for i, n in enumerate(sorted(common, key=lambda n: b[n]["position"]))}
    for name in sorted(a.keys() | b.keys()):
        column_path = f"{path}/columns/{path_segment(name)}"
        if name not in b:
            found.append(
                SchemaDifference(
                    DifferenceKind.REMOVED,
                    SchemaObjectType.COLUMN,
                    column_path,
                    table,
                    name,
                    before=a[name],
                )
            )
        elif name not in a:
            found.append(
                SchemaDifference(
                    DifferenceKind.ADDED,
                    SchemaObjectType.COLUMN,
                    column_path,
                    table,
                    name,
                    after=b[name],
                )
            )
        else:
            for attribute in _COLUMN_ATTRIBUTES:
                if a[name][attribute] != b[name][attribute]:
                    found.append(
                        SchemaDifference(
                            DifferenceKind.CHANGED,
                            SchemaObjectType.COLUMN,
                            f"{column_path}/{attribute}",
                            table,
                            name,
                            attribute,
                            a[name][attribute],
                            b[name][attribute],
                        )
                    )
            if rank_a[name] != rank_b[name]:
                found.append(
                    SchemaDifference(
                        DifferenceKind.CHANGED,
                        SchemaObjectType.COLUMN,
                        f"{column_path}/position",
                        table,
                        name,
                        "position",
                        a[name]["position"],
                        b[name]["position"],
                    )
                )
    return found


def _changed_attributes(
    object_type: SchemaObjectType,
    path: str,
    *,
    table: str,
    object_name: str,
    a: Mapping[str, Any],
    b: Mapping[str, Any],
) -> list[SchemaDifference]:
    return [
        SchemaDifference(
            DifferenceKind.CHANGED,
            object_type,
            f"{path}/{attribute}",
            table,
            object_name,
            attribute,
            a[attribute],
            b[attribute],
        )
        for attribute in sorted(a)
        if a[attribute] != b[attribute]
    ]


def _signature(item: Mapping[str, Any]) -> bytes:
    return rfc8785.dumps({k: v for k, v in item.items() if k != "name"})


def _diff_named(
    object_type: SchemaObjectType,
    path: str,
    table: str,
    a_items: list[dict[str, Any]],
    b_items: list[dict[str, Any]],
) -> list[SchemaDifference]:
    a = {item["name"]: item for item in a_items}
    b = {item["name"]: item for item in b_items}
    found: list[SchemaDifference] = []
    for name in sorted(a.keys() & b.keys()):
        found += _changed_attributes(
            object_type,
            f"{path}/{path_segment(name)}",
            table=table,
            object_name=name,
            a=a[name],
            b=b[name],
        )
    removed = {n: a[n] for n in sorted(a.keys() - b.keys())}
    added = {n: b[n] for n in sorted(b.keys() - a.keys())}
    # Same definition under another name: a rename, not a drop and a create.
    for old_name, item in list(removed.items()):
        new_name = next((n for n, i in added.items() if _signature(i) == _signature(item)), None)
        if new_name is not None:
            del removed[old_name], added[new_name]
            found.append(
                SchemaDifference(
                    DifferenceKind.CHANGED,
                    object_type,
                    f"{path}/{path_segment(new_name)}/name",
                    table,
                    new_name,
                    "name",
                    old_name,
                    new_name,
                )
            )
    for name, item in removed.items():
        found.append(
            SchemaDifference(
                DifferenceKind.REMOVED,
                object_type,
                f"{path}/{path_segment(name)}",
                table,
                name,
                before=item,
            )
        )
    for name, item in added.items():
        found.append(
            SchemaDifference(
                DifferenceKind.ADDED,
                object_type,
                f"{path}/{path_segment(name)}",
                table,
                name,
                after=item,
            )
        )
    return found
