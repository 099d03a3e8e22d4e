"""`sensei patterns search TEXT`: learned migration patterns most like a description."""

from __future__ import annotations

import argparse

from cli.client import Client
from cli.commands import SubParsers
from cli.errors import CliError, ExitCode
from cli.output import Output, as_json, percent
from sensei.pattern.v1 import pattern_pb2, pattern_pb2_grpc

pb = pattern_pb2


def register(commands: SubParsers, common: argparse.ArgumentParser) -> None:
    """Adds `patterns search`."""
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
