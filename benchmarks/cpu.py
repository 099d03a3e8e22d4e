"""CPU time of the processes behind a line, from /proc: what a call costs, however busy
the machine was.

A group is a name and its root pids (a service's processes, a PostgreSQL postmaster, the
load generator). Its CPU time is utime + stime of every process of the tree, plus the
children's times the kernel added to a parent when it reaped them (a PostgreSQL backend
that ended during the window still counts). Processes of other people on the machine are
in no group, so contention slows a line down but does not inflate its CPU per call.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PROC = Path("/proc")


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, own + reaped children's CPU ticks) of a process; None once it is gone."""
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces; the fields after its ")" do not.
    fields = text[text.rindex(")") + 2 :].split()
    utime, stime, cutime, cstime = (int(v) for v in fields[11:15])
    return int(fields[1]), utime + stime + cutime + cstime


def _parents() -> dict[int, int]:
    parents = {}
    for entry in _PROC.iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None:
                parents[int(entry.name)] = stat[0]
    return parents


def tree_seconds(roots: Sequence[int], parents: Mapping[int, int] | None = None) -> float:
    """CPU seconds of `roots` and all their descendants (reaped ones included)."""
    known = _parents() if parents is None else parents
    members = set(roots)
    grew = True
    while grew:
        grew = False
        for pid, parent in known.items():
            if parent in members and pid not in members:
                members.add(pid)
                grew = True
    ticks = 0
    for pid in members:
        stat = _stat(pid)
        if stat is not None:
            ticks += stat[1]
    return ticks / _TICKS


def sample(groups: Mapping[str, Sequence[int]]) -> dict[str, float] | None:
    """CPU seconds of each group now (None where there is no /proc)."""
    if not _PROC.is_dir():
        return None
    parents = _parents()
    return {name: tree_seconds(pids, parents) for name, pids in groups.items()}


def spent(
    before: Mapping[str, float] | None, after: Mapping[str, float] | None
) -> dict[str, float]:
    """CPU seconds each group spent between two samples."""
    if before is None or after is None:
        return {}
    return {name: max(0.0, after[name] - before.get(name, 0.0)) for name in after}


def per_call_text(cpu_seconds: Mapping[str, float], calls: float, rate: float) -> str:
    """`CPU/call: loadgen 120 µs, migration 310 µs, postgres 90 µs = 520 µs (1.3 cores at
    this rate)`; empty without a measurement."""
    if not cpu_seconds or calls <= 0:
        return ""
    shown = {name: s / calls * 1e6 for name, s in cpu_seconds.items() if s / calls * 1e6 >= 20}
    total = sum(cpu_seconds.values()) / calls * 1e6
    parts = ", ".join(f"{name} {_micros(value)}" for name, value in shown.items())
    return f"CPU/call: {parts} = {_micros(total)} ({total * rate / 1e6:.2f} cores at this rate)"


def _micros(value: float) -> str:
    return f"{value / 1000:.1f} ms" if value >= 10_000 else f"{value:.0f} µs"
