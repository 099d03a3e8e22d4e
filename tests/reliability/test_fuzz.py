"""Hostile input: every RPC of the nine services, fed generated requests, never fails with
UNKNOWN or INTERNAL, and its server still answers health SERVING afterwards
(docs/api-conventions.md#errors: "never UNKNOWN or INTERNAL for anything a caller sends").

Requests are generated from the request message descriptors (`messages.py`), seeded with
real resource names of an organization made for the test. Each example is sent as the
organization's OWNER, as a service account, as the owner of another organization and with
no token. The hypothesis profile `sensei-ci` (15 derandomized examples per RPC) is the
default; `SENSEI_FUZZ_PROFILE=sensei-soak` (300 random examples) is the soak run's;
`SENSEI_FUZZ_EXAMPLES` and `SENSEI_FUZZ_RANDOM=1` override the count and the seed.

A deterministic sweep sets every field of a plausible request, one at a time, to edge values
(`boundaries.py`): the random fuzzer could need many examples to hit one field with one
value.

Bytes that are not a valid message (invalid UTF-8 in a string field, truncated fields,
nesting past the parser's limit) and garbage on the TCP port are tested below the fuzzer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from sensei.access.v1 import access_pb2
from sensei.migration.v1 import (
    agent_execution_pb2,
    agent_execution_pb2_grpc,
    migration_pb2,
    migration_pb2_grpc,
    schema_pb2,
)
from tests.harness import Identity
from tests.reliability.boundaries import calm_request, edge_cases
from tests.reliability.catalog import Outcome, Rpc, all_rpcs, call_raw
from tests.reliability.conftest import MAX_MESSAGE_BYTES, SERVING, Stack, health_status
from tests.reliability.messages import Names, Requests
from tests.reliability.wire import (
    deep_struct_payload,
    first_string_field,
    invalid_utf8_payload,
    truncated_payload,
)
from tests.reliability.world import World, make_world, struct

RPCS = all_rpcs()
NEVER = {grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL}
# Hypothesis profiles (registered here, applied to these tests only): `sensei-ci`, the
# default, is 15 derandomized examples per RPC; `sensei-soak` is 300 random ones.
# SENSEI_FUZZ_PROFILE picks one; SENSEI_FUZZ_EXAMPLES overrides the count.
_COMMON = settings(
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=list(HealthCheck),
    phases=(Phase.explicit, Phase.generate, Phase.shrink),
)
settings.register_profile("sensei-ci", _COMMON, max_examples=15, derandomize=True)
settings.register_profile("sensei-soak", _COMMON, max_examples=300, derandomize=False)
_PROFILE = settings.get_profile(os.environ.get("SENSEI_FUZZ_PROFILE", "sensei-ci"))
FUZZ = settings(
    _PROFILE,
    max_examples=int(os.environ.get("SENSEI_FUZZ_EXAMPLES", _PROFILE.max_examples)),
    derandomize=_PROFILE.derandomize and os.environ.get("SENSEI_FUZZ_RANDOM") != "1",
)
CALLERS = ("OWNER", "OWNER", "SERVICE", "OTHER_ORG_OWNER", "NONE")
# What every run saw, by RPC and code (RELIABILITY.md quotes the totals).
SEEN: Counter[tuple[str, str, str]] = Counter()


@pytest.fixture(scope="module", autouse=True)
def report_outcomes() -> Iterator[None]:
    """Writes the codes seen per RPC to $SENSEI_FUZZ_REPORT (a JSON file), when set."""
    yield
    target = os.environ.get("SENSEI_FUZZ_REPORT")
    if target:
        seen: dict[str, dict[str, dict[str, int]]] = {}
        for (test, rpc_id, code), count in sorted(SEEN.items()):
            seen.setdefault(test, {}).setdefault(rpc_id, {})[code] = count
        Path(target).write_text(json.dumps(seen, indent=1))


# RPCs that may destroy what the world holds: the next RPC gets a new world.
DESTRUCTIVE = ("Delete", "Revoke", "Cancel", "Fail", "Complete")
_WORLDS: dict[int, World] = {}


@pytest.fixture
async def world(stack: Stack, request: pytest.FixtureRequest) -> AsyncIterator[World]:
    """An organization with one resource of each kind, shared until an RPC may destroy it."""
    key = id(stack)
    if key not in _WORLDS:
        _WORLDS[key] = await _new_world(stack)
    yield _WORLDS[key]
    rpc: Rpc | None = request.node.callspec.params.get("rpc")
    if rpc is None or rpc.method.name.startswith(DESTRUCTIVE):
        del _WORLDS[key]


async def _new_world(stack: Stack) -> World:
    # After the fuzzer rotated the token signing key (AuthService.RotateTokenSigningKey),
    # new tokens may be refused for up to 5 s (see test_tokens.py, rotated-key bug).
    for _ in range(60):
        try:
            return await make_world(stack)
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.UNAUTHENTICATED:
                raise
            await asyncio.sleep(0.2)
    return await make_world(stack)


_STRATEGIES: dict[tuple[str, str], st.SearchStrategy[Any]] = {}


def _requests(stack: Stack, world: World, rpc: Rpc) -> st.SearchStrategy[Any]:
    key = (world.org, rpc.path)
    if key not in _STRATEGIES:
        names = Names([*world.names(), stack.owner.org_name, stack.suite.org_id], world.by_field())
        _STRATEGIES[key] = Requests(names, rpc.method.name).request(rpc.method.input_type)
    return _STRATEGIES[key]


def _caller(stack: Stack, world: World, who: str) -> Identity | None:
    return {
        "OWNER": world.owner,
        "SERVICE": stack.service,
        "OTHER_ORG_OWNER": stack.owner,
        "NONE": None,
    }[who]


METADATA_LIMIT = "metadata size exceeds"


def _rich_status_problem(outcome: Outcome) -> str | None:
    """Why an error of ours lacks the promised ErrorInfo (None when it is fine)."""
    if outcome.code == grpc.StatusCode.OK or outcome.code in NEVER:
        return None
    if outcome.code == grpc.StatusCode.RESOURCE_EXHAUSTED and "larger than max" in outcome.details:
        return None  # refused by gRPC itself before any of our code ran
    if outcome.code == grpc.StatusCode.RESOURCE_EXHAUSTED and METADATA_LIMIT in outcome.details:
        return None  # the known bug of test_error_details_fit_in_the_clients_metadata_limit
    raw = dict(outcome.trailing).get("grpc-status-details-bin")
    if raw is None:
        return f"{outcome.code.name} without google.rpc.Status: {outcome.details[:200]}"
    status = status_pb2.Status.FromString(raw)
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            return None
    return f"{outcome.code.name} without ErrorInfo: {outcome.details[:200]}"


@pytest.mark.parametrize("rpc", RPCS, ids=[rpc.id for rpc in RPCS])
@FUZZ
@given(data=st.data(), who=st.sampled_from(CALLERS))
async def test_generated_requests_never_fail_internally(
    stack: Stack, world: World, rpc: Rpc, data: st.DataObject, who: str
) -> None:
    request = data.draw(_requests(stack, world, rpc), label="request")
    caller = _caller(stack, world, who)
    payload = request.SerializeToString()
    outcome = await call_raw(
        stack.channel(rpc.server),
        rpc,
        payload,
        caller.metadata if caller else (),
        stream_seconds=0.3,
    )
    SEEN[("generated", rpc.id, outcome.code.name)] += 1
    assert outcome.code not in NEVER, f"{rpc.path} as {who}: {outcome.code} {outcome.details}"
    assert outcome.code != grpc.StatusCode.DEADLINE_EXCEEDED, f"{rpc.path} hung as {who}"
    problem = _rich_status_problem(outcome)
    assert problem is None, f"{rpc.path} as {who}: {problem}"
    assert await serving(stack, rpc.server)


async def serving(stack: Stack, server: str) -> bool:
    """Whether `server` answers health SERVING on the stack's channel to it."""
    health = health_pb2_grpc.HealthStub(stack.channel(server))
    answer = await health.Check(health_pb2.HealthCheckRequest(), timeout=5)
    return bool(answer.status == SERVING)


