"""Who may call what, and how bad input is refused (INVALID_ARGUMENT with a BadRequest).

Pattern writes are platform-wide: only platform principals (service accounts, the
platform operator) make them; no tenant role does, not even OWNER. Outcomes are reported
by tenant members, about a migration of their own organization.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest

from sensei.pattern.v1 import pattern_pb2, pattern_pb2_grpc
from tests.harness import Identity, bad_request_fields, error_info

from .conftest import DIMENSION, Deployment, rpc_error, unique, vector

Call = Callable[[pattern_pb2_grpc.PatternServiceStub, Any], Awaitable[Any]]


async def _reindex(stub: pattern_pb2_grpc.PatternServiceStub, metadata: Any) -> Any:
    return [
        progress
        async for progress in stub.ReindexPatterns(
            pattern_pb2.ReindexPatternsRequest(), metadata=metadata
        )
    ]


# Platform writes: LEVEL_PLATFORM.
WRITES: dict[str, Call] = {
    "UpsertPattern": lambda stub, md: stub.UpsertPattern(
        pattern_pb2.UpsertPatternRequest(
            fingerprint=unique("w"), type="t", embedding=pattern_pb2.Vector(values=vector(1.0))
        ),
        metadata=md,
    ),
    "DeletePattern": lambda stub, md: stub.DeletePattern(
        pattern_pb2.DeletePatternRequest(name="patterns/00000000-0000-4000-8000-000000000000"),
        metadata=md,
    ),
    "ReindexPatterns": _reindex,
}
READS: dict[str, Call] = {
    "GetPattern": lambda stub, md: stub.GetPattern(
        pattern_pb2.GetPatternRequest(fingerprint=unique("r")), metadata=md
    ),
    "ListPatterns": lambda stub, md: stub.ListPatterns(
        pattern_pb2.ListPatternsRequest(type=unique("r")), metadata=md
    ),
    "SearchPatterns": lambda stub, md: stub.SearchPatterns(
        pattern_pb2.SearchPatternsRequest(text="rename column", type=unique("r")), metadata=md
    ),
    "GetPatternIndex": lambda stub, md: stub.GetPatternIndex(
        pattern_pb2.GetPatternIndexRequest(), metadata=md
    ),
}


async def _code(call: Awaitable[Any]) -> grpc.StatusCode:
    try:
        await call
    except grpc.aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK


@pytest.mark.parametrize("role", ["VIEWER", "MEMBER", "ADMIN", "OWNER"])
@pytest.mark.parametrize("method", sorted(WRITES))
async def test_no_tenant_role_writes_patterns(
    deployment: Deployment, method: str, role: str
) -> None:
    caller = await deployment.suite.user(role)
    error = await rpc_error(WRITES[method](deployment.stub, caller.metadata))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error_info(error).reason == "PLATFORM_ONLY"


async def test_viewer_cannot_report_outcomes(deployment: Deployment) -> None:
    created = await deployment.upsert(unique("viewed"), values=vector(1.0))
    error = await rpc_error(
        deployment.stub.RecordPatternOutcome(
            pattern_pb2.RecordPatternOutcomeRequest(
                name=created.pattern.name,
                outcome=pattern_pb2.PATTERN_OUTCOME_SUCCESS,
                migration=await deployment.migration(),
            ),
            metadata=deployment.viewer.metadata,
        )
    )
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error_info(error).reason == "ROLE_TOO_LOW"


async def test_operator_cannot_report_outcomes(deployment: Deployment) -> None:
    # Outcomes name a tenant's migration: tenant data the operator never reaches.
    created = await deployment.upsert(unique("operated"), values=vector(1.0))
    error = await rpc_error(
        deployment.stub.RecordPatternOutcome(
            pattern_pb2.RecordPatternOutcomeRequest(
                name=created.pattern.name,
                outcome=pattern_pb2.PATTERN_OUTCOME_SUCCESS,
                migration=await deployment.migration(),
            ),
            metadata=deployment.operator.metadata,
        )
    )
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error_info(error).reason == "OPERATOR_NOT_ALLOWED"


@pytest.mark.parametrize("who", ["viewer", "operator", "service"])
@pytest.mark.parametrize("method", sorted(READS))
async def test_viewers_and_platform_principals_can_read(
    deployment: Deployment, method: str, who: str
) -> None:
    caller: Identity = getattr(deployment, who)
    code = await _code(READS[method](deployment.stub, caller.metadata))
    assert code in (grpc.StatusCode.OK, grpc.StatusCode.NOT_FOUND)


@pytest.mark.parametrize("who", ["operator", "service"])
async def test_platform_principals_can_write(deployment: Deployment, who: str) -> None:
    caller: Identity = getattr(deployment, who)
    created = await deployment.upsert(unique("writer"), values=vector(1.0), who=caller)
    await deployment.stub.DeletePattern(
        pattern_pb2.DeletePatternRequest(name=created.pattern.name), metadata=caller.metadata
    )


async def test_members_report_outcomes_of_their_migrations(deployment: Deployment) -> None:
    member = await deployment.suite.user("MEMBER")
    created = await deployment.upsert(unique("reported"), values=vector(1.0))
    response = await deployment.stub.RecordPatternOutcome(
        pattern_pb2.RecordPatternOutcomeRequest(
            name=created.pattern.name,
            outcome=pattern_pb2.PATTERN_OUTCOME_SUCCESS,
            migration=await deployment.migration(member),
        ),
        metadata=member.metadata,
    )
    assert response.pattern.success_count == 1


OUTCOME: dict[str, Call] = {
    "RecordPatternOutcome": lambda stub, md: stub.RecordPatternOutcome(
        pattern_pb2.RecordPatternOutcomeRequest(
            fingerprint=unique("w"), outcome=pattern_pb2.PATTERN_OUTCOME_SUCCESS
        ),
        metadata=md,
    ),
}


@pytest.mark.parametrize("method", sorted({**READS, **WRITES, **OUTCOME}))
async def test_callers_without_a_token_are_unauthenticated(
    deployment: Deployment, method: str
) -> None:
    call = {**READS, **WRITES, **OUTCOME}[method]
    assert await _code(call(deployment.stub, ())) == grpc.StatusCode.UNAUTHENTICATED


async def test_upsert_reports_every_violation_at_once(deployment: Deployment) -> None:
    request = pattern_pb2.UpsertPatternRequest(
        fingerprint="", type=" spaced ", embedding=pattern_pb2.Vector(values=[1.0, 2.0])
    )
    request.metadata.update({"nested": {"deeper": float("nan")}})
    error = await rpc_error(
        deployment.stub.UpsertPattern(request, metadata=deployment.service.metadata)
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request_fields(error) == {"fingerprint", "type", "embedding.values", "metadata"}


async def test_creating_needs_a_type_and_a_vector_or_text(deployment: Deployment) -> None:
    error = await rpc_error(
        deployment.stub.UpsertPattern(
            pattern_pb2.UpsertPatternRequest(fingerprint=unique("bare")),
            metadata=deployment.service.metadata,
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request_fields(error) == {"type", "embedding"}


@pytest.mark.parametrize(
    ("request_fields", "bad"),
    [
        ({"text": " ;; ()"}, {"text"}),
        ({"vector": [1.0] * (DIMENSION + 1), "top_k": -1}, {"vector.values", "top_k"}),
        ({"vector": [0.0] * DIMENSION, "min_similarity": 1.5}, {"vector.values", "min_similarity"}),
        ({}, {"text"}),
    ],
    ids=["nothing-to-embed", "wrong-length-and-negative-top-k", "zero-vector", "no-query"],
)
async def test_bad_searches_are_invalid(
    deployment: Deployment, request_fields: dict[str, Any], bad: set[str]
) -> None:
    request = pattern_pb2.SearchPatternsRequest(
        top_k=request_fields.get("top_k", 0), text=request_fields.get("text", "")
    )
    if "text" not in request_fields:
        request.ClearField("text")
    if "vector" in request_fields:
        request.vector.values.extend(request_fields["vector"])
    if "min_similarity" in request_fields:
        request.min_similarity = request_fields["min_similarity"]
    error = await rpc_error(
        deployment.stub.SearchPatterns(request, metadata=deployment.viewer.metadata)
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request_fields(error) == bad


@pytest.mark.parametrize(
    ("call", "bad"),
    [
        (
            lambda stub, md: stub.GetPattern(
                pattern_pb2.GetPatternRequest(name="patterns/42"), metadata=md
            ),
            {"name"},
        ),
        (lambda stub, md: stub.GetPattern(pattern_pb2.GetPatternRequest(), metadata=md), {"name"}),
        (
            lambda stub, md: stub.ListPatterns(
                pattern_pb2.ListPatternsRequest(page_size=-1), metadata=md
            ),
            {"page_size"},
        ),
        (
            lambda stub, md: stub.DeletePattern(
                pattern_pb2.DeletePatternRequest(name="organizations/x"), metadata=md
            ),
            {"name"},
        ),
        (
            lambda stub, md: stub.RecordPatternOutcome(
                pattern_pb2.RecordPatternOutcomeRequest(fingerprint="fp"), metadata=md
            ),
            {"outcome", "migration"},
        ),
    ],
    ids=["malformed-name", "no-pattern", "negative-page-size", "foreign-name", "no-outcome"],
)
async def test_bad_requests_are_invalid(deployment: Deployment, call: Call, bad: set[str]) -> None:
    error = await rpc_error(call(deployment.stub, deployment.service.metadata))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request_fields(error) == bad
