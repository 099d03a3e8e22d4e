"""Verifications end to end: real org, migration and verification services, real databases."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import asyncpg
import grpc
import pytest
from google.protobuf import json_format

from sensei.verification.v1 import verification_pb2, verification_pb2_grpc
from services.verification import offline
from services.verification.envelope import canonical_digest
from shared import config as config_module
from shared.server import start
from tests.harness.suite import definition_of
from tests.verification.conftest import Stack, connection_config, create_migration

pb = verification_pb2
RUNNING = pb.VERIFICATION_STATUS_RUNNING

ORDERS = """
CREATE TABLE orders (
    id bigint PRIMARY KEY,
    customer text NOT NULL,
    amount numeric(12, 2),
    placed timestamptz NOT NULL
);
INSERT INTO orders
SELECT i, 'customer-' || (i % 97), (i % 1000) / 10.0,
       timestamptz '2024-01-01 00:00:00+00' + i * interval '1 minute'
FROM generate_series(1, {rows}) AS i;
"""


def result_of(verification: verification_pb2.Verification) -> dict[str, object]:
    """The result Struct as a dict."""
    result: dict[str, object] = json_format.MessageToDict(verification.result)
    return result


async def test_identical_databases_pass_with_a_valid_certificate(
    stack: Stack, tmp_path: Path
) -> None:
    await stack.run_sql(ORDERS.format(rows=1000))

    done = await stack.run(pb.VERIFICATION_TYPE_CHECKSUM)

    assert done.status == pb.VERIFICATION_STATUS_PASSED
    assert done.score == 1.0
    assert (done.progress.tables_done, done.progress.tables_total) == (1, 1)
    certificate = (
        await stack.verifications.GetCertificate(
            pb.GetCertificateRequest(name=done.certificate), metadata=stack.owner.metadata
        )
    ).certificate
    assert certificate.id == done.certificate_id
    assert certificate.verification == done.name
    assert certificate.result_digest == canonical_digest(result_of(done))
    verdict = await stack.verifications.VerifyCertificate(
        pb.VerifyCertificateRequest(envelope=certificate.envelope)
    )
    assert verdict.validity == pb.CERTIFICATE_VALIDITY_VALID
    keys = await stack.verifications.ListSigningKeys(pb.ListSigningKeysRequest())
    jwks = {"keys": [json_format.MessageToDict(key.jwk) for key in keys.signing_keys]}
    (tmp_path / "cert.json").write_bytes(certificate.envelope)
    (tmp_path / "jwks.json").write_text(json.dumps(jwks))
    arguments = ["verify-certificate", str(tmp_path / "cert.json"), "--keys"]
    assert offline.main([*arguments, str(tmp_path / "jwks.json")]) == 0


async def test_changed_missing_and_extra_rows_fail_with_exactly_those_keys(stack: Stack) -> None:
    await stack.run_sql(ORDERS.format(rows=100_000))
    await stack.run_sql(
        "SELECT 1",
        "UPDATE orders SET customer = 'someone else' WHERE id = 45678;"
        " DELETE FROM orders WHERE id = 777;"
        " INSERT INTO orders VALUES (100001, 'new', 1.00, '2025-01-01 00:00:00+00');",
    )

    done = await stack.run(pb.VERIFICATION_TYPE_CHECKSUM)

    assert done.status == pb.VERIFICATION_STATUS_FAILED
    assert done.score == 0.0
    assert done.certificate_id, "a FAILED verification is certified too"
    (table,) = result_of(done)["tables"]  # type: ignore[misc]
    assert table["table"] == "public.orders"
    assert table["status"] == "MISMATCH"
    assert table["changed"] == [["45678"]]
    assert table["missing_in_target"] == [["777"]]
    assert table["extra_in_target"] == [["100001"]]
    assert (table["source_rows"], table["target_rows"]) == (100_000, 100_000)


async def test_a_table_without_primary_key_is_reported(stack: Stack) -> None:
    await stack.run_sql(
        "CREATE TABLE events (at timestamptz, what text);"
        " INSERT INTO events VALUES ('2025-01-01', 'created'), ('2025-01-02', 'moved');"
        + ORDERS.format(rows=10)
    )
    await stack.run_sql("SELECT 1", "INSERT INTO events VALUES ('2025-01-03', 'extra')")

    done = await stack.run(pb.VERIFICATION_TYPE_CHECKSUM)

    assert done.status == pb.VERIFICATION_STATUS_FAILED
    assert done.score == 0.5
    tables = {t["table"]: t for t in result_of(done)["tables"]}  # type: ignore[attr-defined]
    events = tables["public.events"]
    assert events["status"] == "NO_PRIMARY_KEY"
    assert events["content_matched"] is False
    assert (events["source_rows"], events["target_rows"]) == (2, 3)
    assert "no primary key" in events["detail"]
    assert tables["public.orders"]["status"] == "MATCH"


async def test_row_counts_are_compared_per_table(stack: Stack) -> None:
    await stack.run_sql(ORDERS.format(rows=50) + "CREATE TABLE notes (id int PRIMARY KEY);")
    await stack.run_sql("SELECT 1", "INSERT INTO notes VALUES (1), (2)")

    done = await stack.run(pb.VERIFICATION_TYPE_ROW_COUNT)

    assert done.status == pb.VERIFICATION_STATUS_FAILED
    assert done.score == 0.5
    assert done.certificate_id
    counts = {
        t["table"]: (t["source_rows"], t["target_rows"], t["matched"])
        for t in result_of(done)["tables"]  # type: ignore[attr-defined]
    }
    assert counts == {"public.notes": (0, 2, False), "public.orders": (50, 50, True)}


async def test_only_the_requested_tables_are_verified(stack: Stack) -> None:
    await stack.run_sql(ORDERS.format(rows=5) + "CREATE TABLE notes (id int PRIMARY KEY);")
    await stack.run_sql("SELECT 1", "INSERT INTO notes VALUES (1)")

    done = await stack.run(pb.VERIFICATION_TYPE_ROW_COUNT, ("orders",))

    assert done.status == pb.VERIFICATION_STATUS_PASSED
    assert list(done.tables) == ["public.orders"]
    assert [t["table"] for t in result_of(done)["tables"]] == ["public.orders"]  # type: ignore[attr-defined]


async def test_schema_parity_scores_matching_objects(stack: Stack) -> None:
    await stack.run_sql(
        "CREATE TABLE users (id int PRIMARY KEY, name text, email text);",
        "CREATE TABLE users (id int PRIMARY KEY, name text);"
        " CREATE INDEX users_name_idx ON users (name);",
    )

    done = await stack.run(pb.VERIFICATION_TYPE_SCHEMA_PARITY)

    assert done.status == pb.VERIFICATION_STATUS_FAILED
    result = result_of(done)
    # table, id, name, email, primary key, index: 4 on both sides unchanged.
    assert (result["checks_passed"], result["checks_total"]) == (4, 6)
    assert done.score == 4 / 6
    differences = {(d["kind"], d["path"]) for d in result["differences"]}  # type: ignore[attr-defined]
    assert differences == {
        ("REMOVED", "tables/public.users/columns/email"),
        ("ADDED", "tables/public.users/indexes/users_name_idx"),
    }
    certificate = (
        await stack.verifications.GetCertificate(
            pb.GetCertificateRequest(name=done.certificate), metadata=stack.owner.metadata
        )
    ).certificate
    assert certificate.source_schema_fingerprint == result["source_fingerprint"]
    assert certificate.target_schema_fingerprint == result["target_fingerprint"]
    assert certificate.source_schema_fingerprint != certificate.target_schema_fingerprint


async def test_identical_schemas_pass_schema_parity(stack: Stack) -> None:
    await stack.run_sql("CREATE TABLE users (id int PRIMARY KEY, name text UNIQUE);")

    done = await stack.run(pb.VERIFICATION_TYPE_SCHEMA_PARITY)

    assert done.status == pb.VERIFICATION_STATUS_PASSED
    assert done.score == 1.0
    assert result_of(done)["differences"] == []


async def test_a_destination_the_policy_refuses_ends_in_error(stack: Stack) -> None:
    target = connection_config(stack.target_dsn) | {"port": 1}
    migration = await create_migration(
        stack.suite, stack.owner, connection_config(stack.source_dsn), target
    )

    created = await stack.create(pb.VERIFICATION_TYPE_ROW_COUNT, migration=migration)
    done = await stack.finished(created.name)

    assert done.status == pb.VERIFICATION_STATUS_ERROR
    assert not done.certificate_id
    result = result_of(done)
    # Loopback other than the allowed sample server: refused before any connection.
    assert result["reason"] == "DESTINATION_NOT_ALLOWED"
    assert result["side"] == "target"


async def test_watchers_on_any_replica_see_running_and_the_terminal_state(
    stack: Stack,
) -> None:
    await stack.run_sql(ORDERS.format(rows=100))
    # A second replica without workers: its watcher learns of changes only through NOTIFY.
    replica = await start(
        definition_of("verification"),
        config_module.load(
            "verification",
            stack.suite.service_env(
                "verification",
                {"SENSEI_VERIFICATION_PORT": "0", "SENSEI_VERIFICATION_WORKERS": "0"},
            ),
        ),
    )
    blocker = await asyncpg.connect(stack.source_dsn)
    try:
        async with grpc.aio.insecure_channel(replica.address) as channel:
            # Hold the table so the check stays RUNNING until every watcher has seen it.
            blocking = blocker.transaction()
            await blocking.start()
            await blocker.execute("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE")
            created = await stack.create(pb.VERIFICATION_TYPE_CHECKSUM)
            request = pb.WatchVerificationRequest(name=created.name)
            streams = [
                stack.verifications.WatchVerification(request, metadata=stack.owner.metadata),
                stack.verifications.WatchVerification(request, metadata=stack.owner.metadata),
                verification_pb2_grpc.VerificationServiceStub(channel).WatchVerification(
                    request, metadata=stack.owner.metadata
                ),
            ]
            seen: list[list[verification_pb2.Verification]] = [[] for _ in streams]
            async with asyncio.timeout(30):
                for index, stream in enumerate(streams):
                    while not seen[index] or seen[index][-1].status != RUNNING:
                        seen[index].append((await stream.read()).verification)
                await blocking.commit()
                for index, stream in enumerate(streams):
                    while (message := await stream.read()) != grpc.aio.EOF:
                        seen[index].append(message.verification)
    finally:
        await blocker.close()
        await replica.stop(0.1)

    for states in seen:
        statuses = [state.status for state in states]
        assert RUNNING in statuses
        assert statuses[-1] == pb.VERIFICATION_STATUS_PASSED
        assert statuses.count(pb.VERIFICATION_STATUS_PASSED) == 1
        assert states[-1].certificate_id
        assert states[-1].progress.tables_done == 1
        times = [state.update_time.ToNanoseconds() for state in states]
        assert times == sorted(times)


async def test_watching_an_unknown_verification_is_not_found(stack: Stack) -> None:
    missing = f"{stack.migration}/verifications/{uuid.uuid4()}"
    stream = stack.verifications.WatchVerification(
        pb.WatchVerificationRequest(name=missing), metadata=stack.owner.metadata
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stream.read()
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
