"""Sensei's own catalog of migration patterns, shipped with the service as data.

`starter.json` holds the starter catalog: MySQL → PostgreSQL and Oracle → PostgreSQL type
mappings, zero-downtime schema changes, bulk loads, sequences and identities, character
sets and time zones, and verification practice. Each entry has a `fingerprint` (unique,
`starter/…`), a `type`, the `text` that is embedded and the `metadata` stored with it.
`python -m services.pattern.load_catalog` writes it through UpsertPattern (idempotent).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STARTER = Path(__file__).with_name("starter.json")


@dataclass(frozen=True)
class CatalogPattern:
    """One pattern of a catalog, as UpsertPattern takes it."""

    fingerprint: str
    type: str
    text: str
    metadata: Mapping[str, Any]


def load(path: Path = STARTER) -> list[CatalogPattern]:
    """The patterns of a catalog file; ValueError when it is malformed or repeats a
    fingerprint."""
    document = json.loads(path.read_text(encoding="utf-8"))
    patterns = [
        CatalogPattern(
            fingerprint=str(entry["fingerprint"]),
            type=str(entry["type"]),
            text=str(entry["text"]),
            metadata=dict(entry.get("metadata", {})),
        )
        for entry in document["patterns"]
    ]
    seen: set[str] = set()
    for pattern in patterns:
        if pattern.fingerprint in seen:
            raise ValueError(f"{path.name}: fingerprint {pattern.fingerprint!r} appears twice")
        seen.add(pattern.fingerprint)
    return patterns
