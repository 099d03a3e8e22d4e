"""`--profile`: samples a service process with py-spy while a line is measured.

py-spy attaches from outside (`--nonblocking`: the target is never paused) and writes
collapsed stacks; the summary is where the samples end (self time) and which of our own
functions (services/, shared/) they pass through (inclusive time), in percent of samples.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import sys
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>[^:()]+)(?::\d+)?\)$")
_OURS = ("services/", "shared/")
# Entry points: in (nearly) every sample, they say nothing about where time goes.
_ENTRY = ("<module> ", "main (shared/server.py)", "cli (", "serve (shared/server.py)")


def py_spy() -> str | None:
    """The py-spy executable next to this Python, or on PATH."""
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


async def sample(pid: int, seconds: float, output: Path) -> str:
    """Samples `pid` for `seconds`; returns a one-line summary (or why there is none)."""
    executable = py_spy()
    if executable is None:
        return "py-spy not installed (pip install -e '.[bench]')"
    process = await asyncio.create_subprocess_exec(
        executable,
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(max(1, round(seconds))),
        "--rate",
        "250",
        "--nonblocking",
        "--format",
        "raw",
        "--output",
        str(output),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await process.communicate()
    collapsed = _read(output)
    if process.returncode != 0 or collapsed is None:
        return f"py-spy failed: {err.decode(errors='replace').strip()[-300:]}"
    return summarize(collapsed)


def _read(path: Path) -> str | None:
    return path.read_text() if path.exists() else None


def _short(frame: str) -> str:
    match = _FRAME.match(frame.strip())
    if match is None:
        return frame.strip()
    path = match["file"]
    for marker in ("site-packages/", "/work/main/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{match['function']} ({path})"


def summarize(collapsed: str, top: int = 6) -> str:
    """Top self-time frames and our top inclusive functions, in percent of samples."""
    leaves: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_short(frame) for frame in stack.split(";")]
        total += count
        leaves[frames[-1]] += count
        for frame in set(frames):
            if any(part in frame for part in _OURS) and not frame.startswith(_ENTRY):
                inclusive[frame] += count
    if total == 0:
        return "no samples"

    def share(counter: Counter[str]) -> str:
        return ", ".join(f"{n / total:.0%} {frame}" for frame, n in counter.most_common(top))

    return f"{total} samples; self: {share(leaves)}; ours (inclusive): {share(inclusive)}"
