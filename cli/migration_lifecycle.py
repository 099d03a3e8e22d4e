"""`sensei migrations create|update|delete` and the lifecycle verbs: start, advance, pause,
resume, complete, fail, cancel, report-progress.

Every verb takes `--etag` (act only on the version you read; a stale one exits 7). Only
CreateMigration takes an idempotency key, so only `create` has `--request-id`.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf import field_mask_pb2

from cli import names
from cli.client import Client
from cli.commands import SubParsers
from cli.errors import CliError, ExitCode
from cli.migration_view import show, stub
from cli.output import Output
from sensei.migration.v1 import migration_pb2

pb = migration_pb2
MIGRATION_HELP = "organizations/{org}/migrations/{id}, migrations/{id} or id"
ETAG_HELP = "act only if the migration is still this version (from `get`); else exit 7"


@dataclass(frozen=True)
class _Transition:
    """A lifecycle verb: the RPC it calls and what it does."""

    verb: str
    rpc: str
    help: str


TRANSITIONS = (
    _Transition("start", "StartMigration", "PENDING → ANALYZING"),
    _Transition(
        "advance", "AdvanceMigration", "to the next phase: ANALYZING → MIGRATING → VERIFYING"
    ),
    _Transition("pause", "PauseMigration", "pause an active migration"),
    _Transition("resume", "ResumeMigration", "resume a PAUSED migration in the phase it left"),
    _Transition("complete", "CompleteMigration", "VERIFYING → COMPLETED"),
    _Transition("fail", "FailMigration", "an active migration → FAILED, with --reason"),
    _Transition("cancel", "CancelMigration", "any migration not yet finished → CANCELLED"),
)


def register(verbs: SubParsers, common: argparse.ArgumentParser) -> None:
    """Adds create, update, delete, the lifecycle verbs and report-progress to `migrations`."""
    create = verbs.add_parser(
        "create",
        parents=[common],
        help="create a migration (PENDING)",
        description=(
            "Creates a migration. Each connection comes from a JSON file of the keys that "
            "source_config takes (host, port, database, user, password, dsn, sslmode; `-` reads "
            "stdin) or from a DSN. A DSN on the command line is visible to other local users in "
            "the process list: prefer a file for passwords."
        ),
    )
    create.add_argument("display_name", metavar="DISPLAY_NAME", help="the migration's name")
    _add_content_options(create)
    create.add_argument(
        "--request-id", default="", help="idempotency key (default: a new UUID per call)"
    )
    create.set_defaults(handler=run_create)

    update = verbs.add_parser(
        "update",
        parents=[common],
        help="change name, description or (while PENDING) the connections",
        description="Replaces only the fields given; the connections only while PENDING.",
    )
    update.add_argument("migration", help=MIGRATION_HELP)
    _add_content_options(update, display_name=True)
    update.add_argument("--etag", default="", help=ETAG_HELP)
    update.set_defaults(handler=run_update)

    delete = verbs.add_parser(
        "delete", parents=[common], help="delete a PENDING or finished migration"
    )
    delete.add_argument("migration", help=MIGRATION_HELP)
    delete.add_argument("--etag", default="", help=ETAG_HELP)
    delete.set_defaults(handler=run_delete)

    for transition in TRANSITIONS:
        parser = verbs.add_parser(transition.verb, parents=[common], help=transition.help)
        parser.add_argument("migration", help=MIGRATION_HELP)
        if transition.verb == "fail":
            parser.add_argument("--reason", required=True, help="why it failed (kept with it)")
        parser.add_argument("--etag", default="", help=ETAG_HELP)
        parser.set_defaults(handler=run_transition, transition=transition)

    progress = verbs.add_parser(
        "report-progress",
        parents=[common],
        help="set an active migration's progress (never lower within a run)",
    )
    progress.add_argument("migration", help=MIGRATION_HELP)
    progress.add_argument(
        "progress", type=_fraction, metavar="FRACTION", help="done so far: 0.5 or 50%%"
    )
    progress.set_defaults(handler=run_report_progress)


def _add_content_options(parser: argparse.ArgumentParser, *, display_name: bool = False) -> None:
    if display_name:
        parser.add_argument("--display-name", help="a new name")
    parser.add_argument("--description", help="free text")
    for side in ("source", "target"):
        group = parser.add_mutually_exclusive_group()
        group.add_argument(
            f"--{side}-config",
            type=Path,
            metavar="FILE",
            help=f"the {side} connection as a JSON object (`-`: stdin)",
        )
        group.add_argument(
            f"--{side}-dsn", metavar="DSN", help=f"the {side} connection as a postgresql:// URL"
        )


def _fraction(text: str) -> float:
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a fraction or a percentage: {text!r}") from None
    return value


def _connection(args: argparse.Namespace, side: str) -> dict[str, Any] | None:
    dsn: str | None = getattr(args, f"{side}_dsn")
    if dsn is not None:
        return {"dsn": dsn}
    path: Path | None = getattr(args, f"{side}_config")
    if path is None:
        return None
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text()
    except OSError as exc:
        raise CliError(
            f"cannot read --{side}-config {path}: {exc.strerror}", ExitCode.USAGE
        ) from None
    try:
        config = json.loads(text)
    except ValueError as exc:
        raise CliError(f"--{side}-config {path} is not JSON: {exc}", ExitCode.USAGE) from None
    if not isinstance(config, dict):
        raise CliError(f"--{side}-config {path} must hold a JSON object", ExitCode.USAGE)
    return config


def _content(args: argparse.Namespace) -> tuple[migration_pb2.Migration, list[str]]:
    """The migration fields the options give, and their field-mask paths."""
    migration = pb.Migration()
    paths: list[str] = []
    display_name: str | None = getattr(args, "display_name", None)
    if display_name is not None:
        migration.display_name = display_name
        paths.append("display_name")
    if args.description is not None:
        migration.description = args.description
        paths.append("description")
    for side in ("source", "target"):
        config = _connection(args, side)
        if config is not None:
            getattr(migration, f"{side}_config").update(config)
            paths.append(f"{side}_config")
    return migration, paths


async def run_create(args: argparse.Namespace, client: Client, out: Output) -> int:
    """CreateMigration in the caller's organization."""
    migration, _ = _content(args)
    response = await stub(client).CreateMigration(
        pb.CreateMigrationRequest(
            parent=await client.org_name(),
            migration=migration,
            request_id=args.request_id or str(uuid.uuid4()),
        ),
        metadata=await client.metadata(),
        timeout=client.timeout,
    )
    show(response.migration, out)
    return ExitCode.OK


