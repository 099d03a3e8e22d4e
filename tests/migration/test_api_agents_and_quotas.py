"""Agent executions, token usage and plan quotas over gRPC (docs/architecture.md#plan-quotas)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import grpc
import pytest

from sensei.migration.v1 import agent_execution_pb2, migration_pb2
from tests.harness import Identity, bad_request_fields, error_info, quota_failure
from tests.migration.conftest import Api, rpc_error, struct

AE = agent_execution_pb2


async def _start_agent(
    api: Api,
    who: Identity,
    parent: str,
    agent_type: int = AE.AGENT_TYPE_SCHEMA_ANALYZER,
    **extra: object,
) -> AE.AgentExecution:
    response = await api.agents.StartAgentExecution(
        AE.StartAgentExecutionRequest(
            parent=parent,
            agent_execution=AE.AgentExecution(agent_type=agent_type, input=struct({"goal": "map"})),  # type: ignore[arg-type]
            **extra,  # type: ignore[arg-type]
        ),
        metadata=who.metadata,
    )
    execution: AE.AgentExecution = response.agent_execution
    return execution


async def _complete(
    api: Api,
    who: Identity,
    name: str,
    tokens: int,
    status: int = AE.AGENT_EXECUTION_STATUS_SUCCEEDED,
    **extra: object,
) -> AE.AgentExecution:
    response = await api.agents.CompleteAgentExecution(
        AE.CompleteAgentExecutionRequest(name=name, status=status, tokens_used=tokens, **extra),  # type: ignore[arg-type]
        metadata=who.metadata,
    )
    execution: AE.AgentExecution = response.agent_execution
    return execution


async def _active_migration(api: Api, who: Identity) -> migration_pb2.Migration:
    created = await api.create(who)
    return await api.move(who, created.name, "START")


# --- agent executions -----------------------------------------------------------------


async def test_agent_execution_runs_and_completes(api: Api) -> None:
    owner = await api.tenant()
    migration = await _active_migration(api, owner)
    started = await _start_agent(api, owner, migration.name)
    assert started.status == AE.AGENT_EXECUTION_STATUS_RUNNING
    assert started.name == f"{migration.name}/agentExecutions/{started.id}"
    assert dict(started.input)["goal"] == "map"
    done = await _complete(
        api, owner, started.name, 1234, duration_ms=42, output=struct({"tables": 3})
    )
    assert done.status == AE.AGENT_EXECUTION_STATUS_SUCCEEDED
    assert (done.tokens_used, done.duration_ms) == (1234, 42)
    assert dict(done.output)["tables"] == 3 and done.HasField("complete_time")
    got = await api.agents.GetAgentExecution(
        AE.GetAgentExecutionRequest(name=started.name), metadata=owner.metadata
    )
    assert got.agent_execution == done


async def test_duration_is_measured_when_not_reported(api: Api) -> None:
    owner = await api.tenant()
    migration = await _active_migration(api, owner)
    started = await _start_agent(api, owner, migration.name)
    done = await _complete(api, owner, started.name, 0, status=AE.AGENT_EXECUTION_STATUS_FAILED)
    elapsed = done.complete_time.ToMilliseconds() - started.create_time.ToMilliseconds()
    assert done.duration_ms >= 0 and abs(done.duration_ms - elapsed) <= 1


async def test_completing_twice_is_refused(api: Api) -> None:
    owner = await api.tenant()
    migration = await _active_migration(api, owner)
    started = await _start_agent(api, owner, migration.name)
    await _complete(api, owner, started.name, 10)
    error = await rpc_error(_complete(api, owner, started.name, 10))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_info(error).reason == "AGENT_EXECUTION_NOT_RUNNING"


async def test_completion_reports_every_bad_field(api: Api) -> None:
    owner = await api.tenant()
    migration = await _active_migration(api, owner)
    started = await _start_agent(api, owner, migration.name)
    error = await rpc_error(
        _complete(
            api, owner, started.name, -1, status=AE.AGENT_EXECUTION_STATUS_RUNNING, duration_ms=-5
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request_fields(error) == {"status", "tokens_used", "duration_ms"}


async def test_agents_only_run_on_active_migrations(api: Api) -> None:
    owner = await api.tenant()
    created = await api.create(owner)
    error = await rpc_error(_start_agent(api, owner, created.name))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_info(error).reason == "MIGRATION_NOT_ACTIVE"


async def test_start_agent_execution_is_idempotent_by_request_id(api: Api) -> None:
    owner = await api.tenant()
    migration = await _active_migration(api, owner)
    request_id = str(uuid.uuid4())
    first = await _start_agent(api, owner, migration.name, request_id=request_id)
    again = await _start_agent(api, owner, migration.name, request_id=request_id)
    assert again == first
    count = await api.fetchval(
        "SELECT count(*) FROM agent_executions WHERE migration_id = $1", uuid.UUID(migration.id)
    )
    assert count == 1


async def test_list_agent_executions_filters_and_pages(api: Api) -> None:
    owner = await api.tenant()
    migration = await _active_migration(api, owner)
    kinds = [AE.AGENT_TYPE_SCHEMA_ANALYZER, AE.AGENT_TYPE_VALIDATOR, AE.AGENT_TYPE_VALIDATOR]
    made = [await _start_agent(api, owner, migration.name, kind) for kind in kinds]
    await _complete(api, owner, made[2].name, 5)
    seen: list[str] = []
    token = ""
    while True:
        page = await api.agents.ListAgentExecutions(
            AE.ListAgentExecutionsRequest(parent=migration.name, page_size=2, page_token=token),
            metadata=owner.metadata,
        )
        seen += [e.id for e in page.agent_executions]
        token = page.next_page_token
        if not token:
            break
    assert seen == [e.id for e in made]
    validators_running = await api.agents.ListAgentExecutions(
        AE.ListAgentExecutionsRequest(
            parent=migration.name,
            agent_type=AE.AGENT_TYPE_VALIDATOR,
            status=AE.AGENT_EXECUTION_STATUS_RUNNING,
        ),
        metadata=owner.metadata,
    )
    assert [e.id for e in validators_running.agent_executions] == [made[1].id]


# --- quotas ---------------------------------------------------------------------------


@pytest.mark.parametrize(("plan", "limit"), [("FREE", 2), ("PRO", 25)])
async def test_active_migrations_are_limited_by_plan(api: Api, plan: str, limit: int) -> None:
    owner = await api.tenant(plan)
    names = [(await api.create(owner)).name for _ in range(limit + 1)]
    for name in names[:limit]:
        await api.move(owner, name, "START")
    error = await rpc_error(api.move(owner, names[limit], "START"))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error_info(error).reason == "ACTIVE_MIGRATIONS_QUOTA_EXCEEDED"
    assert quota_failure(error).violations[0].subject == owner.org_name
    await api.move(owner, names[0], "CANCEL")  # frees a slot
    assert (await api.move(owner, names[limit], "START")).status == 2


async def test_paused_migrations_still_count_as_active(api: Api) -> None:
    owner = await api.tenant("FREE")
    names = [(await api.create(owner)).name for _ in range(3)]
    for name in names[:2]:
        await api.drive(owner, name, ["START", "PAUSE"])
    error = await rpc_error(api.move(owner, names[2], "START"))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_enterprise_has_no_active_migration_limit(api: Api) -> None:
    owner = await api.tenant("ENTERPRISE")
    for _ in range(27):
        created = await api.create(owner)
        await api.move(owner, created.name, "START")


@pytest.mark.parametrize(("plan", "limit"), [("FREE", 1_000_000), ("PRO", 50_000_000)])
async def test_monthly_tokens_are_limited_by_plan(api: Api, plan: str, limit: int) -> None:
    owner = await api.tenant(plan)
    migration = await _active_migration(api, owner)
    first = await _start_agent(api, owner, migration.name)
    await _complete(api, owner, first.name, limit - 1)
    second = await _start_agent(api, owner, migration.name)  # one token left: allowed
    await _complete(api, owner, second.name, 1)
    error = await rpc_error(_start_agent(api, owner, migration.name))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error_info(error).reason == "MONTHLY_TOKENS_QUOTA_EXCEEDED"
    assert quota_failure(error).violations[0].subject == owner.org_name


async def test_usage_reports_tokens_by_month_and_agent_type(api: Api) -> None:
    owner = await api.tenant("FREE")
    migration = await _active_migration(api, owner)
    for kind, tokens in (
        (AE.AGENT_TYPE_SCHEMA_MAPPER, 100),
        (AE.AGENT_TYPE_SCHEMA_MAPPER, 50),
        (AE.AGENT_TYPE_OPTIMIZER, 7),
    ):
        started = await _start_agent(api, owner, migration.name, kind)
        await _complete(api, owner, started.name, tokens)
    await _start_agent(api, owner, migration.name, AE.AGENT_TYPE_VALIDATOR)  # still running
    usage = await api.migrations.GetUsage(
        migration_pb2.GetUsageRequest(parent=owner.org_name), metadata=owner.metadata
    )
    now = datetime.now(UTC)
    assert usage.org_id == owner.org_id
    assert [m.month for m in usage.months] == [f"{now.year:04d}-{now.month:02d}"]
    month = usage.months[0]
    assert month.tokens_used == 157
    assert [(t.agent_type, t.tokens_used, t.execution_count) for t in month.agent_types] == [
        (AE.AGENT_TYPE_SCHEMA_MAPPER, 150, 2),
        (AE.AGENT_TYPE_VALIDATOR, 0, 1),
        (AE.AGENT_TYPE_OPTIMIZER, 7, 1),
    ]
    assert usage.monthly_token_limit == 1_000_000
    assert usage.active_migration_limit == 2 and usage.active_migrations == 1


async def test_usage_over_a_range_includes_empty_months(api: Api) -> None:
    owner = await api.tenant("ENTERPRISE")
    usage = await api.migrations.GetUsage(
        migration_pb2.GetUsageRequest(
            parent=owner.org_name, start_month="2024-11", end_month="2025-02"
        ),
        metadata=owner.metadata,
    )
    assert [m.month for m in usage.months] == ["2024-11", "2024-12", "2025-01", "2025-02"]
    assert all(m.tokens_used == 0 and not m.agent_types for m in usage.months)
    assert not usage.HasField("monthly_token_limit")
    assert not usage.HasField("active_migration_limit")


async def test_usage_with_a_bad_range_is_invalid(api: Api) -> None:
    owner = await api.tenant()
    error = await rpc_error(
        api.migrations.GetUsage(
            migration_pb2.GetUsageRequest(
                parent=owner.org_name, start_month="2025-13", end_month="2025-01"
            ),
            metadata=owner.metadata,
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request_fields(error) == {"start_month"}
