"""The event loop a service runs on: uvloop, unless `SENSEI_UVLOOP=0`.

Measured faster for these services (benchmarks/ANALYSIS.md, "uvloop"); the setting turns
it off to rule it out when chasing a problem, or where its wheel is missing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Mapping
from typing import Any, TypeVar

T = TypeVar("T")

OFF = frozenset({"0", "false", "no"})


def wants_uvloop(env: Mapping[str, str]) -> bool:
    """Whether `SENSEI_UVLOOP` leaves uvloop on (the default)."""
    return env.get("SENSEI_UVLOOP", "1").strip().lower() not in OFF


def run(main: Coroutine[Any, Any, T], env: Mapping[str, str]) -> T:
    """`asyncio.run(main)` on the loop `env` asks for."""
    if not wants_uvloop(env):
        return asyncio.run(main)
    import uvloop

    return uvloop.run(main)