# Bugs the boundary sweep finds, by RPC (strict xfail: remove an entry once fixed). Fixed so
# far: NUL characters and out-of-range Timestamps (shared/requests.py), tokens_used overflow.
BOUNDARY_BUGS: dict[str, str] = {}


def _boundary_params() -> list[Any]:
    return [
        pytest.param(
            rpc,
            id=rpc.id,
            marks=[pytest.mark.xfail(strict=True, reason=BOUNDARY_BUGS[rpc.id])]
            if rpc.id in BOUNDARY_BUGS
            else [],
        )
        for rpc in RPCS
    ]


async def _fresh_agent_execution(stack: Stack, owner: Identity) -> str:
    agents = stack.stub("migration", agent_execution_pb2_grpc.AgentExecutionServiceStub)
    started = await agents.StartAgentExecution(
        agent_execution_pb2.StartAgentExecutionRequest(
            parent=await _fresh_active_migration(stack, owner),
            agent_execution=agent_execution_pb2.AgentExecution(
                agent_type=agent_execution_pb2.AGENT_TYPE_VALIDATOR
            ),
        ),
        metadata=owner.metadata,
    )
    return str(started.agent_execution.name)


async def _fresh_active_migration(stack: Stack, owner: Identity) -> str:
    migrations = stack.stub("migration", migration_pb2_grpc.MigrationServiceStub)
    created = await migrations.CreateMigration(
        migration_pb2.CreateMigrationRequest(
            parent=owner.org_name, migration=migration_pb2.Migration(display_name="edge")
        ),
        metadata=owner.metadata,
    )
    await migrations.StartMigration(
        migration_pb2.StartMigrationRequest(name=created.migration.name),
        metadata=owner.metadata,
    )
    return str(created.migration.name)


