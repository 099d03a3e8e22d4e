"""`sensei completion bash|zsh`: prints a shell completion script for the whole command tree.

The script is generated from the argparse parser by shtab: static, so a TAB costs no Python
start-up, and it is regenerated from the parser each time, so it never drifts from it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import shtab

from cli.client import Client
from cli.commands import SubParsers
from cli.errors import ExitCode
from cli.output import Output

SHELLS = ("bash", "zsh")

INSTALL = """\
bash:  sensei completion bash > ~/.local/share/bash-completion/completions/sensei
       (or `source <(sensei completion bash)` in ~/.bashrc)
zsh:   sensei completion zsh > "${fpath[1]}/_sensei"   (then restart zsh; or any
       directory of your $fpath, before `compinit` runs)
"""


def register(commands: SubParsers, common: argparse.ArgumentParser) -> None:
    """Adds `completion`."""
    completion = commands.add_parser(
        "completion",
        help="print a shell completion script (bash or zsh)",
        description="Prints the completion script of `sensei` for a shell.",
        epilog=INSTALL,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    completion.add_argument("shell", choices=SHELLS, help="the shell")
    completion.set_defaults(handler=run_completion)


async def run_completion(args: argparse.Namespace, client: Client, out: Output) -> int:
    """Prints the script; calls no service."""
    from cli.app import build_parser  # the whole tree, this command included

    parser = build_parser()
    _complete_paths_as_files(parser)
    script: str = shtab.complete(parser, shell=args.shell)
    out.stdout.write(script if script.endswith("\n") else script + "\n")
    out.stdout.flush()
    return ExitCode.OK


def _complete_paths_as_files(parser: argparse.ArgumentParser) -> None:
    """Every argument that takes a `Path` completes file names, in every subcommand."""
    for action in parser._actions:
        if action.type is Path:
            action.complete = shtab.FILE  # type: ignore[attr-defined]
        if isinstance(action, argparse._SubParsersAction):
            for subparser in set(action.choices.values()):
                _complete_paths_as_files(subparser)
