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


def as_json(message: Message) -> dict[str, Any]:
    """A message in the canonical proto3 JSON mapping (lowerCamelCase names, enums by name)."""
    value: dict[str, Any] = json_format.MessageToDict(message)
    return value


def enum_label(full_name: str, prefix: str) -> str:
    """`MIGRATION_STATUS_MIGRATING` → `MIGRATING`."""
    return full_name.removeprefix(prefix)


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
        """Prints one JSON document on one line."""
        self.line(json.dumps(value, ensure_ascii=False, sort_keys=False))

    def note(self, text: str) -> None:
        """A remark for people, on stderr (keeps stdout clean for pipes)."""
        self.stderr.write(text + "\n")
        self.stderr.flush()

    def fields(self, pairs: Iterable[tuple[str, object]]) -> None:
        """`key:  value` lines, aligned; empty values left out."""
        shown = [(key, str(value)) for key, value in pairs if value not in ("", None)]
        width = max((len(key) for key, _ in shown), default=0) + 1
        for key, value in shown:
            self.line(f"{key + ':':<{width}}  {value}")

    def table(self, headers: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
        """A left-aligned text table; `(none)` when there are no rows."""
        cells = [[str(cell) for cell in row] for row in rows]
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
