"""Verifications under the destination policy, over gRPC: a ROW_COUNT or CHECKSUM pointed at
the platform's own server ends in ERROR without reading it, and every unreachable database
ends with the same generic result (no exception class, no server text)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from google.protobuf import json_format

from sensei.verification.v1 import verification_pb2 as pb
from tests.conftest import Cluster
from tests.harness import Suite
from tests.harness.fake_servers import closed_port, fake_http, fake_postgres
from tests.verification.conftest import (
    Stack,
    connection_config,
    create_migration,
    start_stack,
)

MakeDatabase = Callable[[], Awaitable[str]]


async def _finished_result(stack: Stack, source: dict[str, Any], verification_type: int) -> Any:
    target = connection_config(stack.target_dsn)
    migration = await create_migration(stack.suite, stack.owner, source, target)
    created = await stack.create(verification_type, migration=migration)
    done = await stack.finished(created.name)
    assert done.status == pb.VERIFICATION_STATUS_ERROR and not done.certificate_id
    return json_format.MessageToDict(done.result)


async def test_the_platform_server_is_never_compared(stack: Stack) -> None:
    parts = urlsplit(stack.suite.database_url)
    for host in ("127.0.0.1", "localhost", "::1"):
        platform = {"host": host, "port": parts.port or 5432, "database": parts.path[1:]}
        for kind in (pb.VERIFICATION_TYPE_ROW_COUNT, pb.VERIFICATION_TYPE_CHECKSUM):
            result = await _finished_result(stack, platform, kind)
            assert result["reason"] == "DESTINATION_NOT_ALLOWED"
            assert "tables" not in result and "api_keys" not in json.dumps(result)


async def test_every_unreachable_source_gets_the_same_result(
    suite: Suite, sample_postgres: Cluster, make_sample_database: MakeDatabase
) -> None:
    async with fake_postgres() as fake, fake_http() as http:
        refused = closed_port()
        allowed = ",".join(
            [
                sample_postgres.destination,
                *(f"127.0.0.1:{p}" for p in (fake.port, http.port, refused)),
            ]
        )
        stack = await start_stack(
            suite, make_sample_database, {"SENSEI_ALLOWED_DESTINATIONS": allowed}
        )
        sample = urlsplit(stack.source_dsn)
        sources = {
            "refused": {"host": "127.0.0.1", "port": refused, "database": "x"},
            "http": {"host": "127.0.0.1", "port": http.port, "database": "x"},
            "wrong password": {"host": "127.0.0.1", "port": fake.port, "password": "wrong"},
            "no such database": {"host": "127.0.0.1", "port": sample.port, "database": "nope"},
        }
        results = {
            label: await _finished_result(stack, source, pb.VERIFICATION_TYPE_ROW_COUNT)
            for label, source in sources.items()
        }
        assert fake.passwords == ["wrong"]
    texts = {json.dumps(result, sort_keys=True) for result in results.values()}
    assert len(texts) == 1, results
    (result,) = {json.dumps(r, sort_keys=True): r for r in results.values()}.values()
    assert result["reason"] == "SOURCE_UNREACHABLE" and result["side"] == "source"
    for leak in ("Error", "refused", "HTTP", "nope", "password authentication"):
        assert leak not in result["error"]
