"""`make run` output is JSON logs plus the dev stack's summary: no library warnings."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ENTRY_POINTS = [
    "devstack.__main__",
    *(f"services.{name}.server" for name in ("org", "migration", "verification", "pattern")),
]


def test_importing_every_entry_point_prints_nothing() -> None:
    imports = "; ".join(f"import {module}" for module in ENTRY_POINTS)
    result = subprocess.run(
        [sys.executable, "-c", imports],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout == ""
