"""The load generator: drives one workload from its own process and prints JSON results.

`python -m benchmarks.loadgen` reads a `Workload` (JSON) on stdin and writes one `Result`
(JSON) on stdout. `concurrency` coroutines send requests back to back, either unary gRPC
calls with pre-serialized payloads (`kind="grpc"`: the client spends no time building
messages it could build before) or raw asyncpg operations from `benchmarks.baselines`
(`kind="asyncpg"`). Requests that start in the first `warmup` seconds are not counted; the
run ends after `duration` more seconds or, when `max_requests` is set, once that many were
sent (the tests use this: a count, not a time).

The parent process (`benchmarks.__main__`) runs it with `measure()`, so the load never
shares an event loop or a core's Python interpreter with the servers it measures.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import grpc
from google.protobuf import struct_pb2, timestamp_pb2

from sensei.org.v1 import audit_pb2

REPO = Path(__file__).resolve().parent.parent

# Several channels: so_reuseport spreads connections, not calls, over processes.
_CHANNEL_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.use_local_subchannel_pool", 1),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
]


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


# --- gRPC -----------------------------------------------------------------------------


class RequestSource(Protocol):
    """Serialized requests for a gRPC workload."""

    def next(self, worker: int) -> Prepared:
        """The next request of `worker`."""
        ...


class FixedRequests:
    """Cycles through pre-serialized payloads (each worker from its own offset)."""

    def __init__(self, payloads: Sequence[bytes], labels: Sequence[str] = ()) -> None:
        if not payloads:
            raise ValueError("fixed requests need at least one payload")
        self._payloads = list(payloads)
        self._labels = list(labels) or [""] * len(self._payloads)
        self._positions: dict[int, int] = {}

    def next(self, worker: int) -> Prepared:
        position = self._positions.get(worker, worker * 7919) % len(self._payloads)
        self._positions[worker] = position + 1
        return Prepared(self._payloads[position], 1, self._labels[position])


class AuditBatches:
    """AppendAuditEventsRequest batches of fresh events, one organization per worker."""

    def __init__(self, org_ids: Sequence[str], batch: int, actor: str, service: str) -> None:
        self._org_ids = list(org_ids)
        self._batch = batch
        self._actor = actor
        self._service = service

    def next(self, worker: int) -> Prepared:
        org_id = self._org_ids[worker % len(self._org_ids)]
        occurred = timestamp_pb2.Timestamp()
        occurred.GetCurrentTime()
        details = struct_pb2.Struct()
        details.update({"display_name": "bench"})
        events = [
            audit_pb2.AuditEvent(
                event_id=str(uuid.uuid4()),
                org_id=org_id,
                actor=self._actor,
                action="bench.event",
                resource_type="bench",
                resource_id=str(uuid.uuid4()),
                ip_address="127.0.0.1",
                occur_time=occurred,
                service=self._service,
                details=details,
            )
            for _ in range(self._batch)
        ]
        request = audit_pb2.AppendAuditEventsRequest(events=events)
        return Prepared(request.SerializeToString(), self._batch)


def request_source(spec: dict[str, Any]) -> RequestSource:
    """`{"kind": "fixed", "payloads": [base64...], "labels": [...]}` (labels optional) or
    `{"kind": "audit_batch", ...}`."""
    kind = spec.get("kind")
    if kind == "fixed":
        return FixedRequests(
            [base64.b64decode(p) for p in spec["payloads"]], spec.get("labels", ())
        )
    if kind == "audit_batch":
        return AuditBatches(spec["org_ids"], int(spec["batch"]), spec["actor"], spec["service"])
    raise ValueError(f"unknown request source: {kind!r}")


class GrpcDriver:
    """Unary calls with raw bytes in and out (no client-side (de)serialization)."""

    def __init__(self, workload: Workload) -> None:
        self._workload = workload
        self._source = request_source(workload.requests)
        self._channels = [
            grpc.aio.insecure_channel(
                workload.target, options=[*_CHANNEL_OPTIONS, ("bench.channel", index)]
            )
            for index in range(max(1, workload.channels))
        ]
        self._calls = [channel.unary_unary(workload.method) for channel in self._channels]

    async def connect(self) -> None:
        """Waits until every channel is connected."""
        for channel in self._channels:
            await asyncio.wait_for(channel.channel_ready(), timeout=self._workload.timeout)

    def prepare(self, worker: int) -> Prepared:
        return self._source.next(worker)

    async def execute(self, worker: int, prepared: Prepared) -> None:
        call = self._calls[worker % len(self._calls)]
        await call(
            prepared.payload, metadata=self._workload.metadata, timeout=self._workload.timeout
        )

    async def close(self) -> None:
        for channel in self._channels:
            await channel.close()


# --- the run --------------------------------------------------------------------------


async def open_driver(workload: Workload) -> Driver:
    """The driver of a workload, connected."""
    if workload.kind == "grpc":
        driver = GrpcDriver(workload)
        await driver.connect()
        return driver
    if workload.kind == "asyncpg":
        from benchmarks.baselines import PgDriver

        return await PgDriver.open(workload)
    raise ValueError(f"unknown workload kind: {workload.kind!r}")


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values (0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = max(0, min(len(sorted_values) - 1, int(fraction * len(sorted_values) + 0.5) - 1))
    return sorted_values[rank]


def _error_code(exc: BaseException) -> str:
    if isinstance(exc, grpc.aio.AioRpcError):
        return str(exc.code().name)
    return type(exc).__name__


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
    )


def cpu_times() -> tuple[int, int] | None:
    """(busy, total) jiffies of all CPUs from /proc/stat; None where there is none."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(v) for v in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def busy_share(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float | None:
    """The busy share of CPU time between two `cpu_times` samples."""
    if before is None or after is None or after[1] <= before[1]:
        return None
    return (after[0] - before[0]) / (after[1] - before[1])


