"""An example agent worker: drives one migration end to end through the public gRPC API.

    SENSEI_API_KEY=sk_… python examples/agent_worker.py \\
        --source-dsn postgresql://app:secret@old-db:5432/shop \\
        --target-dsn postgresql://app:secret@new-db:5432/shop \\
        --certificate cert.json

What it does, with the RPC of each step:

 1. exchanges its API key for an access token           AuthService.ExchangeApiKey
 2. creates the migration with both connection configs   MigrationService.CreateMigration
 3. starts it (PENDING → ANALYZING)                      MigrationService.StartMigration
 4. SCHEMA_ANALYZER agent: captures the source schema    AgentExecutionService.Start/Complete…,
                                                         SchemaService.CaptureSchema
 5. SCHEMA_MAPPER agent: captures the target schema and  SchemaService.CaptureSchema,
    diffs the two                                        SchemaService.DiffSchemas
 6. ANALYZING → MIGRATING                                MigrationService.AdvanceMigration
 7. DATA_MIGRATOR agent: moves the data table by table,  MigrationService.ReportProgress
    reporting progress (rows copied in chunks, parents
    before children, into the existing target tables)
 8. MIGRATING → VERIFYING                                MigrationService.AdvanceMigration
 9. VALIDATOR agent: a CHECKSUM verification, watched    VerificationService.CreateVerification,
    to its end                                           VerificationService.WatchVerification
10. COMPLETED if it PASSED, else FAILED                  MigrationService.Complete/FailMigration
11. downloads the certificate and verifies it offline,   VerificationService.GetCertificate,
    as a third party would: the DSSE signature with the  VerificationService.ListSigningKeys
    published keys, using only `cryptography`

Progress goes to stderr; the last line on stdout is a JSON summary. Exit status 0 only when
the migration COMPLETED with a VALID certificate. Token counts are estimated from the size of
what each agent read: a model-driven agent reports what its model used.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import sys
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import asyncpg
import grpc
import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from google.protobuf import json_format, struct_pb2

from sensei.migration.v1 import (
    agent_execution_pb2,
    agent_execution_pb2_grpc,
    migration_pb2,
    migration_pb2_grpc,
    schema_pb2,
    schema_pb2_grpc,
)
from sensei.org.v1 import auth_pb2, auth_pb2_grpc
from sensei.verification.v1 import verification_pb2, verification_pb2_grpc

CALL_SECONDS = 30.0
COPY_CHUNK_ROWS = 5000
DSSE_PAYLOAD_TYPE = "application/vnd.in-toto+json"
ERROR_DETAILS_KEY = "grpc-status-details-bin"


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


def copy_order(tables: Mapping[str, Any]) -> list[str]:
    """Tables ordered so that every table comes after the tables its foreign keys reference."""
    ordered: list[str] = []
    visiting: set[str] = set()

    def visit(table: str) -> None:
        if table in ordered or table in visiting:
            return  # done, or a reference cycle: its constraints must be deferred
        visiting.add(table)
        for foreign_key in tables[table].get("foreign_keys", []):
            if foreign_key["referenced_table"] in tables:
                visit(foreign_key["referenced_table"])
        visiting.discard(table)
        ordered.append(table)

    for table in sorted(tables):
        visit(table)
    return ordered


def _qualified(table: str) -> str:
    schema, _, name = table.partition(".")
    return ".".join('"' + part.replace('"', '""') + '"' for part in (schema, name))


async def migrate_table(
    source: asyncpg.Connection,
    target: asyncpg.Connection,
    table: str,
    definition: Mapping[str, Any],
) -> int:
    """Copies one table's rows from source to target in chunks; returns how many.

    The target table is emptied first, so a rerun after a crash starts clean. Generated
    columns are left for the target to compute.
    """
    columns = [
        name
        for name, column in sorted(
            definition["columns"].items(), key=lambda item: item[1]["position"]
        )
        if not column.get("generated")
    ]
    schema, _, name = table.partition(".")
    select = "SELECT " + ", ".join(f'"{c}"' for c in columns) + f" FROM {_qualified(table)}"
    copied = 0
    async with (
        source.transaction(isolation="repeatable_read", readonly=True),
        target.transaction(),
    ):
        await target.execute(f"DELETE FROM {_qualified(table)}")
        cursor = await source.cursor(select)
        while rows := await cursor.fetch(COPY_CHUNK_ROWS):
            await target.copy_records_to_table(
                name, schema_name=schema, columns=columns, records=[tuple(row) for row in rows]
            )
            copied += len(rows)
    return copied


class Worker:
    """Drives one migration through its phases."""

    def __init__(self, api: Api, name: str, source_dsn: str, target_dsn: str) -> None:
        self.api = api
        self.name = name
        self.source_dsn = source_dsn
        self.target_dsn = target_dsn
        self.tokens = 0

    async def _call(self, method: Any, request: Any) -> Any:
        return await method(request, metadata=self.api.metadata, timeout=CALL_SECONDS)

    async def advance(self) -> None:
        """Moves the migration to its next phase."""
        response = await self._call(
            self.api.migrations.AdvanceMigration,
            migration_pb2.AdvanceMigrationRequest(name=self.name),
        )
        log(f"migration is {migration_pb2.MigrationStatus.Name(response.migration.status)}")

    async def progress(self, fraction: float) -> None:
        """Reports how far the migration is."""
        await self._call(
            self.api.migrations.ReportProgress,
            migration_pb2.ReportProgressRequest(name=self.name, progress=fraction),
        )

    async def capture(self, schema_type: schema_pb2.SchemaType.ValueType) -> schema_pb2.Schema:
        """Introspects the live source or target database."""
        response = await self._call(
            self.api.schemas.CaptureSchema,
            schema_pb2.CaptureSchemaRequest(
                parent=self.name, type=schema_type, request_id=str(uuid.uuid4())
            ),
        )
        schema: schema_pb2.Schema = response.schema
        return schema

    async def analyze(self) -> schema_pb2.Schema:
        """SCHEMA_ANALYZER: what is in the source database."""
        async with Agent(
            self.api, self.name, agent_execution_pb2.AGENT_TYPE_SCHEMA_ANALYZER, {"side": "source"}
        ) as agent:
            source = await self.capture(schema_pb2.SCHEMA_TYPE_SOURCE)
            tables = sorted(as_dict(source.definition).get("tables", {}))
            agent.output = {
                "schema": source.name,
                "fingerprint": source.fingerprint,
                "tables": tables,
            }
            agent.tokens_used = estimated_tokens(as_dict(source.definition))
        self.tokens += agent.tokens_used
        log(f"source schema: {len(tables)} tables, fingerprint {source.fingerprint[:12]}…")
        return source

    async def map_schemas(self, source: schema_pb2.Schema) -> None:
        """SCHEMA_MAPPER: compare the target with the source."""
        async with Agent(
            self.api,
            self.name,
            agent_execution_pb2.AGENT_TYPE_SCHEMA_MAPPER,
            {"source": source.name},
        ) as agent:
            target = await self.capture(schema_pb2.SCHEMA_TYPE_TARGET)
            diff = await self._call(
                self.api.schemas.DiffSchemas,
                schema_pb2.DiffSchemasRequest(base_schema=source.name, target_schema=target.name),
            )
            agent.output = {
                "target": target.name,
                "differences": [d.path for d in diff.differences],
            }
            agent.tokens_used = estimated_tokens(as_dict(target.definition))
        self.tokens += agent.tokens_used
        log(f"target schema: {len(diff.differences)} differences from the source")

    async def move_data(self, source: schema_pb2.Schema) -> None:
        """DATA_MIGRATOR: table by table, reporting progress from 0.4 to 0.8."""
        tables: dict[str, Any] = as_dict(source.definition).get("tables", {})
        async with Agent(
            self.api,
            self.name,
            agent_execution_pb2.AGENT_TYPE_DATA_MIGRATOR,
            {"tables": sorted(tables)},
        ) as agent:
            order = copy_order(tables)
            rows: dict[str, int] = {}
            source_db = await asyncpg.connect(self.source_dsn)
            target_db = await asyncpg.connect(self.target_dsn)
            try:
                # Children first: a rerun into a filled target empties it without
                # tripping its foreign keys (each table is emptied again as it is copied).
                for table in reversed(order):
                    await target_db.execute(f"DELETE FROM {_qualified(table)}")
                for done, table in enumerate(order, start=1):
                    rows[table] = await migrate_table(source_db, target_db, table, tables[table])
                    await self.progress(0.4 + 0.4 * done / len(order))
                    log(f"migrated {table} ({done}/{len(order)}, {rows[table]} rows)")
            finally:
                await source_db.close()
                await target_db.close()
            agent.output = {"tables_migrated": len(order), "rows": rows}
            agent.tokens_used = estimated_tokens(tables)
        self.tokens += agent.tokens_used

    async def validate(self) -> verification_pb2.Verification:
        """VALIDATOR: a CHECKSUM verification, watched to the end."""
        async with Agent(
            self.api, self.name, agent_execution_pb2.AGENT_TYPE_VALIDATOR, {"type": "CHECKSUM"}
        ) as agent:
            created = await self._call(
                self.api.verifications.CreateVerification,
                verification_pb2.CreateVerificationRequest(
                    parent=self.name,
                    verification=verification_pb2.Verification(
                        type=verification_pb2.VERIFICATION_TYPE_CHECKSUM
                    ),
                    request_id=str(uuid.uuid4()),
                ),
            )
            final = created.verification
            stream = self.api.verifications.WatchVerification(
                verification_pb2.WatchVerificationRequest(name=final.name),
                metadata=self.api.metadata,
                timeout=600,
            )
            async for message in stream:
                final = message.verification
                progress = final.progress
                status = verification_pb2.VerificationStatus.Name(final.status)
                log(f"verification {status} {progress.tables_done}/{progress.tables_total} tables")
            agent.output = {"verification": final.name, "score": final.score}
            agent.tokens_used = 1
        self.tokens += agent.tokens_used
        return cast(verification_pb2.Verification, final)


def verify_offline(envelope: bytes, jwks: Mapping[str, Any]) -> str:
    """VALID, or why not: the DSSE signature checked with a published, non-revoked key.

    What a third party does with the certificate file and the published keys, with nothing
    but `cryptography` and `rfc8785` (docs/certificates.md describes the format).
    """
    try:
        document = json.loads(envelope)
        payload = base64.b64decode(document["payload"], validate=True)
        signatures = document["signatures"]
        payload_type = document["payloadType"]
    except (ValueError, KeyError, TypeError):
        return "MALFORMED"
    if payload_type != DSSE_PAYLOAD_TYPE:
        return "PAYLOAD_TYPE_MISMATCH"
    # DSSE v1 pre-authentication encoding: what the signature covers.
    type_bytes = payload_type.encode()
    signed = b"DSSEv1 %d %s %d %s" % (len(type_bytes), type_bytes, len(payload), payload)
    keys = {key.get("kid"): key for key in jwks.get("keys", []) if isinstance(key, dict)}
    verdict = "UNKNOWN_KEY"
    for signature in signatures:
        jwk = keys.get(signature.get("keyid"))
        if jwk is None:
            continue
        public_key = ec.EllipticCurvePublicNumbers(
            int.from_bytes(_b64url(jwk["x"]), "big"),
            int.from_bytes(_b64url(jwk["y"]), "big"),
            ec.SECP256R1(),
        ).public_key()
        der = public_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        if hashlib.sha256(der).hexdigest() != signature["keyid"]:
            continue  # a key published under someone else's id
        if jwk.get("status") == "revoked":
            verdict = "KEY_REVOKED"
            continue
        try:
            public_key.verify(base64.b64decode(signature["sig"]), signed, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            verdict = "SIGNATURE_INVALID"
            continue
        predicate = json.loads(payload).get("predicate", {})
        digest = hashlib.sha256(rfc8785.dumps(predicate.get("result"))).hexdigest()
        return "VALID" if predicate.get("resultDigest", {}).get("sha256") == digest else "MALFORMED"
    return verdict


def _b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


async def run(arguments: argparse.Namespace, addresses: Addresses, api_key: str) -> dict[str, Any]:
    """The whole job; returns the summary."""
    api = Api(addresses)
    try:
        await api.login(api_key)
        created = await api.migrations.CreateMigration(
            migration_pb2.CreateMigrationRequest(
                parent=api.org,
                migration=migration_pb2.Migration(
                    display_name=arguments.name,
                    description="driven by examples/agent_worker.py",
                    source_config=struct({"dsn": arguments.source_dsn}),
                    target_config=struct({"dsn": arguments.target_dsn}),
                ),
                request_id=str(uuid.uuid4()),
            ),
            metadata=api.metadata,
            timeout=CALL_SECONDS,
        )
        worker = Worker(api, created.migration.name, arguments.source_dsn, arguments.target_dsn)
        log(f"created {worker.name}")
        await api.migrations.StartMigration(
            migration_pb2.StartMigrationRequest(name=worker.name),
            metadata=api.metadata,
            timeout=CALL_SECONDS,
        )
        log("migration is MIGRATION_STATUS_ANALYZING")
        source = await worker.analyze()
        await worker.progress(0.2)
        await worker.map_schemas(source)
        await worker.progress(0.4)
        await worker.advance()
        await worker.move_data(source)
        await worker.advance()
        verification = await worker.validate()
        passed = verification.status == verification_pb2.VERIFICATION_STATUS_PASSED
        if passed:
            finished = await api.migrations.CompleteMigration(
                migration_pb2.CompleteMigrationRequest(name=worker.name),
                metadata=api.metadata,
                timeout=CALL_SECONDS,
            )
        else:
            finished = await api.migrations.FailMigration(
                migration_pb2.FailMigrationRequest(
                    name=worker.name,
                    reason=f"CHECKSUM verification {verification.name} did not pass",
                ),
                metadata=api.metadata,
                timeout=CALL_SECONDS,
            )
        status = migration_pb2.MigrationStatus.Name(finished.migration.status)
        log(f"migration is {status}")
        summary: dict[str, Any] = {
            "migration": worker.name,
            "status": status.removeprefix("MIGRATION_STATUS_"),
            "verification": verification.name,
            "verificationStatus": verification_pb2.VerificationStatus.Name(
                verification.status
            ).removeprefix("VERIFICATION_STATUS_"),
            "score": verification.score,
            "tokensUsed": worker.tokens,
            "certificate": verification.certificate,
            "validity": "",
        }
        if not verification.certificate:
            return summary
        certificate = await api.verifications.GetCertificate(
            verification_pb2.GetCertificateRequest(name=verification.certificate),
            metadata=api.metadata,
            timeout=CALL_SECONDS,
        )
        envelope = certificate.certificate.envelope
        keys = await api.verifications.ListSigningKeys(
            verification_pb2.ListSigningKeysRequest(page_size=1000), timeout=CALL_SECONDS
        )
        jwks = {"keys": [json_format.MessageToDict(key.jwk) for key in keys.signing_keys]}
        if arguments.certificate is not None:
            arguments.certificate.write_bytes(envelope)
            log(f"certificate saved to {arguments.certificate}")
        summary["validity"] = verify_offline(envelope, jwks)
        log(f"certificate {verification.certificate}: {summary['validity']} (checked offline)")
        return summary
    finally:
        await api.close()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Drive one Sensei migration end to end (an example agent worker)."
    )
    # Defaults: the dev stack's sample databases (`make run` puts them in .sensei/dev.env).
    source, target = (os.environ.get(f"SENSEI_SAMPLE_{s}_URL") for s in ("SOURCE", "TARGET"))
    parser.add_argument(
        "--source-dsn",
        default=source,
        required=not source,
        help="postgresql:// URL of the source (default: $SENSEI_SAMPLE_SOURCE_URL)",
    )
    parser.add_argument(
        "--target-dsn",
        default=target,
        required=not target,
        help="postgresql:// URL of the target (default: $SENSEI_SAMPLE_TARGET_URL)",
    )
    parser.add_argument("--name", default="agent worker example", help="migration display name")
    parser.add_argument("--certificate", type=Path, help="save the certificate envelope here")
    return parser


def _describe(error: grpc.aio.AioRpcError) -> str:
    from google.rpc import error_details_pb2, status_pb2

    text = f"{error.code().name}: {error.details()}"
    for key, value in error.trailing_metadata() or ():
        if key == ERROR_DETAILS_KEY:
            for detail in status_pb2.Status.FromString(value).details:
                info = error_details_pb2.ErrorInfo()
                if detail.Unpack(info):
                    text += f" [{info.reason}]"
    return text


def main(argv: list[str] | None = None) -> int:
    """Runs the worker; 0 when the migration COMPLETED with a VALID certificate."""
    arguments = _parser().parse_args(argv)
    api_key = os.environ.get("SENSEI_API_KEY", "")
    if not api_key:
        print("set SENSEI_API_KEY (an organization member's API key)", file=sys.stderr)
        return 2
    addresses = Addresses(
        org=os.environ.get("SENSEI_ORG_ADDR", "127.0.0.1:50051"),
        migration=os.environ.get("SENSEI_MIGRATION_ADDR", "127.0.0.1:50052"),
        verification=os.environ.get("SENSEI_VERIFICATION_ADDR", "127.0.0.1:50053"),
    )
    try:
        summary = asyncio.run(run(arguments, addresses, api_key))
    except grpc.aio.AioRpcError as error:
        print(f"[agent-worker] failed: {_describe(error)}", file=sys.stderr)
        return 1
    print(json.dumps(summary))
    return 0 if summary["status"] == "COMPLETED" and summary["validity"] == "VALID" else 1


if __name__ == "__main__":
    sys.exit(main())
