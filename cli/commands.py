"""Shared pieces of the command modules: the handler type and option helpers."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from typing import TypeAlias

from cli.client import Client
from cli.output import Output

# A command: parsed arguments, a client, an output → exit code.
Handler = Callable[[argparse.Namespace, Client, Output], Awaitable[int]]

# What `add_subparsers` returns.
SubParsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def enum_choice(names: list[str]) -> Callable[[str], str]:
    """An argparse type accepting one of `names` in any case, with `-` for `_`."""
    allowed = {name.upper() for name in names}

    def parse(text: str) -> str:
        value = text.strip().upper().replace("-", "_")
        if value not in allowed:
            raise argparse.ArgumentTypeError(
                f"invalid choice {text!r} (choose from {', '.join(sorted(allowed))})"
            )
        return value

    return parse
