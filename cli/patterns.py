"""`sensei patterns search TEXT`: learned migration patterns most like a description.

`patterns upsert|delete|reindex` change the platform-wide catalog: only platform principals
may, so run them with `--as-operator` (or logged in with the operator's key).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from google.protobuf import struct_pb2

from cli import names
from cli.client import Client
from cli.commands import SubParsers
from cli.errors import CliError, ExitCode
from cli.output import Output, as_json, count, percent
from sensei.pattern.v1 import pattern_pb2, pattern_pb2_grpc

pb = pattern_pb2


def register(commands: SubParsers, common: argparse.ArgumentParser) -> None:
    """Adds `patterns search`, and the operator's `upsert`, `delete` and `reindex`."""
    group = commands.add_parser("patterns", help="search learned migration patterns")
    verbs = group.add_subparsers(dest="verb", required=True, metavar="COMMAND")
    search = verbs.add_parser(
        "search",
        parents=[common],
        help="patterns most similar to a text, proven ones first",
    )
    search.add_argument("text", help="what the transformation does, in words")
    search.add_argument("--type", default="", help="only patterns of this type")
    search.add_argument("--top-k", type=int, default=0, help="how many (default 10, at most 100)")
    search.add_argument(
        "--min-similarity", type=float, help="drop matches below this cosine similarity"
    )
    search.set_defaults(handler=run_search)

    upsert = verbs.add_parser(
        "upsert",
        parents=[common],
        help="create or update a pattern by fingerprint (platform operator)",
    )
    upsert.add_argument("fingerprint", help="the pattern's fingerprint (its unique key)")
    upsert.add_argument("--type", default="", help="the pattern type (needed to create)")
    upsert.add_argument(
        "--text", default="", help="text or DDL the service embeds (needed to create)"
    )
    upsert.add_argument("--metadata", default="", help="a JSON object stored with the pattern")
    upsert.set_defaults(handler=run_upsert)

    delete = verbs.add_parser(
        "delete", parents=[common], help="delete a pattern (platform operator)"
    )
    delete.add_argument("name", help="the pattern: patterns/{id} or the id")
    delete.add_argument("--etag", default="", help="delete only if it is still this version")
    delete.set_defaults(handler=run_delete)

    reindex = verbs.add_parser(
        "reindex",
        parents=[common],
        help="rebuild the vector index from PostgreSQL (platform operator)",
    )
    reindex.set_defaults(handler=run_reindex)


async def run_search(args: argparse.Namespace, client: Client, out: Output) -> int:
    """SearchPatterns by text; a ranked table."""
    if not args.text.strip():
        raise CliError("give the text to search for", ExitCode.USAGE)
    request = pb.SearchPatternsRequest(text=args.text, type=args.type, top_k=args.top_k)
    if args.min_similarity is not None:
        request.min_similarity = args.min_similarity
    stub = pattern_pb2_grpc.PatternServiceStub(client.channel("pattern"))
    response = await stub.SearchPatterns(
        request, metadata=await client.metadata(), timeout=client.timeout
    )
    if out.json_mode:
        out.json(as_json(response))
        return ExitCode.OK
    out.table(
        ["#", "SIMILARITY", "SUCCESS", "RUNS", "TYPE", "FINGERPRINT", "NAME"],
        [
            (
                rank,
                f"{result.similarity:.3f}",
                percent(result.success_rate),
                result.pattern.success_count + result.pattern.failure_count,
                result.pattern.type,
                result.pattern.fingerprint,
                result.pattern.name,
            )
            for rank, result in enumerate(response.results, start=1)
        ],
    )
    return ExitCode.OK


def _stub(client: Client) -> pattern_pb2_grpc.PatternServiceStub:
    return pattern_pb2_grpc.PatternServiceStub(client.channel("pattern"))


async def run_upsert(args: argparse.Namespace, client: Client, out: Output) -> int:
    """UpsertPattern with a text the service embeds."""
    request = pb.UpsertPatternRequest(fingerprint=args.fingerprint, type=args.type)
    if args.text:
        request.text = args.text
    if args.metadata:
        try:
            metadata = json.loads(args.metadata)
        except ValueError as exc:
            raise CliError(f"--metadata is not JSON: {exc}", ExitCode.USAGE) from None
        if not isinstance(metadata, dict):
            raise CliError("--metadata must be a JSON object", ExitCode.USAGE)
        request.metadata.CopyFrom(_struct(metadata))
    response = await _stub(client).UpsertPattern(
        request, metadata=await client.metadata(), timeout=client.timeout
    )
    if out.json_mode:
        out.json(as_json(response))
        return ExitCode.OK
    out.fields(
        [
            ("pattern", response.pattern.name),
            ("fingerprint", response.pattern.fingerprint),
            ("type", response.pattern.type),
            ("created", "yes" if response.created else "no (updated)"),
        ]
    )
    return ExitCode.OK


async def run_delete(args: argparse.Namespace, client: Client, out: Output) -> int:
    """DeletePattern."""
    name = names.pattern(args.name)
    await _stub(client).DeletePattern(
        pb.DeletePatternRequest(name=name, etag=args.etag),
        metadata=await client.metadata(),
        timeout=client.timeout,
    )
    if out.json_mode:
        out.json({"deleted": name})
    else:
        out.line(f"deleted {name}")
    return ExitCode.OK


async def run_reindex(args: argparse.Namespace, client: Client, out: Output) -> int:
    """ReindexPatterns, printing each progress message."""
    last = pb.ReindexPatternsResponse()
    async for progress in _stub(client).ReindexPatterns(
        pb.ReindexPatternsRequest(), metadata=await client.metadata(), timeout=args.timeout
    ):
        last = progress
        if not out.json_mode:
            phase = pb.ReindexPhase.Name(progress.phase).removeprefix("REINDEX_PHASE_")  # type: ignore[arg-type]
            out.note(f"{phase.lower()}: {progress.indexed_count}/{progress.total_count}")
    if out.json_mode:
        out.json(as_json(last))
    else:
        out.line(f"reindexed {last.indexed_count} of {count(last.total_count, 'pattern')}")
    return ExitCode.OK


def _struct(value: dict[str, Any]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(value)
    return message
