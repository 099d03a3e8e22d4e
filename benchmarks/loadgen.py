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
import os
import sys
import time

import grpc

from benchmarks import cpu
from benchmarks.grpc_driver import GrpcDriver
from benchmarks.workload import REPO, Driver, Result, Workload, percentile


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


def _error_code(exc: BaseException) -> str:
    if isinstance(exc, grpc.aio.AioRpcError):
        return str(exc.code().name)
    return type(exc).__name__


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
    ends: list[float] = []
    labelled: dict[str, list[float]] = {}
    errors: dict[str, int] = {}
    first_error: list[str] = []
    counted = {"requests": 0, "items": 0}
    issued = 0
    start = time.perf_counter()
    measure_from = start + workload.warmup
    stop_at = measure_from + workload.duration
    last_end = start
    groups = {**workload.cpu_groups, "load generator": [os.getpid()]}

    async def one(index: int, began: float) -> None:
        nonlocal last_end
        prepared = driver.prepare(index)
        began = min(began, time.perf_counter())
        failure: BaseException | None = None
        try:
            await driver.execute(index, prepared)
        except Exception as exc:
            failure = exc
        ended = time.perf_counter()
        if began < measure_from:
            return
        last_end = max(last_end, ended)
        counted["requests"] += 1
        if failure is None:
            latencies.append(ended - began)
            ends.append(ended)
            if prepared.label:
                labelled.setdefault(prepared.label, []).append(ended - began)
            counted["items"] += prepared.items
        else:
            code = _error_code(failure)
            errors[code] = errors.get(code, 0) + 1
            if not first_error:
                first_error.append(f"{code}: {failure}"[:500])

    async def worker(index: int) -> None:
        nonlocal issued
        while True:
            if workload.max_requests and issued >= workload.max_requests:
                return
            if time.perf_counter() >= stop_at:
                return
            issued += 1
            await one(index, time.perf_counter())

    async def open_loop() -> None:
        nonlocal issued
        # Starts at fixed intervals, whatever the answers' pace; at most `concurrency` in
        # flight (one more waits, and its wait counts in its latency).
        slots = asyncio.Semaphore(workload.concurrency)
        interval = 1.0 / workload.rate
        running: set[asyncio.Task[None]] = set()
        due = time.perf_counter()
        index = 0
        while due < stop_at and not (workload.max_requests and issued >= workload.max_requests):
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await slots.acquire()
            issued += 1
            task = asyncio.create_task(one(index, due))
            task.add_done_callback(lambda _: slots.release())
            running.add(task)
            task.add_done_callback(running.discard)
            index = (index + 1) % max(1, workload.concurrency)
            due += interval
        await asyncio.gather(*running)

    window: list[float] = []

    async def cpu_window() -> tuple[float | None, dict[str, float]]:
        # Whole-machine CPU over the measured window, and the CPU time of each group.
        await asyncio.sleep(workload.warmup)
        before, groups_before = cpu_times(), cpu.sample(groups)
        window.append(time.perf_counter())
        if workload.max_requests:
            await done.wait()
        else:
            await asyncio.sleep(workload.duration)
        window.append(time.perf_counter())
        return busy_share(before, cpu_times()), cpu.spent(groups_before, cpu.sample(groups))

    done = asyncio.Event()
    measured = asyncio.create_task(cpu_window())
    try:
        if workload.rate > 0:
            await open_loop()
        else:
            await asyncio.gather(*(worker(index) for index in range(workload.concurrency)))
    finally:
        done.set()
        await driver.close()
    cpu_busy, cpu_seconds = await measured
    window_end = last_end if workload.max_requests else min(stop_at, max(last_end, measure_from))
    seconds = max(window_end - measure_from, 1e-9)
    latencies.sort()
    in_window = sum(1 for ended in ends if window and window[0] <= ended <= window[-1])
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
        cpu_seconds=cpu_seconds,
        cpu_calls=in_window,
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
