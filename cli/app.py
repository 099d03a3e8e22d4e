"""The `sensei` command line: argument parsing, dispatch, and turning failures into exit codes."""

from __future__ import annotations

import argparse
import contextvars
import importlib.metadata
import json
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

import grpc

from cli import (
    certificates,
    completion,
    login,
    migrations,
    patterns,
    signing_keys,
    verifications,
)
from cli.client import Client, with_tls_flags
from cli.commands import Handler
from cli.errors import CliError, ExitCode, rpc_failure
from cli.output import Output
from cli.session import SERVICES

if TYPE_CHECKING:
    from _typeshed import SupportsWrite

DEFAULT_TIMEOUT_SECONDS = 30.0

EPILOG = """\
addresses: --SERVICE-addr flags, else those stored by `sensei login`, else SENSEI_<SERVICE>_ADDR
  (as in .sensei/dev.env), else 127.0.0.1:50051..50054.
TLS: --tls-ca, --tls-cert, --tls-key, else $SENSEI_TLS_CA_FILE, $SENSEI_TLS_CLIENT_CERT_FILE,
  $SENSEI_TLS_CLIENT_KEY_FILE (as in .sensei/dev.env with `make run TLS=1`); none: plaintext.
credentials: the token stored by `sensei login`, else $SENSEI_TOKEN, else $SENSEI_API_KEY;
  with --as-operator, $SENSEI_OPERATOR_API_KEY (the platform operator's key: pattern writes,
  certificate signing keys; it reaches no organization's data).

exit codes:
  0    ok
  1    a negative answer: certificate not VALID, watched migration FAILED or CANCELLED,
       verification FAILED or ERROR
  2    usage error
  3    not logged in, or the token was refused (UNAUTHENTICATED)
  4    permission denied
  5    not found
  6    invalid argument (every bad field is listed)
  7    conflict: failed precondition (illegal state change), aborted (stale etag), already exists
  8    quota exceeded (RESOURCE_EXHAUSTED)
  9    unavailable or timed out: safe to retry
  10   any other error
  130  interrupted
"""

# The streams of the running invocation, so argparse's own messages land where ours do.
_streams: contextvars.ContextVar[tuple[TextIO, TextIO]] = contextvars.ContextVar("cli_streams")


class _Parser(argparse.ArgumentParser):
    def _print_message(self, message: str, file: SupportsWrite[str] | None = None) -> None:
        if not message:
            return
        stdout, stderr = _streams.get((sys.stdout, sys.stderr))
        (stdout if file is sys.stdout else stderr).write(message)

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            self._print_message(message, sys.stderr)
        raise SystemExit(status)


def package_version(distribution: str = "sensei") -> str:
    """The installed version of `distribution`; a marker when it is not installed (a checkout
    run as `python -m cli` without `pip install -e .`)."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed; `pip install -e .` records the version)"


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError("must be more than 0 seconds")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The whole command tree."""
    # Options valid before or after the command (`sensei --json migrations list` and
    # `sensei migrations list --json`); SUPPRESS keeps a subcommand from resetting them.
    common = _Parser(add_help=False)
    options = common.add_argument_group("common options")
    options.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="print JSON for scripts"
    )
    options.add_argument(
        "--timeout",
        type=_positive_seconds,
        default=argparse.SUPPRESS,
        metavar="SECONDS",
        help=f"deadline of each call (default {DEFAULT_TIMEOUT_SECONDS:g}; watches: none)",
    )
    options.add_argument(
        "--as-operator",
        action="store_true",
        default=argparse.SUPPRESS,
        help="act as the platform operator ($SENSEI_OPERATOR_API_KEY)",
    )
    for flag, what in (
        ("ca", "CA file to trust"),
        ("cert", "client certificate"),
        ("key", "its key"),
    ):
        options.add_argument(
            f"--tls-{flag}", default=argparse.SUPPRESS, metavar="FILE", help=f"TLS: {what} (PEM)"
        )
    for service in SERVICES:
        options.add_argument(
            f"--{service}-addr",
            default=argparse.SUPPRESS,
            # No colon in the metavar: zsh completion reads it as a field separator.
            metavar="ADDRESS",
            help=f"address of the {service} service, HOST:PORT",
        )
    parser = _Parser(
        prog="sensei",
        parents=[common],
        description="Command-line client of the Sensei migration platform.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"sensei {package_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (
        login,
        migrations,
        verifications,
        certificates,
        patterns,
        signing_keys,
        completion,
    ):
        module.register(commands, common)
    return parser


def _report(out: Output, lines: list[str], document: dict[str, Any]) -> None:
    if out.json_mode:
        out.stderr.write(json.dumps(document) + "\n")
    else:
        out.stderr.write(
            "".join(f"{'error: ' if i == 0 else ''}{line}\n" for i, line in enumerate(lines))
        )
    out.stderr.flush()


async def run(
    argv: Sequence[str], stdout: TextIO, stderr: TextIO, environ: Mapping[str, str]
) -> int:
    """Parses `argv`, runs the command, reports any failure; returns the exit code."""
    streams = _streams.set((stdout, stderr))
    try:
        args = build_parser().parse_args(list(argv))
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else ExitCode.USAGE
    finally:
        _streams.reset(streams)
    out = Output(stdout, stderr, json_mode=getattr(args, "json", False))
    # Unary calls get a deadline always; a watch only when --timeout is given.
    args.timeout = getattr(args, "timeout", None)
    flags = {service: getattr(args, f"{service}_addr", None) for service in SERVICES}
    for service, value in flags.items():
        setattr(args, f"{service}_addr", value)
    tls_flags = (getattr(args, f"tls_{flag}", None) for flag in ("ca", "cert", "key"))
    client = Client(
        with_tls_flags(environ, *tls_flags),
        flags,
        args.timeout or DEFAULT_TIMEOUT_SECONDS,
        as_operator=getattr(args, "as_operator", False),
    )
    try:
        handler: Handler = args.handler
        return int(await handler(args, client, out))
    except CliError as exc:
        _report(out, [exc.message], exc.as_json())
        return exc.exit_code
    except grpc.aio.AioRpcError as exc:
        failure = rpc_failure(exc)
        _report(out, failure.lines(), failure.as_json())
        return failure.exit_code
    finally:
        await client.close()