# RPCs that use their target up (completing, failing): each edge case gets a fresh one.
FRESH_TARGETS: dict[str, Callable[[Stack, Identity], Awaitable[str]]] = {
    "AgentExecutionService.CompleteAgentExecution": _fresh_agent_execution,
    "MigrationService.FailMigration": _fresh_active_migration,
}


def _boundary_caller(stack: Stack, world: World, rpc: Rpc) -> Identity:
    if rpc.rule.min_level == access_pb2.LEVEL_SERVICE:
        return stack.service
    return world.owner


@pytest.mark.parametrize("rpc", _boundary_params())
async def test_boundary_values_in_every_field_never_fail_internally(
    stack: Stack, world: World, rpc: Rpc
) -> None:
    names = Names([*world.names(), stack.owner.org_name], world.by_field())
    caller = _boundary_caller(stack, world, rpc)
    failures = []
    fresh = FRESH_TARGETS.get(rpc.id)
    for case in edge_cases(rpc.method.input_type, names, rpc.method.name):
        if fresh is not None and case.field != "name":
            case.request.name = await fresh(stack, world.owner)  # type: ignore[attr-defined]
        outcome = await call_raw(
            stack.channel(rpc.server),
            rpc,
            case.request.SerializeToString(),
            caller.metadata,
            stream_seconds=0.3,
        )
        SEEN[("boundary", rpc.id, outcome.code.name)] += 1
        if outcome.code in NEVER or outcome.code == grpc.StatusCode.DEADLINE_EXCEEDED:
            failures.append(f"{case.field} = {case.value}: {outcome.code.name} {outcome.details}")
    assert await serving(stack, rpc.server)
    assert not failures, f"{rpc.path} as {caller.role}:\n" + "\n".join(failures)


@pytest.mark.parametrize("rpc", RPCS, ids=[rpc.id for rpc in RPCS])
async def test_a_message_over_the_size_limit_is_resource_exhausted(stack: Stack, rpc: Rpc) -> None:
    # An unknown field (number 999) carrying more than SENSEI_MAX_MESSAGE_BYTES.
    blob = b"x" * (MAX_MESSAGE_BYTES + 1)
    payload = b"\xba\x3e" + _varint(len(blob)) + blob
    outcome = await call_raw(stack.channel(rpc.server), rpc, payload, stack.owner.metadata)
    assert outcome.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert await health_status(stack.suite.address(rpc.server)) == SERVING


