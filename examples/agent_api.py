"""The example agent worker's client side: addresses, stubs, login and agent executions.

Used by examples/agent_worker.py; nothing here knows about databases.
"""

from __future__ import annotations

import base64
import json
import sys
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import grpc
from google.protobuf import json_format, struct_pb2

from sensei.migration.v1 import (
    agent_execution_pb2,
    agent_execution_pb2_grpc,
    migration_pb2_grpc,
    schema_pb2_grpc,
)
from sensei.org.v1 import auth_pb2, auth_pb2_grpc
from sensei.verification.v1 import verification_pb2_grpc

CALL_SECONDS = 30.0


def log(message: str) -> None:
    """A progress line on stderr."""
    print(f"[agent-worker] {message}", file=sys.stderr, flush=True)


def struct(value: Mapping[str, Any]) -> struct_pb2.Struct:
    """A JSON object as a google.protobuf.Struct."""
    message = struct_pb2.Struct()
    message.update(dict(value))
    return message


def as_dict(message: struct_pb2.Struct) -> dict[str, Any]:
    """A google.protobuf.Struct as a JSON object."""
    value: dict[str, Any] = json_format.MessageToDict(message)
    return value


@dataclass(frozen=True)
class Addresses:
    """Where the services listen."""

    org: str
    migration: str
    verification: str


class Api:
    """Typed stubs on one channel per service, and the caller's bearer token."""

    def __init__(self, addresses: Addresses) -> None:
        self._channels = [
            grpc.aio.insecure_channel(address)
            for address in (addresses.org, addresses.migration, addresses.verification)
        ]
        org, migration, verification = self._channels
        self.auth = cast("auth_pb2_grpc.AuthServiceAsyncStub", auth_pb2_grpc.AuthServiceStub(org))
        self.migrations = cast(
            "migration_pb2_grpc.MigrationServiceAsyncStub",
            migration_pb2_grpc.MigrationServiceStub(migration),
        )
        self.schemas = cast(
            "schema_pb2_grpc.SchemaServiceAsyncStub", schema_pb2_grpc.SchemaServiceStub(migration)
        )
        self.agents = cast(
            "agent_execution_pb2_grpc.AgentExecutionServiceAsyncStub",
            agent_execution_pb2_grpc.AgentExecutionServiceStub(migration),
        )
        self.verifications = cast(
            "verification_pb2_grpc.VerificationServiceAsyncStub",
            verification_pb2_grpc.VerificationServiceStub(verification),
        )
        self.metadata: tuple[tuple[str, str], ...] = ()
        self.org = ""

    async def login(self, api_key: str) -> None:
        """Exchanges the API key; remembers the token and the caller's organization."""
        response = await self.auth.ExchangeApiKey(
            auth_pb2.ExchangeApiKeyRequest(api_key=api_key), timeout=CALL_SECONDS
        )
        token = response.access_token
        self.metadata = (("authorization", f"Bearer {token}"),)
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        if not claims.get("org"):
            raise SystemExit("use a user's API key: migrations belong to an organization")
        self.org = f"organizations/{claims['org']}"

    async def close(self) -> None:
        """Closes the channels."""
        for channel in self._channels:
            await channel.close()


class Agent:
    """One recorded agent execution: started on entry, completed with its outcome."""

    def __init__(
        self,
        api: Api,
        migration: str,
        agent_type: agent_execution_pb2.AgentType.ValueType,
        task: Mapping[str, Any],
    ) -> None:
        self._api = api
        self._migration = migration
        self._type = agent_type
        self._task = task
        self._name = ""
        self._started = 0.0
        self.output: dict[str, Any] = {}
        self.tokens_used = 0

    async def __aenter__(self) -> Agent:
        response = await self._api.agents.StartAgentExecution(
            agent_execution_pb2.StartAgentExecutionRequest(
                parent=self._migration,
                agent_execution=agent_execution_pb2.AgentExecution(
                    agent_type=self._type,
                    input=struct(self._task),
                ),
                request_id=str(uuid.uuid4()),
            ),
            metadata=self._api.metadata,
            timeout=CALL_SECONDS,
        )
        self._name = response.agent_execution.name
        self._started = time.monotonic()
        log(f"agent {agent_execution_pb2.AgentType.Name(self._type)} started")
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: object, _: object) -> None:
        failed = kind is not None
        status = (
            agent_execution_pb2.AGENT_EXECUTION_STATUS_FAILED
            if failed
            else agent_execution_pb2.AGENT_EXECUTION_STATUS_SUCCEEDED
        )
        await self._api.agents.CompleteAgentExecution(
            agent_execution_pb2.CompleteAgentExecutionRequest(
                name=self._name,
                status=status,
                tokens_used=self.tokens_used,
                duration_ms=max(1, round((time.monotonic() - self._started) * 1000)),
                output=struct(self.output),
                error_message=str(error) if failed else "",
            ),
            metadata=self._api.metadata,
            timeout=CALL_SECONDS,
        )
        outcome = "failed" if failed else f"succeeded ({self.tokens_used} tokens)"
        log(f"agent {agent_execution_pb2.AgentType.Name(self._type)} {outcome}")


def estimated_tokens(value: object) -> int:
    """Tokens an agent spent on `value`: about one per 4 bytes of JSON it handled."""
    return max(1, len(json.dumps(value)) // 4)
