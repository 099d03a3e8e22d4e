"""`python -m cli …` / the `sensei` console script."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Mapping, Sequence
from typing import TextIO

from cli.app import run
from cli.errors import ExitCode


def main(
    argv: Sequence[str] | None = None,
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    environ: Mapping[str, str] | None = None,
) -> int:
    """Runs `sensei` with `argv` (default: the process arguments); returns the exit code."""
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    arguments = sys.argv[1:] if argv is None else argv
    try:
        return int(
            asyncio.run(run(arguments, stdout, stderr, os.environ if environ is None else environ))
        )
    except KeyboardInterrupt:
        stderr.write("\ninterrupted\n")
        return int(ExitCode.INTERRUPTED)


if __name__ == "__main__":
    sys.exit(main())