async def run(workload: Workload) -> Result:
    """Runs a workload in this process and measures it."""
    driver = await open_driver(workload)
    latencies: list[float] = []
    labelled: dict[str, list[float]] = {}
    errors: dict[str, int] = {}
    first_error: list[str] = []
    counted = {"requests": 0, "items": 0}
    issued = 0
    start = time.perf_counter()
    measure_from = start + workload.warmup
    stop_at = measure_from + workload.duration
    last_end = start

    async def worker(index: int) -> None:
        nonlocal issued, last_end
        while True:
            if workload.max_requests and issued >= workload.max_requests:
                return
            if time.perf_counter() >= stop_at:
                return
            issued += 1
            prepared = driver.prepare(index)
            began = time.perf_counter()
            failure: BaseException | None = None
            try:
                await driver.execute(index, prepared)
            except Exception as exc:
                failure = exc
            ended = time.perf_counter()
            if began < measure_from:
                continue
            last_end = max(last_end, ended)
            counted["requests"] += 1
            if failure is None:
                latencies.append(ended - began)
                if prepared.label:
                    labelled.setdefault(prepared.label, []).append(ended - began)
                counted["items"] += prepared.items
            else:
                code = _error_code(failure)
                errors[code] = errors.get(code, 0) + 1
                if not first_error:
                    first_error.append(f"{code}: {failure}"[:500])

    async def cpu_window() -> float | None:
        # Whole-machine CPU over the measured window: the services, PostgreSQL and this.
        await asyncio.sleep(workload.warmup)
        before = cpu_times()
        if workload.max_requests:
            await done.wait()
        else:
            await asyncio.sleep(workload.duration)
        return busy_share(before, cpu_times())

    done = asyncio.Event()
    cpu = asyncio.create_task(cpu_window())
    try:
        await asyncio.gather(*(worker(index) for index in range(workload.concurrency)))
    finally:
        done.set()
        await driver.close()
    cpu_busy = await cpu
    window_end = last_end if workload.max_requests else min(stop_at, max(last_end, measure_from))
    seconds = max(window_end - measure_from, 1e-9)
    latencies.sort()
    return Result(
        name=workload.name,
        requests=counted["requests"],
        items=counted["items"],
        errors=sum(errors.values()),
        seconds=seconds,
        p50_ms=percentile(latencies, 0.50) * 1000,
        p99_ms=percentile(latencies, 0.99) * 1000,
        mean_ms=(sum(latencies) / len(latencies) * 1000) if latencies else 0.0,
        error_codes=errors,
        first_error=first_error[0] if first_error else "",
        cpu_busy=cpu_busy,
        p50_ms_by_label={
            label: percentile(sorted(values), 0.50) * 1000 for label, values in labelled.items()
        },
    )


async def measure(workload: Workload, *, python: str = sys.executable) -> Result:
    """Runs `workload` in a new `python -m benchmarks.loadgen` process; returns its result."""
    process = await asyncio.create_subprocess_exec(
        python,
        "-m",
        "benchmarks.loadgen",
        cwd=REPO,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    limit = workload.warmup + workload.duration + workload.timeout + 60
    try:
        out, err = await asyncio.wait_for(
            process.communicate(workload.to_json().encode()), timeout=limit
        )
    except TimeoutError:
        process.kill()
        await process.wait()
        raise RuntimeError(f"load generator for {workload.name} did not finish") from None
    if process.returncode != 0:
        raise RuntimeError(
            f"load generator for {workload.name} failed ({process.returncode}):"
            f" {err.decode()[-3000:]}"
        )
    return Result.from_json(out.decode().strip().splitlines()[-1])


def main() -> None:
    """`python -m benchmarks.loadgen < workload.json > result.json`."""
    workload = Workload.from_json(sys.stdin.read())
    result = asyncio.run(run(workload))
    print(result.to_json(), flush=True)


if __name__ == "__main__":
    main()
