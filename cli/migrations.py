"""`sensei migrations list|get|watch` (the verbs that change migrations: migration_lifecycle)."""

from __future__ import annotations

import argparse

from cli import migration_lifecycle, names
from cli.client import Client
from cli.commands import SubParsers, enum_choice
from cli.errors import CliError, ExitCode
from cli.migration_view import STATUS_PREFIX, show, status_label, stub
from cli.output import Output, ProgressDisplay, as_json, enum_label, percent, when
from sensei.migration.v1 import migration_pb2

pb = migration_pb2
EVENT_PREFIX = "MIGRATION_EVENT_TYPE_"
STATUSES = [
    enum_label(name, STATUS_PREFIX)
    for name in pb.MigrationStatus.DESCRIPTOR.values_by_name
    if name != "MIGRATION_STATUS_UNSPECIFIED"
]
TERMINAL = {
    pb.MIGRATION_STATUS_COMPLETED,
    pb.MIGRATION_STATUS_FAILED,
    pb.MIGRATION_STATUS_CANCELLED,
}


def register(commands: SubParsers, common: argparse.ArgumentParser) -> None:
    """Adds `migrations` and its subcommands."""
    group = commands.add_parser(
        "migrations", help="create, list, show, drive through their lifecycle and watch migrations"
    )
    verbs = group.add_subparsers(dest="verb", required=True, metavar="COMMAND")

    listing = verbs.add_parser("list", parents=[common], help="list your organization's migrations")
    listing.add_argument(
        "--status", type=enum_choice(STATUSES), help=f"only this status ({', '.join(STATUSES)})"
    )
    listing.add_argument(
        "--limit", type=int, default=0, help="show at most this many (default: all)"
    )
    listing.add_argument(
        "--page-size", type=int, default=0, help="migrations per call (default: server's, 50)"
    )
    listing.set_defaults(handler=run_list)

    get = verbs.add_parser("get", parents=[common], help="show one migration")
    get.add_argument("migration", help="organizations/{org}/migrations/{id}, migrations/{id} or id")
    get.set_defaults(handler=run_get)
    migration_lifecycle.register(verbs, common)

    watch = verbs.add_parser(
        "watch",
        parents=[common],
        help="follow a migration live until it completes, fails or is cancelled",
        description=(
            "Streams WatchMigration: a live progress bar on a terminal, one line per change "
            "otherwise (one JSON object per change with --json). Exits 0 when the migration "
            "COMPLETED, 1 when it FAILED, was CANCELLED or deleted."
        ),
    )
    watch.add_argument(
        "migration", help="organizations/{org}/migrations/{id}, migrations/{id} or id"
    )
    watch.set_defaults(handler=run_watch)


async def run_list(args: argparse.Namespace, client: Client, out: Output) -> int:
    """Lists every page (or up to --limit)."""
    if args.limit < 0:
        raise CliError("--limit must not be negative", ExitCode.USAGE)
    service = stub(client)
    request = pb.ListMigrationsRequest(
        parent=await client.org_name(),
        page_size=args.page_size,
        status=pb.MigrationStatus.Value(STATUS_PREFIX + args.status) if args.status else 0,  # type: ignore[arg-type]
    )
    found: list[migration_pb2.Migration] = []
    while True:
        response = await service.ListMigrations(
            request, metadata=await client.metadata(), timeout=client.timeout
        )
        found.extend(response.migrations)
        if not response.next_page_token or (args.limit and len(found) >= args.limit):
            break
        request.page_token = response.next_page_token
    if args.limit:
        found = found[: args.limit]
    if out.json_mode:
        out.json({"migrations": [as_json(m) for m in found]})
        return ExitCode.OK
    out.table(
        ["ID", "NAME", "STATUS", "PROGRESS", "CREATED"],
        [
            (m.id, m.display_name, status_label(m.status), percent(m.progress), when(m.create_time))
            for m in found
        ],
    )
    return ExitCode.OK


async def run_get(args: argparse.Namespace, client: Client, out: Output) -> int:
    """Shows one migration."""
    name = await names.migration(args.migration, client)
    response = await stub(client).GetMigration(
        pb.GetMigrationRequest(name=name), metadata=await client.metadata(), timeout=client.timeout
    )
    show(response.migration, out)
    return ExitCode.OK


async def run_watch(args: argparse.Namespace, client: Client, out: Output) -> int:
    """Follows WatchMigration to a terminal state."""
    name = await names.migration(args.migration, client)
    stream = stub(client).WatchMigration(
        pb.WatchMigrationRequest(name=name), metadata=await client.metadata(), timeout=args.timeout
    )
    display = ProgressDisplay(out)
    last: migration_pb2.WatchMigrationResponse | None = None
    try:
        async for event in stream:
            last = event
            migration = event.migration
            if out.json_mode:
                out.json(as_json(event))
                continue
            status = status_label(migration.status)
            kind = enum_label(pb.MigrationEventType.Name(event.event_type), EVENT_PREFIX)
            done = percent(migration.progress)
            plain = f"{when(migration.update_time)}  {kind:<16} {status:<10} {done:>6}"
            display.update(status, migration.progress, done, plain)
    finally:
        display.finish()
    if last is None:
        raise CliError("the watch ended before the first event", ExitCode.UNAVAILABLE)
    return _outcome(last, out)


def _outcome(event: migration_pb2.WatchMigrationResponse, out: Output) -> int:
    migration = event.migration
    if event.event_type == pb.MIGRATION_EVENT_TYPE_DELETED:
        out.note(f"{migration.name} was deleted")
        return ExitCode.NEGATIVE
    if migration.status not in TERMINAL:
        raise CliError(
            f"the watch ended while {migration.name} is {status_label(migration.status)}"
            " (the server went away?); run the watch again",
            ExitCode.UNAVAILABLE,
        )
    status = status_label(migration.status)
    if not out.json_mode:
        detail = f": {migration.failure_reason}" if migration.failure_reason else ""
        out.line(f"{migration.name} {status}{detail}")
    return ExitCode.OK if migration.status == pb.MIGRATION_STATUS_COMPLETED else ExitCode.NEGATIVE