UNDECODABLE = {
    "invalid-utf8-in-a-string-field": invalid_utf8_payload,
    "truncated-field": truncated_payload,
    "struct-nested-past-the-parser-limit": deep_struct_payload,
}


def _undecodable(kind: str) -> list[tuple[Rpc, bytes]]:
    """(rpc, request bytes) for every RPC whose request can carry this kind of damage."""
    build = UNDECODABLE[kind]
    cases = []
    for rpc in RPCS:
        if (
            kind == "invalid-utf8-in-a-string-field"
            and first_string_field(rpc.method.input_type) is None
        ):
            continue
        payload = build(rpc.method.input_type)
        if payload is not None:
            cases.append((rpc, payload))
    return cases


@pytest.mark.parametrize("kind", sorted(UNDECODABLE))
async def test_undecodable_request_bytes_do_not_hurt_the_server(stack: Stack, kind: str) -> None:
    for rpc, payload in _undecodable(kind):
        # A refused stream ends at once; wait long enough that a busy machine cannot make
        # a refusal look like a stream that is still open.
        outcome = await call_raw(
            stack.channel(rpc.server), rpc, payload, stack.owner.metadata, stream_seconds=10
        )
        assert outcome.code != grpc.StatusCode.INTERNAL, (rpc.id, outcome)
        assert await serving(stack, rpc.server)


# A request whose bytes do not parse is INVALID_ARGUMENT (shared/requests.py), not UNKNOWN.
@pytest.mark.parametrize("kind", sorted(UNDECODABLE))
async def test_undecodable_request_bytes_are_invalid_argument(stack: Stack, kind: str) -> None:
    wrong = {}
    for rpc, payload in _undecodable(kind):
        # A refused stream ends at once; wait long enough that a busy machine cannot make
        # a refusal look like a stream that is still open.
        outcome = await call_raw(
            stack.channel(rpc.server), rpc, payload, stack.owner.metadata, stream_seconds=10
        )
        if outcome.code != grpc.StatusCode.INVALID_ARGUMENT:
            wrong[rpc.id] = f"{outcome.code.name} {outcome.details[:80]}"
    assert not wrong, wrong


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


# --- garbage on the port -------------------------------------------------------------------

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def _garbage_streams() -> dict[str, bytes]:
    rng = random.Random(20240610)
    noise = bytes(rng.getrandbits(8) for _ in range(64 * 1024))
    settings_frame = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
    # A HEADERS frame on stream 1 whose HPACK block is nonsense.
    bad_headers = b"\x00\x00\x10\x01\x05\x00\x00\x00\x01" + bytes(range(0xF0, 0x100))
    # A DATA frame claiming 16 MiB on a stream that was never opened.
    huge_data = b"\xff\xff\xff\x00\x00\x00\x00\x00\x03" + noise[:1024]
    return {
        "random-bytes": noise,
        "http1-request": b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        "truncated-preface": PREFACE[:11],
        "preface-then-garbage": PREFACE + noise[:4096],
        "preface-settings-bad-headers": PREFACE + settings_frame + bad_headers,
        "preface-settings-huge-data": PREFACE + settings_frame + huge_data,
        "tls-client-hello": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + noise[:512],
    }


async def _send_garbage(address: str, garbage: bytes) -> None:
    host, port = address.rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(garbage)
        await writer.drain()
        async with asyncio.timeout(1):
            while await reader.read(65536):
                pass
    except (ConnectionError, TimeoutError):
        pass  # the server hung up on us, or kept the connection waiting: both fine
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


@pytest.mark.parametrize("server", ["org", "migration", "verification", "pattern"])
async def test_garbage_on_the_port_does_not_hurt_the_server(stack: Stack, server: str) -> None:
    address = stack.suite.address(server)
    # A client with a call in flight on its own connection the whole time.
    async with grpc.aio.insecure_channel(address) as bystander:
        health = health_pb2_grpc.HealthStub(bystander)
        await health.Check(health_pb2.HealthCheckRequest())
        streams = _garbage_streams()
        await asyncio.gather(*(_send_garbage(address, garbage) for garbage in streams.values()))
        answer = await health.Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert answer.status == SERVING
    assert await health_status(address) == SERVING
    owner = stack.owner
    rpc = next(rpc for rpc in RPCS if rpc.server == server and not rpc.streaming)
    outcome = await call_raw(stack.channel(server), rpc, b"", owner.metadata)
    assert outcome.code not in NEVER


