"""`sensei verifications create|list|get|watch`."""

from __future__ import annotations

import argparse
import uuid
from typing import cast

from cli import names
from cli.client import Client
from cli.commands import SubParsers, enum_choice
from cli.errors import CliError, ExitCode
from cli.output import Output, ProgressDisplay, as_json, enum_label, when
from sensei.verification.v1 import verification_pb2, verification_pb2_grpc

pb = verification_pb2
TYPE_PREFIX = "VERIFICATION_TYPE_"
STATUS_PREFIX = "VERIFICATION_STATUS_"
TYPES = [
    enum_label(n, TYPE_PREFIX)
    for n in pb.VerificationType.DESCRIPTOR.values_by_name
    if not n.endswith("UNSPECIFIED")
]
STATUSES = [
    enum_label(n, STATUS_PREFIX)
    for n in pb.VerificationStatus.DESCRIPTOR.values_by_name
    if not n.endswith("UNSPECIFIED")
]
TERMINAL = {
    pb.VERIFICATION_STATUS_PASSED,
    pb.VERIFICATION_STATUS_FAILED,
    pb.VERIFICATION_STATUS_ERROR,
}


def register(commands: SubParsers, common: argparse.ArgumentParser) -> None:
    """Adds `verifications` and its subcommands."""
    group = commands.add_parser("verifications", help="run, show and watch verifications")
    verbs = group.add_subparsers(dest="verb", required=True, metavar="COMMAND")

    create = verbs.add_parser(
        "create",
        parents=[common],
        help="queue a verification of a migration",
        description="Queues a verification; --watch follows it to the end (exit codes of watch).",
    )
    create.add_argument(
        "migration", help="organizations/{org}/migrations/{id}, migrations/{id} or id"
    )
    create.add_argument(
        "--type", required=True, type=enum_choice(TYPES), help=f"one of {', '.join(TYPES)}"
    )
    create.add_argument(
        "--table",
        action="append",
        default=[],
        dest="tables",
        metavar="TABLE",
        help="verify only this table (schema.table); repeatable; default: every table",
    )
    create.add_argument(
        "--request-id", default="", help="idempotency key (default: a new UUID per call)"
    )
    create.add_argument("--watch", action="store_true", help="then follow it until it finishes")
    create.set_defaults(handler=run_create)

    listing = verbs.add_parser("list", parents=[common], help="list verifications of a migration")
    listing.add_argument("migration", help="a migration, or `-` for every migration")
    listing.add_argument("--type", type=enum_choice(TYPES), help="only this type")
    listing.add_argument("--status", type=enum_choice(STATUSES), help="only this status")
    listing.set_defaults(handler=run_list)

    get = verbs.add_parser("get", parents=[common], help="show one verification")
    get.add_argument("verification", help="[organizations/{org}/]migrations/{m}/verifications/{id}")
    get.set_defaults(handler=run_get)

    watch = verbs.add_parser(
        "watch",
        parents=[common],
        help="follow a verification live until it finishes",
        description=(
            "Streams WatchVerification: a progress bar of tables done on a terminal, one line "
            "per change otherwise (JSON objects with --json). Exits 0 when it PASSED, 1 when "
            "it FAILED or ended in ERROR."
        ),
    )
    watch.add_argument(
        "verification", help="[organizations/{org}/]migrations/{m}/verifications/{id}"
    )
    watch.set_defaults(handler=run_watch)


def _stub(client: Client) -> verification_pb2_grpc.VerificationServiceAsyncStub:
    return cast(
        "verification_pb2_grpc.VerificationServiceAsyncStub",
        verification_pb2_grpc.VerificationServiceStub(client.channel("verification")),
    )


def status_label(status: int) -> str:
    """`PASSED` for VERIFICATION_STATUS_PASSED."""
    return enum_label(pb.VerificationStatus.Name(status), STATUS_PREFIX)  # type: ignore[arg-type]


def type_label(kind: int) -> str:
    """`CHECKSUM` for VERIFICATION_TYPE_CHECKSUM."""
    return enum_label(pb.VerificationType.Name(kind), TYPE_PREFIX)  # type: ignore[arg-type]


def _progress(verification: verification_pb2.Verification) -> str:
    progress = verification.progress
    if progress.tables_total:
        return f"{progress.tables_done}/{progress.tables_total} tables"
    return "queued" if verification.status == pb.VERIFICATION_STATUS_PENDING else ""


def show(verification: verification_pb2.Verification, out: Output) -> None:
    """Prints a verification as fields (or JSON)."""
    if out.json_mode:
        out.json(as_json(verification))
        return
    result = as_json(verification.result)
    finished = verification.status in TERMINAL
    out.fields(
        [
            ("name", verification.name),
            ("type", type_label(verification.type)),
            ("status", status_label(verification.status)),
            ("progress", _progress(verification)),
            ("score", f"{verification.score:.3f}" if finished else ""),
            ("checks", _checks(result)),
            ("error", _error(result)),
            ("tables", ", ".join(verification.tables)),
            ("certificate", verification.certificate),
            ("created", when(verification.create_time)),
            ("started", when(verification.start_time)),
            ("finished", when(verification.finish_time)),
        ]
    )


