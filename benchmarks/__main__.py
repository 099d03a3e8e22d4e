"""`python -m benchmarks` (`make bench`): start the suite, run the scenarios, write RESULTS.md.

Flags have `SENSEI_BENCH_<FLAG>` environment equivalents (e.g. SENSEI_BENCH_CONCURRENCY=32,
SENSEI_BENCH_DURATION=10, SENSEI_BENCH_ONLY=reads,ingest). Defaults finish in a few minutes
on 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from benchmarks import checksum_mysql
from benchmarks.bench import Bench, Options
from benchmarks.report import Machine, render_results, render_table
from benchmarks.scenarios import RUNNERS, SCENARIOS
from benchmarks.stack import start_stack

DEFAULT_OUTPUT = Path(__file__).with_name("RESULTS.md")


def _env(name: str, default: object) -> str:
    return os.environ.get(f"SENSEI_BENCH_{name.upper().replace('-', '_')}", str(default))


@dataclass(frozen=True)
class Run:
    """What `python -m benchmarks` was asked for, besides the scenario options."""

    output: Path
    keep: bool
    time_limit: float
    command: str


def parse_options(argv: Sequence[str]) -> tuple[Options, Run]:
    """Scenario options, and where/how long to run."""
    defaults = Options()
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    numbers: list[tuple[str, type, str]] = [
        ("concurrency", int, "concurrent requests of the load generator"),
        ("duration", float, "seconds measured per line"),
        ("warmup", float, "seconds of load before measuring, per line"),
        ("migrations", int, "migrations read by GetMigration"),
        ("audit-rows", int, "entries of the seeded audit chain"),
        ("audit-batch", int, "events per AppendAuditEvents batch"),
        ("audit-page", int, "the deep page of ListAuditLogs"),
        ("checksum-rows", int, "rows of the CHECKSUM table"),
        ("checksum-changes", int, "rows changed/deleted/added in the target"),
        ("checksum-large-rows", int, "rows of the CHECKSUM line at scale (checksum-large)"),
        ("reladiff-threads", int, "reladiff connections per database"),
        ("patterns", int, "patterns in the vector index"),
        ("large-patterns", int, "the large index of the pattern-scale lines (0: skip)"),
        ("recall-queries", int, "queries checked for recall@10"),
        ("channels", int, "client connections of the multi-core lines"),
    ]
    for flag, kind, text in numbers:
        default = getattr(defaults, flag.replace("-", "_"))
        parser.add_argument(f"--{flag}", type=kind, default=kind(_env(flag, default)), help=text)
    parser.add_argument(
        "--only",
        default=_env("only", ""),
        help=f"comma-separated scenarios (default: all): {', '.join(SCENARIOS)}",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        default=_env("profile", "0") in {"1", "true", "yes"},
        help="sample the service with py-spy during each Sensei line",
    )
    parser.add_argument(
        "--time-limit",
        type=float,
        default=float(_env("time-limit", 300)),
        help="seconds; scenarios not started by then are skipped (and reported)",
    )
    parser.add_argument("--output", type=Path, default=Path(_env("output", DEFAULT_OUTPUT)))
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)
    only = frozenset(s.strip() for s in args.only.split(",") if s.strip())
    unknown = only - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    values = {
        flag.replace("-", "_"): getattr(args, flag.replace("-", "_")) for flag, _, _ in numbers
    }
    command = shlex.join(["python", "-m", "benchmarks", *argv])
    settings = Run(args.output, args.keep, args.time_limit, command)
    return Options(**values, profile=args.profile, only=only), settings


async def run_scenarios(bench: Bench, began: float, time_limit: float) -> list[str]:
    """Runs the selected scenarios; a failing one is reported and the next one runs."""
    failed = []
    for name in SCENARIOS:
        if not bench.options.wants(name):
            continue
        if time.perf_counter() - began > time_limit:
            bench.notes.append(f"scenario {name} SKIPPED: the run passed --time-limit")
            failed.append(name)
            continue
        print(f"[{name}]", flush=True)
        try:
            await RUNNERS[name](bench)
        except Exception as exc:
            traceback.print_exc()
            bench.notes.append(f"scenario {name} FAILED: {type(exc).__name__}: {exc}"[:600])
            failed.append(name)
    return failed


async def run(options: Options, settings: Run) -> int:
    """Runs the selected scenarios and writes the report; 1 if a scenario did not complete."""
    began = time.perf_counter()
    work_dir = Path(tempfile.mkdtemp(prefix="sensei-bench-"))
    print(f"sensei bench: work directory {work_dir}", flush=True)
    print("starting PostgreSQL (embedded, durable=False) and the four services…", flush=True)
    stack = await start_stack(work_dir, allowed=checksum_mysql.destinations())
    try:
        conn = await asyncpg.connect(stack.database_url)
        try:
            postgres = str(await conn.fetchval("SHOW server_version")).split(" ")[0]
        finally:
            await conn.close()
        bench = Bench(stack, options)
        if hasattr(os, "getloadavg"):
            bench.notes.append(
                f"load average when the run began: {os.getloadavg()[0]:.1f} on"
                f" {os.cpu_count()} cores (other people's processes included); the ratios and"
                " CPU/call figures are the ones to read, the absolute rates drift with it"
            )
        failed = await run_scenarios(bench, began, settings.time_limit)
    finally:
        await stack.close()
        if not settings.keep:
            shutil.rmtree(work_dir, ignore_errors=True)
    shown = {
        "concurrency": options.concurrency,
        "duration": f"{options.duration:g}s",
        "warmup": f"{options.warmup:g}s",
        "audit rows": f"{options.audit_rows:,}",
        "checksum rows": f"{options.checksum_rows:,}",
        "checksum large rows": f"{options.checksum_large_rows:,}",
        "patterns": f"{options.patterns:,}",
        "total time": f"{time.perf_counter() - began:.0f}s",
    }
    machine = Machine.here(
        f"PostgreSQL {postgres}",
        datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        settings.command,
        shown,
    )
    _write(settings.output, render_results(machine, bench.lines, bench.notes))
    print()
    print(render_table(bench.lines))
    for note in bench.notes:
        print(f"- {note}")
    print(f"\nwrote {settings.output} ({shown['total time']})", flush=True)
    if failed:
        print(f"scenarios that did not complete: {', '.join(failed)}", flush=True)
        return 1
    return 0


def _write(path: Path, text: str) -> None:
    path.write_text(text)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of `python -m benchmarks`."""
    options, settings = parse_options(list(sys.argv[1:] if argv is None else argv))
    sys.exit(asyncio.run(run(options, settings)))


if __name__ == "__main__":
    main()
