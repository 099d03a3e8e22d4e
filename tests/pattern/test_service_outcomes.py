"""RecordPatternOutcome over a real channel: once per (pattern, migration), exact counts
under concurrency, request ids, and the migration checked with the migration service."""

from __future__ import annotations

import asyncio
import uuid

import grpc

from sensei.pattern.v1 import pattern_pb2
from tests.harness import Suite, bad_request_fields, error_info

from .conftest import Deployment, deploy, eventually, rpc_error, unique, vector

SUCCESS = pattern_pb2.PATTERN_OUTCOME_SUCCESS
FAILURE = pattern_pb2.PATTERN_OUTCOME_FAILURE


def outcome(
    name: str, result: int, migration: str, request_id: str = ""
) -> pattern_pb2.RecordPatternOutcomeRequest:
    return pattern_pb2.RecordPatternOutcomeRequest(
        name=name,
        outcome=result,  # type: ignore[arg-type]
        request_id=request_id,
        migration=migration,
    )


async def test_hundred_parallel_outcomes_of_distinct_migrations_count_exactly(
    deployment: Deployment,
) -> None:
    created = (await deployment.upsert(unique("parallel"), values=vector(1.0))).pattern
    migrations = await asyncio.gather(*(deployment.migration() for _ in range(100)))
    calls = [
        deployment.stub.RecordPatternOutcome(
            outcome(created.name, SUCCESS if i % 5 else FAILURE, migrations[i]),
            metadata=(deployment.service if i % 2 else deployment.admin).metadata,
        )
        for i in range(100)
    ]
    await asyncio.gather(*calls)
    counted = await deployment.get(created.name)
    assert (counted.success_count, counted.failure_count) == (80, 20)
    assert counted.success_rate == 0.8


async def test_outcome_returns_the_updated_pattern(deployment: Deployment) -> None:
    created = (await deployment.upsert(unique("updated"), values=vector(1.0))).pattern
    response = await deployment.stub.RecordPatternOutcome(
        pattern_pb2.RecordPatternOutcomeRequest(
            fingerprint=created.fingerprint,
            outcome=FAILURE,
            migration=await deployment.migration(),
        ),
        metadata=deployment.service.metadata,
    )
    assert (response.pattern.success_count, response.pattern.failure_count) == (0, 1)
    assert response.pattern.etag != created.etag


async def test_outcome_counts_once_per_pattern_and_migration(deployment: Deployment) -> None:
    created = (await deployment.upsert(unique("pair"), values=vector(1.0))).pattern
    migration = await deployment.migration()
    member = await deployment.suite.user("MEMBER")
    # The same member repeating itself, concurrently and again later: counted once.
    responses = await asyncio.gather(
        *(
            deployment.stub.RecordPatternOutcome(
                outcome(created.name, SUCCESS, migration), metadata=member.metadata
            )
            for _ in range(10)
        )
    )
    assert {response.pattern.success_count for response in responses} == {1}
    again = await deployment.stub.RecordPatternOutcome(
        outcome(created.name, SUCCESS, migration, request_id=unique("req")),
        metadata=deployment.admin.metadata,
    )
    assert again.pattern.success_count == 1
    # Another migration of the organization counts again.
    await deployment.stub.RecordPatternOutcome(
        outcome(created.name, SUCCESS, await deployment.migration()), metadata=member.metadata
    )
    assert (await deployment.get(created.name)).success_count == 2


async def test_the_other_outcome_for_a_counted_migration_already_exists(
    deployment: Deployment,
) -> None:
    created = (await deployment.upsert(unique("flip"), values=vector(1.0))).pattern
    migration = await deployment.migration()
    await deployment.stub.RecordPatternOutcome(
        outcome(created.name, SUCCESS, migration), metadata=deployment.admin.metadata
    )
    error = await rpc_error(
        deployment.stub.RecordPatternOutcome(
            outcome(created.name, FAILURE, migration), metadata=deployment.admin.metadata
        )
    )
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS
    assert error_info(error).reason == "PATTERN_OUTCOME_ALREADY_EXISTS"
    counted = await deployment.get(created.name)
    assert (counted.success_count, counted.failure_count) == (1, 0)


async def test_another_organizations_migration_is_permission_denied(
    deployment: Deployment,
) -> None:
    created = (await deployment.upsert(unique("foreign"), values=vector(1.0))).pattern
    _, other_owner = await deployment.suite.new_org()
    theirs = await deployment.migration(other_owner)
    error = await rpc_error(
        deployment.stub.RecordPatternOutcome(
            outcome(created.name, SUCCESS, theirs), metadata=deployment.admin.metadata
        )
    )
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error_info(error).reason == "OTHER_ORGANIZATION"
    assert (await deployment.get(created.name)).success_count == 0


