"""What a load-generator run is told (`Workload`) and what it reports (`Result`), and the
`Driver` protocol its request senders implement."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Workload:
    """What to run: target, request source, concurrency and how long or how many."""

    name: str
    kind: str  # "grpc" or "asyncpg"
    target: str  # host:port (grpc) or a PostgreSQL URL (asyncpg)
    method: str = ""  # grpc: /package.Service/Method
    metadata: tuple[tuple[str, str], ...] = ()
    requests: dict[str, Any] = field(default_factory=dict)  # grpc: see `request_source`
    op: dict[str, Any] = field(default_factory=dict)  # asyncpg: see baselines.pg_operation
    concurrency: int = 16
    duration: float = 6.0
    warmup: float = 1.0
    max_requests: int = 0  # > 0: stop after this many requests (then warmup should be 0)
    channels: int = 1
    pool_size: int = 10
    timeout: float = 60.0
    # > 0: open loop, requests start at this rate (at most `concurrency` in flight), and
    # latency counts from the scheduled start (a late start is the server's delay too).
    rate: float = 0.0
    # Processes whose CPU time the run reports, by group name (roots; children included).
    cpu_groups: dict[str, list[int]] = field(default_factory=dict)

    def to_json(self) -> str:
        """The workload as JSON (what the load generator reads on stdin)."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Workload:
        """Parses `to_json` output."""
        raw = json.loads(text)
        raw["metadata"] = tuple(tuple(pair) for pair in raw.get("metadata", ()))
        return cls(**raw)


@dataclass(frozen=True)
class Result:
    """What one run measured (counted requests only: warmup excluded)."""

    name: str
    requests: int
    items: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float
    mean_ms: float
    error_codes: dict[str, int] = field(default_factory=dict)
    first_error: str = ""
    cpu_busy: float | None = None  # share of the machine's CPU time busy in the window
    cpu_seconds: dict[str, float] = field(default_factory=dict)  # per group, in the window
    cpu_calls: int = 0  # successful requests of the CPU window
    p50_ms_by_label: dict[str, float] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        """Successful requests per second."""
        return (self.requests - self.errors) / self.seconds if self.seconds > 0 else 0.0

    @property
    def items_per_second(self) -> float:
        """Items (rows, events) per second of the successful requests."""
        return self.items / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> str:
        """The result as JSON (what the load generator prints)."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Result:
        """Parses `to_json` output."""
        return cls(**json.loads(text))

    def cpu_per_call(self) -> dict[str, float]:
        """CPU seconds per successful call of each group (empty without a measurement)."""
        if not self.cpu_calls:
            return {}
        return {name: seconds / self.cpu_calls for name, seconds in self.cpu_seconds.items()}


@dataclass(frozen=True)
class Prepared:
    """One request, built before its clock starts, and how many items it carries."""

    payload: Any
    items: int = 1
    label: str = ""  # fixed payloads may carry labels; the result breaks p50 down by them


class Driver(Protocol):
    """Sends the requests of one workload."""

    def prepare(self, worker: int) -> Prepared:
        """Builds the next request of `worker` (not timed)."""
        ...

    async def execute(self, worker: int, prepared: Prepared) -> None:
        """Sends it and waits for the answer (timed)."""
        ...

    async def close(self) -> None:
        """Releases connections."""
        ...


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values (0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = max(0, min(len(sorted_values) - 1, int(fraction * len(sorted_values) + 0.5) - 1))
    return sorted_values[rank]


def combined(results: Sequence[Result]) -> Result:
    """Runs of one workload as one: counts and seconds add up; p50, p99 and CPU are the
    runs' means (an approximation: percentiles do not add)."""
    first = results[0]
    codes: dict[str, int] = {}
    for result in results:
        for code, count in result.error_codes.items():
            codes[code] = codes.get(code, 0) + count
    successes = sum(r.requests - r.errors for r in results)
    cpu = [r.cpu_busy for r in results if r.cpu_busy is not None]
    cpu_seconds: dict[str, float] = {}
    for result in results:
        for name, seconds in result.cpu_seconds.items():
            cpu_seconds[name] = cpu_seconds.get(name, 0.0) + seconds
    return Result(
        name=first.name,
        requests=sum(r.requests for r in results),
        items=sum(r.items for r in results),
        errors=sum(r.errors for r in results),
        seconds=sum(r.seconds for r in results),
        p50_ms=sum(r.p50_ms for r in results) / len(results),
        p99_ms=sum(r.p99_ms for r in results) / len(results),
        mean_ms=sum(r.mean_ms * (r.requests - r.errors) for r in results) / max(1, successes),
        error_codes=codes,
        first_error=next((r.first_error for r in results if r.first_error), ""),
        cpu_busy=sum(cpu) / len(cpu) if cpu else None,
        cpu_seconds=cpu_seconds,
        cpu_calls=sum(r.cpu_calls for r in results),
    )
