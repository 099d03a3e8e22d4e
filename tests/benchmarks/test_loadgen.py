"""The load generator sends exactly the requests it is told to, and the report renders.

No timing is asserted: these are the mechanics of `make bench`, not its numbers.
"""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest

from benchmarks.baselines import ECHO_METHOD, serve_echo
from benchmarks.loadgen import measure
from benchmarks.report import Line, Machine, ratio_text, render_results
from benchmarks.workload import Result, Workload, combined, percentile
from devstack.postgres import free_port

REQUESTS = 120


@pytest.fixture
async def echo_address() -> AsyncIterator[str]:
    port = free_port()
    server = await serve_echo(port, response_size=256)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(0)


def _workload(address: str, **fields: Any) -> Workload:
    payload = base64.b64encode(b"\x01" * 64).decode()
    workload = Workload(
        name="echo",
        kind="grpc",
        target=address,
        method=ECHO_METHOD,
        requests={"kind": "fixed", "payloads": [payload]},
        concurrency=4,
        channels=2,
        warmup=0,
        duration=120,
        max_requests=REQUESTS,
    )
    # Through JSON, as the parent hands it to the load-generator process.
    return Workload.from_json(replace(workload, **fields).to_json())


async def test_a_bounded_run_sends_exactly_that_many_requests(echo_address: str) -> None:
    result = await measure(_workload(echo_address))
    assert result.requests == REQUESTS
    assert result.items == REQUESTS
    assert result.errors == 0
    assert 0 < result.p50_ms <= result.p99_ms


async def test_an_open_loop_run_sends_exactly_that_many_requests(echo_address: str) -> None:
    result = await measure(_workload(echo_address, rate=500.0, max_requests=40))
    assert result.requests == 40
    assert result.errors == 0


async def test_a_run_reports_the_cpu_time_of_the_processes_it_was_given(
    echo_address: str,
) -> None:
    result = await measure(_workload(echo_address, cpu_groups={"this test": [os.getpid()]}))
    assert set(result.cpu_seconds) == {"this test", "load generator"}
    assert result.cpu_calls == REQUESTS


async def test_failed_requests_are_counted_by_status_code(echo_address: str) -> None:
    result = await measure(_workload(echo_address, method="/bench.Echo/Missing"))
    assert result.requests == REQUESTS
    assert result.errors == REQUESTS
    assert result.error_codes == {"UNIMPLEMENTED": REQUESTS}


async def test_the_report_renders_a_line_with_its_ratio(echo_address: str) -> None:
    result = await measure(_workload(echo_address))
    baseline = Line.of("unary reads", "echo", result, ratio="baseline")
    line = Line.of(
        "unary reads", "echo again", result, ratio=ratio_text(result.rps, result.rps, "echo")
    )
    machine = Machine.here("PostgreSQL 18", "today", "python -m benchmarks", {"concurrency": 4})
    text = render_results(machine, [baseline, line], ["a note"])
    assert "| unary reads | echo again |" in text
    assert "1.00× echo" in text
    assert "- a note" in text
    assert "durable=False" in text


def test_percentiles_use_the_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile([], 0.5) == 0.0


def test_runs_combine_into_one_result() -> None:
    first = Result("x", requests=10, items=10, errors=2, seconds=2.0, p50_ms=1, p99_ms=3, mean_ms=1)
    second = Result("x", 30, 30, 0, 2.0, 3, 5, 2, error_codes={"UNAVAILABLE": 0}, cpu_busy=0.5)
    both = combined([first, second])
    assert (both.requests, both.items, both.errors, both.seconds) == (40, 40, 2, 4.0)
    assert both.rps == 38 / 4.0
    assert (both.p50_ms, both.p99_ms, both.cpu_busy) == (2.0, 4.0, 0.5)


async def test_labelled_payloads_get_their_own_p50(echo_address: str) -> None:
    payloads = [base64.b64encode(b"a").decode(), base64.b64encode(b"bb").decode()]
    workload = _workload(
        echo_address,
        requests={"kind": "fixed", "payloads": payloads, "labels": ["a", "b"]},
        concurrency=1,
        max_requests=20,
    )
    result = await measure(workload)
    assert result.requests == 20
    assert set(result.p50_ms_by_label) == {"a", "b"}