async def test_unknown_migration_is_not_found(deployment: Deployment) -> None:
    created = (await deployment.upsert(unique("ghost"), values=vector(1.0))).pattern
    ghost = f"{deployment.admin.org_name}/migrations/{uuid.uuid4()}"
    for caller in (deployment.admin, deployment.service):
        error = await rpc_error(
            deployment.stub.RecordPatternOutcome(
                outcome(created.name, SUCCESS, ghost), metadata=caller.metadata
            )
        )
        assert error.code() == grpc.StatusCode.NOT_FOUND
        assert error_info(error).reason == "MIGRATION_NOT_FOUND"
    assert (await deployment.get(created.name)).success_count == 0


async def test_outcome_names_a_migration(deployment: Deployment) -> None:
    created = (await deployment.upsert(unique("nameless"), values=vector(1.0))).pattern
    for caller in (deployment.admin, deployment.service):
        error = await rpc_error(
            deployment.stub.RecordPatternOutcome(
                outcome(created.name, SUCCESS, ""), metadata=caller.metadata
            )
        )
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert bad_request_fields(error) == {"migration"}


async def test_outcome_while_the_migration_service_is_down_is_unavailable(
    suite: Suite,
) -> None:
    deployed = await deploy(suite, "pgvector")
    try:
        created = (await deployed.upsert(unique("down"), values=vector(1.0))).pattern
        migration = await deployed.migration()
        await suite.stop("migration")
        error = await rpc_error(
            deployed.stub.RecordPatternOutcome(
                outcome(created.name, SUCCESS, migration), metadata=deployed.admin.metadata
            )
        )
        assert error.code() == grpc.StatusCode.UNAVAILABLE
        assert error_info(error).reason == "MIGRATION_SERVICE_UNAVAILABLE"
        assert (await deployed.get(created.name)).success_count == 0
    finally:
        await deployed.close()


async def test_repeated_request_id_counts_once(deployment: Deployment) -> None:
    created = (await deployment.upsert(unique("once"), values=vector(1.0))).pattern
    request = outcome(created.name, SUCCESS, await deployment.migration(), unique("req"))
    responses = await asyncio.gather(
        *(
            deployment.stub.RecordPatternOutcome(request, metadata=deployment.service.metadata)
            for _ in range(10)
        )
    )
    assert {response.pattern.success_count for response in responses} == {1}
    assert (await deployment.get(created.name)).success_count == 1
    # Request ids are per caller: another caller's same id, for another migration, counts.
    request.migration = await deployment.migration()
    await deployment.stub.RecordPatternOutcome(request, metadata=deployment.admin.metadata)
    assert (await deployment.get(created.name)).success_count == 2


async def test_request_id_reused_for_another_outcome_is_invalid(deployment: Deployment) -> None:
    created = (await deployment.upsert(unique("reused"), values=vector(1.0))).pattern
    request_id = unique("req")
    migration = await deployment.migration()
    await deployment.stub.RecordPatternOutcome(
        outcome(created.name, SUCCESS, migration, request_id), metadata=deployment.service.metadata
    )
    error = await rpc_error(
        deployment.stub.RecordPatternOutcome(
            outcome(created.name, FAILURE, migration, request_id),
            metadata=deployment.service.metadata,
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(error).reason == "REQUEST_ID_REUSED"
    assert bad_request_fields(error) == {"request_id"}


async def test_outcome_of_an_unknown_pattern_is_not_found(deployment: Deployment) -> None:
    error = await rpc_error(
        deployment.stub.RecordPatternOutcome(
            pattern_pb2.RecordPatternOutcomeRequest(
                fingerprint=unique("nobody"),
                outcome=SUCCESS,
                migration=await deployment.migration(),
            ),
            metadata=deployment.service.metadata,
        )
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND


async def test_outcome_is_audited_for_users(deployment: Deployment) -> None:
    created = (await deployment.upsert(unique("audit"), values=vector(1.0))).pattern
    await deployment.stub.RecordPatternOutcome(
        outcome(created.name, SUCCESS, await deployment.migration()),
        metadata=deployment.admin.metadata,
    )

    async def delivered() -> bool:
        logged = await deployment.fetchval(
            "SELECT count(*) FROM org.audit_logs WHERE action = 'pattern.record_outcome'"
            " AND resource_id = $1 AND user_id = $2",
            created.id,
            deployment.admin.user_id,
        )
        return bool(logged == 1)

    await eventually(delivered)
