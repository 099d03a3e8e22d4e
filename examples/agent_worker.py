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
    diffs the two (a MySQL source: first creates the     SchemaService.DiffSchemas
    tables the target lacks with the type map's types,
    examples/mysql_copy.py)
 6. ANALYZING → MIGRATING                                MigrationService.AdvanceMigration
 7. DATA_MIGRATOR agent: moves the data table by table,  MigrationService.ReportProgress
    reporting progress (rows copied in chunks, parents
    before children; examples/postgres_copy.py, or
    examples/mysql_copy.py from MySQL/MariaDB)
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
import json
import os
import sys
import uuid
from pathlib import Path
from typing import Any, cast

import asyncpg
import grpc
from google.protobuf import json_format

from sensei.migration.v1 import agent_execution_pb2, migration_pb2, schema_pb2
from sensei.verification.v1 import verification_pb2

if __package__:  # imported as examples.agent_worker
    from examples import mysql_copy, postgres_copy
    from examples.agent_api import (
        CALL_SECONDS,
        Addresses,
        Agent,
        Api,
        as_dict,
        estimated_tokens,
        log,
        struct,
    )
    from examples.offline_check import verify_offline
else:  # run as a script: its directory is on the path
    import mysql_copy  # type: ignore[import-not-found,no-redef]
    import postgres_copy  # type: ignore[import-not-found,no-redef]
    from agent_api import (  # type: ignore[import-not-found,no-redef]
        CALL_SECONDS,
        Addresses,
        Agent,
        Api,
        as_dict,
        estimated_tokens,
        log,
        struct,
    )
    from offline_check import verify_offline  # type: ignore[import-not-found,no-redef]

__all__ = ["main", "run", "verify_offline"]
ERROR_DETAILS_KEY = "grpc-status-details-bin"


class Worker:
    """Drives one migration through its phases."""

    def __init__(self, api: Api, name: str, source_dsn: str, target_dsn: str) -> None:
        self.api = api
        self.name = name
        self.source_dsn = source_dsn
        self.target_dsn = target_dsn
        self.tokens = 0
        # Target tables this worker created from a MySQL source's schema.
        self.created: set[str] = set()

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
            if mysql_copy.is_mysql(self.source_dsn):
                await self.translate_tables(source)
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

    async def translate_tables(self, source: schema_pb2.Schema) -> None:
        """A MySQL source: creates the tables the target lacks, with the type map's types."""
        tables: dict[str, Any] = as_dict(source.definition).get("tables", {})
        target_db = await asyncpg.connect(self.target_dsn)
        try:
            self.created = await mysql_copy.create_missing_tables(target_db, tables)
        finally:
            await target_db.close()
        log(f"created {len(self.created)} target tables from the source schema")

    async def move_data(self, source: schema_pb2.Schema) -> None:
        """DATA_MIGRATOR: table by table, reporting progress from 0.4 to 0.8."""
        tables: dict[str, Any] = as_dict(source.definition).get("tables", {})
        async with Agent(
            self.api,
            self.name,
            agent_execution_pb2.AGENT_TYPE_DATA_MIGRATOR,
            {"tables": sorted(tables)},
        ) as agent:
            order = postgres_copy.copy_order(tables)
            rows: dict[str, int] = {}
            from_mysql = mysql_copy.is_mysql(self.source_dsn)
            source_db: Any = await (
                mysql_copy.connect(self.source_dsn)
                if from_mysql
                else asyncpg.connect(self.source_dsn)
            )
            target_db = await asyncpg.connect(self.target_dsn)
            if from_mysql:
                await mysql_copy.prepare_target(target_db)
            try:
                # Children first: a rerun into a filled target empties it without
                # tripping its foreign keys (each table is emptied again as it is copied).
                for table in reversed(order):
                    name = mysql_copy.target_name(table) if from_mysql else table
                    await target_db.execute(f"DELETE FROM {postgres_copy.qualified(name)}")
                for done, table in enumerate(order, start=1):
                    if from_mysql:
                        rows[table] = await mysql_copy.migrate_table(
                            source_db, target_db, table, tables[table], table in self.created
                        )
                    else:
                        rows[table] = await postgres_copy.migrate_table(
                            source_db, target_db, table, tables[table]
                        )
                    await self.progress(0.4 + 0.4 * done / len(order))
                    log(f"migrated {table} ({done}/{len(order)}, {rows[table]} rows)")
            finally:
                await target_db.close()
                if from_mysql:
                    source_db.close()  # asyncmy closes synchronously
                else:
                    await source_db.close()
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
        help="postgresql:// or mysql:// URL of the source (default: $SENSEI_SAMPLE_SOURCE_URL)",
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
