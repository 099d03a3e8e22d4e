"""What a difference between two schema definitions is: its kind, object and path.

Both diffs (schema_diff.py between PostgreSQL definitions, schema_diff_engines.py across
engines) report in these terms.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class DifferenceKind(StrEnum):
    """What happened to an object between the base and the target schema."""

    ADDED = "ADDED"
    REMOVED = "REMOVED"
    CHANGED = "CHANGED"


class SchemaObjectType(StrEnum):
    """The kind of object a difference is about."""

    TABLE = "TABLE"
    COLUMN = "COLUMN"
    PRIMARY_KEY = "PRIMARY_KEY"
    UNIQUE_CONSTRAINT = "UNIQUE_CONSTRAINT"
    FOREIGN_KEY = "FOREIGN_KEY"
    INDEX = "INDEX"


@dataclass(frozen=True)
class SchemaDifference:
    """One difference. ``before`` is meaningless for ADDED and ``after`` for REMOVED (the
    servicer leaves them unset); for CHANGED, None stands for a JSON null."""

    kind: DifferenceKind
    object_type: SchemaObjectType
    path: str
    table: str
    object_name: str = ""
    attribute: str = ""
    before: Any = None
    after: Any = None
    # Why, in words: set by the diff across engines (schema_diff_engines.py).
    reason: str = ""
