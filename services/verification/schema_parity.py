"""SCHEMA_PARITY: scoring the differences between the captured source and target schemas.

The migration service captures both schemas and diffs them (`DiffSchemas`); this module counts
the comparable objects of the two definitions (docs/schema-definition.md) and how many of them
no difference touches. Pure: no I/O.

Across engines (a MySQL source and a PostgreSQL target,
docs/schema-definition.md#differences-across-engines) the source's tables count under the
target's names (`shop.orders` is `public.orders`), and a source constraint or index counts
only when the diff found no twin for it: the engines name them differently, and the target's
twin is the one counted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from services.verification.domain import VerificationType

# How many schema differences a SCHEMA_PARITY result lists before it truncates.
MAX_REPORTED_DIFFERENCES = 1000

_NAMED_LISTS = ("unique_constraints", "foreign_keys", "indexes")
_NAMED_SEGMENTS = [[kind] for kind in _NAMED_LISTS]


def path_segment(name: str) -> str:
    """A name inside a difference path (JSON Pointer escaping: `~` → `~0`, `/` → `~1`)."""
    return name.replace("~", "~0").replace("/", "~1")


def schema_items(definition: Mapping[str, Any], tables: Iterable[str] | None = None) -> set[str]:
    """The comparable objects of a schema definition, as difference paths.

    Tables, columns, primary keys, unique constraints, foreign keys and indexes: each is one
    item. With `tables`, only those tables' objects count.
    """
    wanted = set(tables) if tables else None
    items: set[str] = set()
    raw_tables = definition.get("tables")
    if not isinstance(raw_tables, Mapping):
        return items
    for table_name, table in raw_tables.items():
        if wanted is not None and table_name not in wanted:
            continue
        base = f"tables/{path_segment(table_name)}"
        items.add(base)
        if not isinstance(table, Mapping):
            continue
        columns = table.get("columns")
        if isinstance(columns, Mapping):
            items.update(f"{base}/columns/{path_segment(c)}" for c in columns)
        if table.get("primary_key"):
            items.add(f"{base}/primary_key")
        for kind in _NAMED_LISTS:
            entries = table.get(kind)
            if isinstance(entries, list):
                items.update(
                    f"{base}/{kind}/{path_segment(entry['name'])}"
                    for entry in entries
                    if isinstance(entry, Mapping) and isinstance(entry.get("name"), str)
                )
    return items


@dataclass(frozen=True)
class SchemaDifference:
    """One difference as DiffSchemas reports it (enum names without their prefixes)."""

    kind: str  # ADDED, REMOVED, CHANGED
    object_type: str
    path: str
    table: str
    object_name: str = ""
    attribute: str = ""
    before: Any = None
    after: Any = None
    reason: str = ""

    def differing_items(self) -> list[str]:
        """The item paths this difference makes unmatched."""
        if self.kind != "CHANGED":
            return [self.path]
        owner = self.path.rsplit("/", 1)[0]
        found = [owner]
        if self.attribute == "name" and isinstance(self.before, str):
            # A rename: the object under its old name is gone from the target.
            found.append(f"{owner.rsplit('/', 1)[0]}/{path_segment(self.before)}")
        return found

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form for the result."""
        out: dict[str, Any] = {
            "kind": self.kind,
            "object_type": self.object_type,
            "path": self.path,
            "table": self.table,
        }
        if self.object_name:
            out["object_name"] = self.object_name
        if self.attribute:
            out["attribute"] = self.attribute
        if self.kind != "ADDED":
            out["before"] = self.before
        if self.kind != "REMOVED":
            out["after"] = self.after
        if self.reason:
            out["reason"] = self.reason
        return out


@dataclass(frozen=True)
class SchemaRef:
    """A stored schema snapshot of the migration service: its name and fingerprint."""

    name: str
    fingerprint: str
    definition: Mapping[str, Any] = field(default_factory=dict)


def schema_parity(
    source: SchemaRef,
    target: SchemaRef,
    differences: Sequence[SchemaDifference],
    tables: Sequence[str] = (),
) -> dict[str, Any]:
    """The SCHEMA_PARITY result: score = matched objects / all objects of either side.

    An object (table, column, key, constraint, index) matches when it exists on both sides and
    no difference touches it or an object it belongs to (a removed table's columns do not match).
    """
    wanted = set(tables)
    relevant = [d for d in differences if not wanted or d.table in wanted]
    if across_engines(source.definition, target.definition):
        renamed = _renamed_tables(source.definition, target.definition)
        removed = {d.path for d in relevant if d.kind == "REMOVED"}
        items = {
            item
            for item in schema_items(renamed, wanted)
            if item.split("/")[2:3] not in _NAMED_SEGMENTS or item in removed
        }
    else:
        items = schema_items(source.definition, wanted)
    items |= schema_items(target.definition, wanted)
    differing = {item for d in relevant for item in d.differing_items()}
    unmatched = {
        item
        for item in items
        if item in differing or any(item.startswith(f"{d}/") for d in differing)
    }
    total = len(items)
    passed = total - len(unmatched)
    score = passed / total if total else 1.0
    listed = relevant[:MAX_REPORTED_DIFFERENCES]
    return {
        "type": VerificationType.SCHEMA_PARITY.value,
        "checks_total": total,
        "checks_passed": passed,
        "score": score,
        "source_schema": source.name,
        "target_schema": target.name,
        "source_fingerprint": source.fingerprint,
        "target_fingerprint": target.fingerprint,
        "tables": sorted(wanted),
        "differences": [d.to_dict() for d in listed],
        "differences_total": len(relevant),
        "truncated": len(relevant) > len(listed),
    }


def tables_of(definition: Mapping[str, Any]) -> list[str]:
    """The `schema.table` names of a schema definition."""
    raw = definition.get("tables")
    return sorted(raw) if isinstance(raw, Mapping) else []


def engine_of(definition: Mapping[str, Any]) -> str:
    """The engine a captured definition records (PostgreSQL when it records none)."""
    engine = definition.get("engine")
    return engine if isinstance(engine, str) and engine else "postgresql"


def across_engines(source: Mapping[str, Any], target: Mapping[str, Any]) -> bool:
    """Whether the two definitions are of different engines."""
    return engine_of(source) != engine_of(target)


def parity_tables(source: Mapping[str, Any], target: Mapping[str, Any]) -> set[str]:
    """Every table SCHEMA_PARITY compares, named as the target names them."""
    if across_engines(source, target):
        source = _renamed_tables(source, target)
    return set(tables_of(source)) | set(tables_of(target))


def _renamed_tables(source: Mapping[str, Any], target: Mapping[str, Any]) -> dict[str, Any]:
    """`source` with its tables in the target's namespace (as the diff across engines names them):
    `public`, or the target's only namespace when it has no `public` tables."""
    namespaces = sorted({name.partition(".")[0] for name in tables_of(target)})
    namespace = "public" if "public" in namespaces or not namespaces else namespaces[0]
    raw = source.get("tables")
    tables = raw if isinstance(raw, Mapping) else {}
    return {
        **source,
        "tables": {f"{namespace}.{name.partition('.')[2]}": t for name, t in tables.items()},
    }
