"""Differences between a MySQL source schema and a PostgreSQL target schema.

A faithful translation (docs/schema-definition.md#mysql-to-postgresql-type-map) shows none;
every real mismatch names its table, column or constraint and says why (`reason`):

- tables are matched by name without their namespace: the MySQL database ``shop.orders``
  is the target's ``public.orders`` (or the only namespace the target has); paths and
  `table` use the target's name;
- a column's type differs when the target's cannot hold every source value
  (type_map.cannot_hold); nullability, identity (auto_increment) and generation are
  compared, defaults are not (their expressions are written in different dialects);
- constraint and index names are not compared: the engines fix some of them (MySQL's
  primary key is always ``PRIMARY``). Primary keys compare columns; unique constraints,
  foreign keys and indexes are matched by their columns (a unique index counts as a unique
  constraint); the index InnoDB makes for a foreign key needs no twin on the target.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.migration.schema_canonical import canonical_definition
from services.migration.schema_differences import (
    DifferenceKind,
    SchemaDifference,
    SchemaObjectType,
)
from services.migration.schema_model import path_segment, split_table_name
from services.migration.type_map import cannot_hold

_ACTIONS_ALIKE = {"RESTRICT": "NO ACTION"}  # InnoDB checks both immediately


def diff_across_engines(base: Any, target: Any) -> list[SchemaDifference]:
    """Every difference between a MySQL `base` and a PostgreSQL `target`, ordered by path."""
    a = canonical_definition(base, field="base")["tables"]
    b = canonical_definition(target, field="target")["tables"]
    namespaces = sorted({split_table_name(name)[0] for name in b})
    namespace = "public" if "public" in namespaces or not namespaces else namespaces[0]
    targets = {split_table_name(n)[1]: n for n in b if split_table_name(n)[0] == namespace}
    sources = {split_table_name(n)[1]: n for n in a}
    found: list[SchemaDifference] = []
    for bare in sorted(sources.keys() | targets.keys()):
        name = targets.get(bare, f"{namespace}.{bare}")
        path = f"tables/{path_segment(name)}"
        if bare not in targets:
            found.append(
                _removed(SchemaObjectType.TABLE, path, name, "", a[sources[bare]], "table")
            )
        elif bare not in sources:
            found.append(_added(SchemaObjectType.TABLE, path, name, "", b[name], "table"))
        else:
            found += _diff_table(name, path, a[sources[bare]], b[name])
    return sorted(found, key=lambda d: (d.path, d.kind))


def _removed(  # noqa: PLR0917  # the fields of one SchemaDifference
    kind: SchemaObjectType, path: str, table: str, name: str, item: Any, what: str
) -> SchemaDifference:
    return SchemaDifference(
        DifferenceKind.REMOVED,
        kind,
        path,
        table,
        name,
        before=item,
        reason=f"{what} of the source is missing in the target",
    )


def _added(  # noqa: PLR0917  # the fields of one SchemaDifference
    kind: SchemaObjectType, path: str, table: str, name: str, item: Any, what: str
) -> SchemaDifference:
    return SchemaDifference(
        DifferenceKind.ADDED,
        kind,
        path,
        table,
        name,
        after=item,
        reason=f"{what} of the target is not in the source",
    )


def _changed(  # noqa: PLR0917  # the fields of one SchemaDifference
    kind: SchemaObjectType,
    path: str,
    table: str,
    name: str,
    attribute: str,
    before: Any,
    after: Any,
    reason: str,
) -> SchemaDifference:
    return SchemaDifference(
        DifferenceKind.CHANGED,
        kind,
        f"{path}/{attribute}",
        table,
        name,
        attribute,
        before,
        after,
        reason,
    )


def _diff_table(
    table: str, path: str, a: Mapping[str, Any], b: Mapping[str, Any]
) -> list[SchemaDifference]:
    found = _diff_columns(table, path, a["columns"], b["columns"])
    pk_path = f"{path}/primary_key"
    pk_a, pk_b = a["primary_key"], b["primary_key"]
    if pk_a is not None and pk_b is None:
        found.append(
            _removed(SchemaObjectType.PRIMARY_KEY, pk_path, table, "", pk_a, "primary key")
        )
    elif pk_a is None and pk_b is not None:
        found.append(_added(SchemaObjectType.PRIMARY_KEY, pk_path, table, "", pk_b, "primary key"))
    elif pk_a is not None and pk_b is not None and pk_a["columns"] != pk_b["columns"]:
        found.append(
            _changed(
                SchemaObjectType.PRIMARY_KEY,
                pk_path,
                table,
                "",
                "columns",
                pk_a["columns"],
                pk_b["columns"],
                "the primary key has other columns",
            )
        )
    found += _diff_uniques(table, path, a, b)
    found += _diff_foreign_keys(table, path, a, b)
    found += _diff_indexes(table, path, a, b)
    return found


def _diff_columns(
    table: str, path: str, a: Mapping[str, Any], b: Mapping[str, Any]
) -> list[SchemaDifference]:
    found: list[SchemaDifference] = []
    common = [name for name in a if name in b]
    rank_a = {n: i for i, n in enumerate(sorted(common, key=lambda n: a[n]["position"]))}
    rank_b = {n: i for i, n in enumerate(sorted(common, key=lambda n: b[n]["position"]))}
    kind = SchemaObjectType.COLUMN
    for name in sorted(a.keys() | b.keys()):
        column_path = f"{path}/columns/{path_segment(name)}"
        if name not in b:
            found.append(_removed(kind, column_path, table, name, a[name], "column"))
            continue
        if name not in a:
            found.append(_added(kind, column_path, table, name, b[name], "column"))
            continue
        source, target = a[name], b[name]
        reason = cannot_hold(source["type"], target["type"])
        if reason is not None:
            found.append(
                _changed(
                    kind, column_path, table, name, "type", source["type"], target["type"], reason
                )
            )
        if source["nullable"] != target["nullable"]:
            why = (
                "the target refuses NULL, the source allows it"
                if source["nullable"]
                else ("the target allows NULL, the source refuses it")
            )
            found.append(
                _changed(
                    kind,
                    column_path,
                    table,
                    name,
                    "nullable",
                    source["nullable"],
                    target["nullable"],
                    why,
                )
            )
        target_sequence = target["identity"] is not None or "nextval(" in (target["default"] or "")
        if (source["identity"] is not None) != target_sequence:
            found.append(
                _changed(
                    kind,
                    column_path,
                    table,
                    name,
                    "identity",
                    source["identity"],
                    target["identity"],
                    "auto_increment on one side only (identity or a sequence default)",
                )
            )
        if (source["generated"] is None) != (target["generated"] is None):
            found.append(
                _changed(
                    kind,
                    column_path,
                    table,
                    name,
                    "generated",
                    source["generated"],
                    target["generated"],
                    "a generated column on one side only",
                )
            )
        if rank_a[name] != rank_b[name]:
            found.append(
                _changed(
                    kind,
                    column_path,
                    table,
                    name,
                    "position",
                    source["position"],
                    target["position"],
                    "the columns are in another order",
                )
            )
    return found


def _diff_uniques(
    table: str, path: str, a: Mapping[str, Any], b: Mapping[str, Any]
) -> list[SchemaDifference]:
    kind = SchemaObjectType.UNIQUE_CONSTRAINT
    ours = {tuple(u["columns"]): u for u in a["unique_constraints"]}
    theirs = {tuple(u["columns"]): u for u in b["unique_constraints"]}
    unique_indexes = {
        tuple(k["column"] for k in i["keys"]): i
        for i in b["indexes"]
        if i["unique"] and i["predicate"] is None and all(k["column"] for k in i["keys"])
    }
    found = [
        _removed(
            kind,
            f"{path}/unique_constraints/{path_segment(u['name'])}",
            table,
            u["name"],
            u,
            "unique constraint",
        )
        for columns, u in ours.items()
        if columns not in theirs and columns not in unique_indexes
    ]
    found += [
        _added(
            kind,
            f"{path}/unique_constraints/{path_segment(u['name'])}",
            table,
            u["name"],
            u,
            "unique constraint",
        )
        for columns, u in theirs.items()
        if columns not in ours
    ]
    return found


def _fk_signature(fk: Mapping[str, Any]) -> tuple[Any, ...]:
    return (
        tuple(fk["columns"]),
        split_table_name(fk["referenced_table"])[1],
        tuple(fk["referenced_columns"]),
    )


def _diff_foreign_keys(
    table: str, path: str, a: Mapping[str, Any], b: Mapping[str, Any]
) -> list[SchemaDifference]:
    kind = SchemaObjectType.FOREIGN_KEY
    ours = {_fk_signature(f): f for f in a["foreign_keys"]}
    theirs = {_fk_signature(f): f for f in b["foreign_keys"]}
    found: list[SchemaDifference] = []
    for signature, fk in ours.items():
        fk_path = f"{path}/foreign_keys/{path_segment(fk['name'])}"
        other = theirs.get(signature)
        if other is None:
            found.append(_removed(kind, fk_path, table, fk["name"], fk, "foreign key"))
            continue
        for action in ("on_delete", "on_update"):
            mine, yours = fk[action], other[action]
            if _ACTIONS_ALIKE.get(mine, mine) != _ACTIONS_ALIKE.get(yours, yours):
                found.append(
                    _changed(
                        kind,
                        fk_path,
                        table,
                        fk["name"],
                        action,
                        mine,
                        yours,
                        f"{action.replace('_', ' ').upper()} differs",
                    )
                )
    found += [
        _added(
            kind,
            f"{path}/foreign_keys/{path_segment(f['name'])}",
            table,
            f["name"],
            f,
            "foreign key",
        )
        for signature, f in theirs.items()
        if signature not in ours
    ]
    return found


def _index_signature(index: Mapping[str, Any]) -> tuple[Any, ...]:
    keys = tuple((k["column"], k["expression"], k["descending"]) for k in index["keys"])
    return keys, index["unique"]


def _diff_indexes(
    table: str, path: str, a: Mapping[str, Any], b: Mapping[str, Any]
) -> list[SchemaDifference]:
    kind = SchemaObjectType.INDEX
    foreign_key_names = {f["name"] for f in a["foreign_keys"]}
    ours = {_index_signature(i): i for i in a["indexes"]}
    theirs = {_index_signature(i): i for i in b["indexes"]}
    found = [
        _removed(kind, f"{path}/indexes/{path_segment(i['name'])}", table, i["name"], i, "index")
        for signature, i in ours.items()
        if signature not in theirs and i["name"] not in foreign_key_names
    ]
    found += [
        _added(kind, f"{path}/indexes/{path_segment(i['name'])}", table, i["name"], i, "index")
        for signature, i in theirs.items()
        if signature not in ours
    ]
    return found
