"""What the store modules share: row locks, UPDATE SET clauses, nullable ids."""

from __future__ import annotations

import json
from collections.abc import Mapping
from enum import Enum
from typing import Any


class RowLock(Enum):
    """How a read locks the rows it returns, until the transaction ends."""

    NONE = ""
    # Keeps the row from being deleted (children may be inserted meanwhile).
    KEY_SHARE = "FOR KEY SHARE"
    # For updates that keep the key: children may still be inserted meanwhile.
    NO_KEY_UPDATE = "FOR NO KEY UPDATE"
    # For deletes: waits for, and blocks, KEY SHARE holders.
    UPDATE = "FOR UPDATE"


def set_clause(
    values: Mapping[str, Any], allowed: set[str], jsonb: frozenset[str] | set[str] = frozenset()
) -> tuple[str, list[Any]]:
    """`SET` clauses (updated_at and version bumped too) and their arguments."""
    parts, args = ["updated_at = now()", "version = version + 1"], []
    for column, value in values.items():
        if column not in allowed:
            raise ValueError(f"not an updatable column: {column}")
        if column in jsonb:
            args.append(json.dumps(value))
            parts.append(f"{column} = ${len(args)}::jsonb")
        else:
            args.append(value)
            parts.append(f"{column} = ${len(args)}")
    return ", ".join(parts), args


def str_or_none(value: Any) -> str | None:
    """A uuid (or any value) as text; None stays None."""
    return None if value is None else str(value)
