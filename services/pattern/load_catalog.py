"""`python -m services.pattern.load_catalog`: writes the starter catalog into a running suite.

Idempotent: each pattern goes through UpsertPattern by its fingerprint (one transaction per
pattern in the pattern service), so a second run changes nothing, and a run after the
catalog (or the embedder) changed updates what changed. Writing patterns is a platform
principal's right: the command signs in with a service account's API key
(`SENSEI_SERVICE_API_KEY`, or `--api-key-env` naming another variable, e.g.
`SENSEI_OPERATOR_API_KEY`) at the org service (`SENSEI_ORG_ADDR`) and calls the pattern
service (`SENSEI_PATTERN_ADDR`). Retries UNAVAILABLE for `--wait-seconds` (default 60), so
a bootstrap job may start alongside the services.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import struct_pb2

from sensei.pattern.v1 import pattern_pb2, pattern_pb2_grpc
from services.pattern import catalog
from services.pattern.catalog import CatalogPattern
from shared import client
from shared.config import DEFAULT_PORTS
from shared.credentials import ServiceCredentials
from shared.errors import Unavailable


@dataclass(frozen=True)
class LoadReport:
    """What a load did: patterns created, updated, and already as in the catalog."""

    created: int
    updated: int
    unchanged: int


async def load_catalog(
    pattern_address: str,
    credentials: ServiceCredentials,
    patterns: Sequence[CatalogPattern],
    *,
    wait_seconds: float = 60.0,
) -> LoadReport:
    """Upserts every pattern (sequentially: a catalog is small) and reports what changed."""
    created = updated = unchanged = 0
    async with client.channel(pattern_address) as channel:
        stub = pattern_pb2_grpc.PatternServiceStub(channel)
        calls = _Calls(stub, credentials, time.monotonic() + wait_seconds)
        for pattern in patterns:
            before = await calls.etag_of(pattern.fingerprint)
            response = await calls.upsert(pattern)
            if response.created:
                created += 1
            elif response.pattern.etag != before:
                updated += 1
            else:
                unchanged += 1
    return LoadReport(created, updated, unchanged)


@dataclass(frozen=True)
class _Calls:
    """The two RPCs a load makes, retried while the suite is still starting."""

    stub: pattern_pb2_grpc.PatternServiceStub
    credentials: ServiceCredentials
    deadline: float

    async def etag_of(self, fingerprint: str) -> str:
        """The pattern's current etag; "" when it does not exist yet."""
        request = pattern_pb2.GetPatternRequest(fingerprint=fingerprint)
        try:
            response = await self._retried(self.stub.GetPattern, request)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return ""
            raise
        return str(response.pattern.etag)

    async def upsert(self, pattern: CatalogPattern) -> pattern_pb2.UpsertPatternResponse:
        """UpsertPattern of one catalog entry, by its fingerprint."""
        metadata = struct_pb2.Struct()
        metadata.update(dict(pattern.metadata))
        request = pattern_pb2.UpsertPatternRequest(
            fingerprint=pattern.fingerprint, type=pattern.type, text=pattern.text, metadata=metadata
        )
        response: pattern_pb2.UpsertPatternResponse = await self._retried(
            self.stub.UpsertPattern, request
        )
        return response

    async def _retried(self, method: Any, request: Any) -> Any:
        while True:
            try:
                return await method(request, metadata=await self.credentials.metadata(), timeout=10)
            except (grpc.aio.AioRpcError, Unavailable) as exc:
                starting = not isinstance(exc, grpc.aio.AioRpcError) or (
                    exc.code() == grpc.StatusCode.UNAVAILABLE
                )
                if not starting or time.monotonic() > self.deadline:
                    raise
                await asyncio.sleep(1.0)  # waiting for a service that is starting


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command; prints what it did."""
    parser = argparse.ArgumentParser(prog="python -m services.pattern.load_catalog")
    parser.add_argument("--catalog", type=Path, default=catalog.STARTER, help="catalog file")
    parser.add_argument(
        "--api-key-env",
        default="SENSEI_SERVICE_API_KEY",
        help="environment variable holding a platform principal's API key",
    )
    parser.add_argument("--wait-seconds", type=float, default=60.0)
    options = parser.parse_args(argv)
    api_key = os.environ.get(options.api_key_env, "")
    if not api_key:
        print(f"load_catalog: {options.api_key_env} is not set", file=sys.stderr)
        return 2
    org = os.environ.get("SENSEI_ORG_ADDR", f"127.0.0.1:{DEFAULT_PORTS['org']}")
    pattern = os.environ.get("SENSEI_PATTERN_ADDR", f"127.0.0.1:{DEFAULT_PORTS['pattern']}")
    patterns = catalog.load(options.catalog)

    async def run() -> LoadReport:
        credentials = ServiceCredentials(org, api_key)
        try:
            return await load_catalog(
                pattern, credentials, patterns, wait_seconds=options.wait_seconds
            )
        finally:
            await credentials.close()

    report = asyncio.run(run())
    print(
        f"catalog {options.catalog.name}: {report.created} created, {report.updated} updated,"
        f" {report.unchanged} unchanged",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
