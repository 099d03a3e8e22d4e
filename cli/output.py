"""How the CLI prints: text tables and fields for people, JSON for scripts, live progress bars.

On a terminal a watch redraws one line with a bar; anywhere else (a pipe, a file, a CI
log) it prints one plain line per change, so logs stay readable and grep-able.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

from google.protobuf import json_format
from google.protobuf.message import Message

BAR_WIDTH = 30
# Past 2**53 a double no longer holds every integer: leave such values as they are.
_EXACT_INTEGERS = 2**53


def plain_numbers(value: Any) -> Any:
    """`value` with every integral float as an int, all the way down (435.0 → 435).

    `google.protobuf.Struct` keeps every number as a double, so a port of 5432 comes back
    as 5432.0; people and scripts expect the integer they wrote.
    """
    if isinstance(value, float) and value.is_integer() and abs(value) <= _EXACT_INTEGERS:
        return int(value)
    if isinstance(value, dict):
        return {key: plain_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain_numbers(item) for item in value]
    return value


def as_json(message: Message) -> dict[str, Any]:
    """A message in the canonical proto3 JSON mapping (lowerCamelCase names, enums by name),
    integral numbers as integers."""
    value: dict[str, Any] = plain_numbers(json_format.MessageToDict(message))
    return value


def shown(value: object) -> str:
    """A value as printed for people: integral floats without `.0`."""
    return str(plain_numbers(value))


def enum_label(full_name: str, prefix: str) -> str:
    """`MIGRATION_STATUS_MIGRATING` → `MIGRATING`."""
    return full_name.removeprefix(prefix)


def count(number: int, singular: str, plural: str = "") -> str:
    """`1 signing key`, `2 signing keys` (`plural` when adding an s is wrong)."""
    return f"{number} {singular if number == 1 else plural or singular + 's'}"


def percent(fraction: float) -> str:
    """0.456 → `45.6%`."""
    return f"{fraction * 100:.1f}%"


class Output:
    """The streams a command writes to, and whether it writes JSON."""

    def __init__(self, stdout: TextIO, stderr: TextIO, *, json_mode: bool) -> None:
        self.stdout = stdout
        self.stderr = stderr
        self.json_mode = json_mode

    @property
    def interactive(self) -> bool:
        """Whether stdout is a terminal (live redraws) rather than a pipe or file."""
        isatty = getattr(self.stdout, "isatty", None)
        return bool(isatty and isatty())

    def line(self, text: str = "") -> None:
        """Prints a line and flushes (watchers and pipes see it at once)."""
        self.stdout.write(text + "\n")
        self.stdout.flush()

    def json(self, value: Any) -> None:
        """Prints one JSON document on one line (integral numbers as integers)."""
        self.line(json.dumps(plain_numbers(value), ensure_ascii=False, sort_keys=False))

    def note(self, text: str) -> None:
        """A remark for people, on stderr (keeps stdout clean for pipes)."""
        self.stderr.write(text + "\n")
        self.stderr.flush()

    def fields(self, pairs: Iterable[tuple[str, object]]) -> None:
        """`key:  value` lines, aligned; empty values left out."""
        kept = [(key, shown(value)) for key, value in pairs if value not in ("", None)]
        width = max((len(key) for key, _ in kept), default=0) + 1
        for key, value in kept:
            self.line(f"{key + ':':<{width}}  {value}")

    def table(self, headers: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
        """A left-aligned text table; `(none)` when there are no rows."""
        cells = [[shown(cell) for cell in row] for row in rows]
        if not cells:
            self.line("(none)")
            return
        widths = [max(len(h), *(len(row[i]) for row in cells)) for i, h in enumerate(headers)]
        for row in [list(headers), *cells]:
            self.line(
                "  ".join(
                    cell.ljust(width) for cell, width in zip(row, widths, strict=True)
                ).rstrip()
            )


class ProgressDisplay:
    """A live progress bar on a terminal; one plain line per change elsewhere."""

    def __init__(self, output: Output) -> None:
        self._output = output
        self._drawn = False
        encoding = (getattr(output.stdout, "encoding", None) or "").lower()
        self._full, self._empty = ("█", "░") if "utf" in encoding else ("#", "-")

    def bar(self, fraction: float) -> str:
        """A text bar of BAR_WIDTH cells for a fraction in [0, 1]."""
        fraction = min(max(fraction, 0.0), 1.0)
        filled = round(fraction * BAR_WIDTH)
        return f"[{self._full * filled}{self._empty * (BAR_WIDTH - filled)}]"

    def update(self, label: str, fraction: float, detail: str, plain: str) -> None:
        """Shows a new state: a redrawn bar line on a terminal, else the `plain` line."""
        if not self._output.interactive:
            self._output.line(plain)
            return
        text = f"{label:<10} {self.bar(fraction)} {detail}"
        self._output.stdout.write("\r\x1b[2K" + text)
        self._output.stdout.flush()
        self._drawn = True

    def finish(self) -> None:
        """Ends the redrawn line, so what follows starts on a fresh one."""
        if self._drawn:
            self._output.stdout.write("\n")
            self._output.stdout.flush()
            self._drawn = False


def when(timestamp: Any) -> str:
    """A `google.protobuf.Timestamp` as `2025-01-31T12:00:01Z`; empty when unset."""
    if not timestamp.seconds and not timestamp.nanos:
        return ""
    moment = timestamp.ToDatetime()
    return str(moment.strftime("%Y-%m-%dT%H:%M:%SZ"))
