"""RecordPatternOutcome over a real channel: exact counts under concurrency, request ids."""

from __future__ import annotations

import asyncio

import grpc

from sensei.pattern.v1 import pattern_pb2
from tests.harness import bad_request_fields, error_info

from .conftest import Deployment, eventually, rpc_error, unique, vector

SUCCESS = pattern_pb2.PATTERN_OUTCOME_SUCCESS
FAILURE = pattern_pb2.PATTERN_OUTCOME_FAILURE


def outcome(
    name: str, result: int, request_id: str = ""
) -> pattern_pb2.RecordPatternOutcomeRequest:
    return pattern_pb2.RecordPatternOutcomeRequest(
        name=name,
        outcome=result,  # type: ignore[arg-type]
        request_id=request_id,
    )


async def test_hundred_parallel_outcomes_count_exactly(deployment: Deployment) -> None:
    created = (await deployment.upsert(unique("parallel"), values=vector(1.0))).pattern
    calls = [
        deployment.stub.RecordPatternOutcome(
            outcome(created.name, SUCCESS if i % 5 else FAILURE),
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
        pattern_pb2.RecordPatternOutcomeRequest(fingerprint=created.fingerprint, outcome=FAILURE),
        metadata=deployment.service.metadata,
    )
    assert (response.pattern.success_count, response.pattern.failure_count) == (0, 1)
    assert response.pattern.etag != created.etag


async def test_repeated_request_id_counts_once(deployment: Deployment) -> None:
    created = (await deployment.upsert(unique("once"), values=vector(1.0))).pattern
    request = outcome(created.name, SUCCESS, request_id=unique("req"))
    responses = await asyncio.gather(
        *(
            deployment.stub.RecordPatternOutcome(request, metadata=deployment.service.metadata)
            for _ in range(10)
        )
    )
    assert {response.pattern.success_count for response in responses} == {1}
    assert (await deployment.get(created.name)).success_count == 1
    # Request ids are per caller: another caller's same id counts again.
    await deployment.stub.RecordPatternOutcome(request, metadata=deployment.admin.metadata)
    assert (await deployment.get(created.name)).success_count == 2


async def test_request_id_reused_for_another_outcome_is_invalid(deployment: Deployment) -> None:
    created = (await deployment.upsert(unique("reused"), values=vector(1.0))).pattern
    request_id = unique("req")
    await deployment.stub.RecordPatternOutcome(
        outcome(created.name, SUCCESS, request_id), metadata=deployment.service.metadata
    )
    error = await rpc_error(
        deployment.stub.RecordPatternOutcome(
            outcome(created.name, FAILURE, request_id), metadata=deployment.service.metadata
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(error).reason == "REQUEST_ID_REUSED"
    assert bad_request_fields(error) == {"request_id"}


async def test_outcome_of_an_unknown_pattern_is_not_found(deployment: Deployment) -> None:
    error = await rpc_error(
        deployment.stub.RecordPatternOutcome(
            pattern_pb2.RecordPatternOutcomeRequest(fingerprint=unique("nobody"), outcome=SUCCESS),
            metadata=deployment.service.metadata,
        )
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND


async def test_outcome_is_audited_for_users(deployment: Deployment) -> None:
    created = (await deployment.upsert(unique("audit"), values=vector(1.0))).pattern
    await deployment.stub.RecordPatternOutcome(
        outcome(created.name, SUCCESS), metadata=deployment.admin.metadata
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
