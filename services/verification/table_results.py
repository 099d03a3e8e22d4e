"""The shape both per-table checks (ROW_COUNT, CHECKSUM) report: one check per table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Protocol, TypeVar


class TableCheck(Protocol):
    """One table's outcome."""

    @property
    def matched(self) -> bool:
        """Whether source and target agree on this table."""
        ...

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        ...


CheckT = TypeVar("CheckT", bound=TableCheck)


@dataclass(frozen=True)
class PerTableResult(Generic[CheckT]):
    """A verification outcome made of one check per table; score = share that matched."""

    kind: ClassVar[str]
    tables: tuple[CheckT, ...]

    @property
    def checks_total(self) -> int:
        """Number of checks (tables)."""
        return len(self.tables)

    @property
    def checks_passed(self) -> int:
        """Number of tables that matched."""
        return sum(1 for table in self.tables if table.matched)

    @property
    def score(self) -> float:
        """Share of matching tables; 1.0 when there was nothing to compare."""
        return self.checks_passed / self.checks_total if self.tables else 1.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (the verification's result)."""
        return {
            "type": self.kind,
            "checks_total": self.checks_total,
            "checks_passed": self.checks_passed,
            "score": self.score,
            "tables": [table.to_dict() for table in self.tables],
        }