async def run_update(args: argparse.Namespace, client: Client, out: Output) -> int:
    """UpdateMigration of the fields given."""
    name = await names.migration(args.migration, client)
    migration, paths = _content(args)
    if not paths:
        raise CliError(
            "nothing to update: give --display-name, --description or a connection",
            ExitCode.USAGE,
        )
    migration.name, migration.etag = name, args.etag
    response = await stub(client).UpdateMigration(
        pb.UpdateMigrationRequest(
            migration=migration, update_mask=field_mask_pb2.FieldMask(paths=paths)
        ),
        metadata=await client.metadata(),
        timeout=client.timeout,
    )
    show(response.migration, out)
    return ExitCode.OK


async def run_delete(args: argparse.Namespace, client: Client, out: Output) -> int:
    """DeleteMigration."""
    name = await names.migration(args.migration, client)
    await stub(client).DeleteMigration(
        pb.DeleteMigrationRequest(name=name, etag=args.etag),
        metadata=await client.metadata(),
        timeout=client.timeout,
    )
    if out.json_mode:
        out.json({"deleted": name})
    else:
        out.line(f"deleted {name}")
    return ExitCode.OK


async def run_transition(args: argparse.Namespace, client: Client, out: Output) -> int:
    """One lifecycle RPC; shows the migration as it is afterwards."""
    transition: _Transition = args.transition
    name = await names.migration(args.migration, client)
    request_type = getattr(pb, f"{transition.rpc}Request")
    request = request_type(name=name, etag=args.etag)
    if transition.verb == "fail":
        request.reason = args.reason
    call = getattr(stub(client), transition.rpc)
    response = await call(request, metadata=await client.metadata(), timeout=client.timeout)
    show(response.migration, out)
    return ExitCode.OK


async def run_report_progress(args: argparse.Namespace, client: Client, out: Output) -> int:
    """ReportProgress."""
    name = await names.migration(args.migration, client)
    response = await stub(client).ReportProgress(
        pb.ReportProgressRequest(name=name, progress=args.progress),
        metadata=await client.metadata(),
        timeout=client.timeout,
    )
    show(response.migration, out)
    return ExitCode.OK
