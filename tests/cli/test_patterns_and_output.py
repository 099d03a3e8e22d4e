"""`sensei patterns search`, and how output looks on a terminal."""

from __future__ import annotations

import asyncio
import io
import json
import time

from cli.errors import ExitCode
from cli.output import BAR_WIDTH, Output, ProgressDisplay
from sensei.pattern.v1 import pattern_pb2, pattern_pb2_grpc
from tests.cli.conftest import Cli

INDEX_SECONDS = 10.0


async def test_search_ranks_patterns_by_similarity(cli: Cli) -> None:
    await cli.suite.start("pattern")
    cli.env["SENSEI_PATTERN_ADDR"] = cli.suite.address("pattern")
    await cli.login()
    stub = cli.suite.stub("pattern", pattern_pb2_grpc.PatternServiceStub)
    service = await cli.suite.service()
    upserted = []
    for fingerprint, text in [
        ("rename-customer-email", "rename column email to email_address in customers"),
        ("split-orders-table", "split the orders table into orders and order_lines"),
    ]:
        response = await stub.UpsertPattern(
            pattern_pb2.UpsertPatternRequest(fingerprint=fingerprint, type="cli-test", text=text),
            metadata=service.metadata,
        )
        upserted.append(response.pattern.name)

    async def search() -> dict[str, object]:
        result = await cli.run(
            "patterns", "search", "rename the email column", "--type", "cli-test", "--json"
        )
        assert result.code == ExitCode.OK, result.err
        document: dict[str, object] = json.loads(result.out)
        return document

    # Patterns are indexed in the background; poll (bounded) until both are searchable.
    deadline = time.monotonic() + INDEX_SECONDS
    while len((await search()).get("results", [])) < 2:  # type: ignore[arg-type]
        assert time.monotonic() < deadline, "patterns not searchable in time"
        await asyncio.sleep(0.1)
    table = await cli.run("patterns", "search", "rename the email column", "--type", "cli-test")

    assert table.code == ExitCode.OK, table.err
    header, first, second = table.out.splitlines()
    assert header.split()[:3] == ["#", "SIMILARITY", "SUCCESS"]
    assert first.split()[0] == "1" and "rename-customer-email" in first
    assert "split-orders-table" in second


def test_a_terminal_gets_one_redrawn_bar_line() -> None:
    class Terminal(io.StringIO):
        encoding = "utf-8"

        def isatty(self) -> bool:
            return True

    screen = Terminal()
    display = ProgressDisplay(Output(screen, io.StringIO(), json_mode=False))

    display.update("MIGRATING", 0.5, "50.0%", "plain line")
    display.update("MIGRATING", 1.0, "100.0%", "plain line")
    display.finish()

    frames = screen.getvalue().split("\r\x1b[2K")[1:]
    half = "█" * (BAR_WIDTH // 2) + "░" * (BAR_WIDTH // 2)
    assert frames[0] == f"MIGRATING  [{half}] 50.0%"
    assert frames[1] == f"MIGRATING  [{'█' * BAR_WIDTH}] 100.0%\n"
    assert "plain line" not in screen.getvalue()


def test_a_pipe_gets_plain_lines() -> None:
    pipe = io.StringIO()
    display = ProgressDisplay(Output(pipe, io.StringIO(), json_mode=False))

    display.update("RUNNING", 0.25, "1/4 tables", "RUNNING  1/4 tables")
    display.finish()

    assert pipe.getvalue() == "RUNNING  1/4 tables\n"