def _checks(result: dict[str, object]) -> str:
    if "checks_total" not in result:
        return ""
    return f"{result.get('checks_passed', 0)} of {result['checks_total']} matched"


def _error(result: dict[str, object]) -> str:
    if "error" not in result:
        return ""
    reason = f" [{result['reason']}]" if result.get("reason") else ""
    return f"{result['error']}{reason}"


async def run_create(args: argparse.Namespace, client: Client, out: Output) -> int:
    """Queues a verification (and maybe watches it)."""
    parent = await names.migration(args.migration, client)
    response = await _stub(client).CreateVerification(
        pb.CreateVerificationRequest(
            parent=parent,
            verification=pb.Verification(
                type=pb.VerificationType.Value(TYPE_PREFIX + args.type),  # type: ignore[arg-type]
                tables=args.tables,
            ),
            # A retry of this one command must not queue a second verification.
            request_id=args.request_id or str(uuid.uuid4()),
        ),
        metadata=await client.metadata(),
        timeout=client.timeout,
    )
    created = response.verification
    if not args.watch:
        show(created, out)
        return ExitCode.OK
    if not out.json_mode:
        out.line(f"queued {created.name}")
    return await watch(created.name, args, client, out)


async def run_list(args: argparse.Namespace, client: Client, out: Output) -> int:
    """Lists every page of a migration's verifications."""
    parent = await names.migration(args.migration, client, any_allowed=True)
    request = pb.ListVerificationsRequest(
        parent=parent,
        type=pb.VerificationType.Value(TYPE_PREFIX + args.type) if args.type else 0,  # type: ignore[arg-type]
        status=pb.VerificationStatus.Value(STATUS_PREFIX + args.status) if args.status else 0,  # type: ignore[arg-type]
    )
    found: list[verification_pb2.Verification] = []
    stub = _stub(client)
    while True:
        response = await stub.ListVerifications(
            request, metadata=await client.metadata(), timeout=client.timeout
        )
        found.extend(response.verifications)
        if not response.next_page_token:
            break
        request.page_token = response.next_page_token
    if out.json_mode:
        out.json({"verifications": [as_json(v) for v in found]})
        return ExitCode.OK
    out.table(
        ["NAME", "TYPE", "STATUS", "SCORE", "CREATED"],
        [
            (
                v.name.split("/", 2)[2],
                type_label(v.type),
                status_label(v.status),
                f"{v.score:.3f}" if v.status in TERMINAL else "",
                when(v.create_time),
            )
            for v in found
        ],
    )
    return ExitCode.OK


async def run_get(args: argparse.Namespace, client: Client, out: Output) -> int:
    """Shows one verification."""
    name = await names.verification(args.verification, client)
    response = await _stub(client).GetVerification(
        pb.GetVerificationRequest(name=name),
        metadata=await client.metadata(),
        timeout=client.timeout,
    )
    show(response.verification, out)
    return ExitCode.OK


async def run_watch(args: argparse.Namespace, client: Client, out: Output) -> int:
    """Follows a verification to its end."""
    return await watch(await names.verification(args.verification, client), args, client, out)


async def watch(name: str, args: argparse.Namespace, client: Client, out: Output) -> int:
    """Streams WatchVerification with a progress bar of tables done; exit code by outcome."""
    stream = _stub(client).WatchVerification(
        pb.WatchVerificationRequest(name=name),
        metadata=await client.metadata(),
        timeout=args.timeout,
    )
    display = ProgressDisplay(out)
    last: verification_pb2.Verification | None = None
    try:
        async for message in stream:
            last = verification = message.verification
            if out.json_mode:
                out.json(as_json(verification))
                continue
            progress = verification.progress
            total = progress.tables_total
            fraction = progress.tables_done / total if total else 0.0
            if verification.status in TERMINAL:
                fraction = 1.0
            status = status_label(verification.status)
            detail = _progress(verification)
            display.update(
                status, fraction, detail, f"{when(verification.update_time)}  {status:<8} {detail}"
            )
    finally:
        display.finish()
    if last is None:
        raise CliError("the watch ended before the first event", ExitCode.UNAVAILABLE)
    if last.status not in TERMINAL:
        raise CliError(
            f"the watch ended while {name} is {status_label(last.status)}; run it again",
            ExitCode.UNAVAILABLE,
        )
    if not out.json_mode:
        status = status_label(last.status)
        if last.status == pb.VERIFICATION_STATUS_ERROR:
            out.line(f"{status}: {_error(as_json(last.result))}")
        else:
            out.line(f"{status}  score {last.score:.3f}  certificate {last.certificate}")
    return ExitCode.OK if last.status == pb.VERIFICATION_STATUS_PASSED else ExitCode.NEGATIVE