LISTS = [
    rpc for rpc in RPCS if {"page_size", "page_token"} <= set(rpc.method.input_type.fields_by_name)
]


@pytest.mark.parametrize("rpc", LISTS, ids=[rpc.id for rpc in LISTS])
async def test_lists_refuse_negative_sizes_and_tampered_page_tokens(
    stack: Stack, world: World, rpc: Rpc
) -> None:
    names = Names([*world.names(), stack.owner.org_name], world.by_field())
    caller = _boundary_caller(stack, world, rpc)
    channel = stack.channel(rpc.server)

    async def listing(**fields: Any) -> tuple[grpc.StatusCode, Any]:
        request = calm_request(rpc.method.input_type, names, rpc.method.name)
        for field_name in ("page_size", "page_token"):
            request.ClearField(field_name)
        for key, value in fields.items():
            setattr(request, key, value)
        for field in request.DESCRIPTOR.fields:
            if field.name not in ("parent", "page_size", "page_token") and not field.is_repeated:
                request.ClearField(field.name)  # no filters: pages of everything
        outcome = await call_raw(channel, rpc, request.SerializeToString(), caller.metadata)
        return outcome.code, outcome

    assert (await listing(page_size=-1))[0] == grpc.StatusCode.INVALID_ARGUMENT
    for token in ("garbage", "x" * 300, "AAAA", "\x00"):
        code, outcome = await listing(page_token=token)
        assert code == grpc.StatusCode.INVALID_ARGUMENT, (token, outcome)
    code, outcome = await listing(page_size=1000)
    assert code == grpc.StatusCode.OK, outcome
    code, outcome = await listing(page_size=1001)
    assert code in {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT}, outcome


async def test_one_huge_token_count_does_not_break_later_completions(stack: Stack) -> None:
    _, owner = await stack.suite.new_org("ENTERPRISE")
    agents = stack.stub("migration", agent_execution_pb2_grpc.AgentExecutionServiceStub)
    codes = []
    for tokens in (2**63 - 1, 10):
        name = await _fresh_agent_execution(stack, owner)
        try:
            await agents.CompleteAgentExecution(
                agent_execution_pb2.CompleteAgentExecutionRequest(
                    name=name,
                    status=agent_execution_pb2.AGENT_EXECUTION_STATUS_SUCCEEDED,
                    tokens_used=tokens,
                ),
                metadata=owner.metadata,
            )
            codes.append(grpc.StatusCode.OK)
        except grpc.aio.AioRpcError as exc:
            codes.append(exc.code())
    # The huge count may be refused; the ordinary completion after it must succeed.
    assert codes[0] in {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT}
    assert codes[1] == grpc.StatusCode.OK, codes


# Requests that are wrong in many places at once: 2000 unknown keys.
WIDE = {f"k{index}": index for index in range(2000)}
MANY_VIOLATIONS: dict[str, Callable[[World], Any]] = {
    "SchemaService.CreateSchema": lambda w: schema_pb2.CreateSchemaRequest(
        parent=w.migration,
        schema=schema_pb2.Schema(type=schema_pb2.SCHEMA_TYPE_SOURCE, definition=struct(WIDE)),
    ),
    "MigrationService.CreateMigration": lambda w: migration_pb2.CreateMigrationRequest(
        parent=w.org,
        migration=migration_pb2.Migration(display_name="wide", source_config=struct(WIDE)),
    ),
}


@pytest.mark.parametrize("rpc_id", sorted(MANY_VIOLATIONS))
async def test_error_details_fit_in_the_clients_metadata_limit(
    stack: Stack, world: World, rpc_id: str
) -> None:
    rpc = next(rpc for rpc in RPCS if rpc.id == rpc_id)
    request = MANY_VIOLATIONS[rpc_id](world)
    outcome = await call_raw(
        stack.channel(rpc.server), rpc, request.SerializeToString(), world.owner.metadata
    )
    assert outcome.code == grpc.StatusCode.INVALID_ARGUMENT, outcome.details
