"""Carrying out one verification: reach both databases, capture their schemas, compare.

Connection configs come from the migration service (`GetMigrationConnections`); the schemas
are captured and diffed by the migration service (`CaptureSchema`, `DiffSchemas`), which also
gives the fingerprints a certificate names as its subjects. Row counts and checksums run here,
on connections this service opens to the source and target: asyncpg for PostgreSQL, asyncmy
for a MySQL/MariaDB source (shared/mysql.py), each behind its dialect (dialects.py). A result
comparing two engines names them (`engines`); without it both sides were PostgreSQL.

Connections go through the destination policy (shared/destinations.py). Failures that
retrying cannot fix (a database that cannot be reached, a deleted migration, a refused
request) are `CheckError`s: the verification ends in ERROR with a clear result. A database
that cannot be reached, refuses the login or fails a query gets one generic reason
(`SOURCE_UNREACHABLE` / `TARGET_UNREACHABLE` / `DATABASE_ERROR`), never the server's text:
the details go to the service log with the request id.
An unavailable migration service raises `Unavailable`: the job is retried later.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from services.verification import checksum_mysql
from services.verification.checksum import ChecksumOptions, compare_checksums
from services.verification.checksum_mysql import MySQLDialect
from services.verification.checksum_postgres import PostgresDialect
from services.verification.dialects import Dialect
from services.verification.domain import CheckError, Verification, VerificationType
from services.verification.migration_client import MigrationClient
from services.verification.row_counts import ProgressCallback, compare_row_counts
from services.verification.schema_parity import SchemaRef, parity_tables, schema_parity
from shared.connection_configs import MYSQL, Destination, destination_of
from shared.db import DATABASE_ERRORS
from shared.destinations import DestinationNotAllowed, DestinationPolicy, DestinationUnreachable
from shared.errors import FailedPrecondition, NotFound
from shared.mysql import MYSQL_ERRORS, connect_mysql

# What a failing query on either engine can raise.
_QUERY_ERRORS = (*DATABASE_ERRORS, *MYSQL_ERRORS)

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class CheckOutcome:
    """A verification carried out: its result, score and the schemas it saw."""

    result: dict[str, Any]
    score: float
    source: SchemaRef
    target: SchemaRef


class CheckRunner:
    """Runs SCHEMA_PARITY, ROW_COUNT and CHECKSUM verifications."""

    def __init__(
        self,
        migrations: MigrationClient,
        destinations: DestinationPolicy,
        *,
        connect_timeout_seconds: float = 10.0,
        checksum_options: ChecksumOptions | None = None,
    ) -> None:
        self._migrations = migrations
        self._destinations = destinations
        self._connect_timeout = connect_timeout_seconds
        self._checksum_options = checksum_options or ChecksumOptions()

    async def run(
        self, verification: Verification, attempt: int, progress: ProgressCallback
    ) -> CheckOutcome:
        """Carries out `verification`; `progress` gets (tables_done, tables_total)."""
        migration = verification.migration_name
        source_config, target_config = await self._refusals_are_errors(
            self._migrations.connections(migration)
        )
        source_destination = _destination(source_config, "source")
        target_destination = _destination(target_config, "target")
        across = source_destination.engine != target_destination.engine
        # A MySQL source's tables are translated into one schema of the target.
        namespace = target_destination.schema if across else None
        async with (
            self._connect(source_destination, "source", namespace) as source,
            self._connect(target_destination, "target", namespace) as target,
        ):
            source_schema = await self._refusals_are_errors(
                self._migrations.capture(migration, "source", f"{verification.id}/{attempt}/s")
            )
            target_schema = await self._refusals_are_errors(
                self._migrations.capture(migration, "target", f"{verification.id}/{attempt}/t")
            )
            tables = list(verification.tables)
            if verification.type is VerificationType.SCHEMA_PARITY:
                every = parity_tables(source_schema.definition, target_schema.definition)
                total = len(tables) if tables else len(every)
                await progress(0, total)
                differences = await self._refusals_are_errors(
                    self._migrations.diff(source_schema, target_schema)
                )
                result = schema_parity(source_schema, target_schema, differences, tables)
                await progress(total, total)
                if across:
                    result["engines"] = _engines(source_destination, target_destination)
                return CheckOutcome(result, float(result["score"]), source_schema, target_schema)
            try:
                if verification.type is VerificationType.ROW_COUNT:
                    counts = await compare_row_counts(source, target, tables, progress)
                    result, score = counts.to_dict(), counts.score
                else:
                    checksums = await compare_checksums(
                        source, target, tables, self._checksum_options, progress
                    )
                    result, score = checksums.to_dict(), checksums.score
            except _QUERY_ERRORS as exc:
                log.warning(
                    "comparing %s with %s failed: %s: %s",
                    source_destination.describe(),
                    target_destination.describe(),
                    type(exc).__name__,
                    exc,
                )
                raise CheckError(
                    "DATABASE_ERROR",
                    "comparing the databases failed (a query on the source or target did"
                    " not complete)",
                ) from None
        result["source_schema"] = source_schema.name
        result["target_schema"] = target_schema.name
        if across:
            result["engines"] = _engines(source_destination, target_destination)
        return CheckOutcome(result, score, source_schema, target_schema)

    @staticmethod
    async def _refusals_are_errors(call: Awaitable[T]) -> T:
        """Awaits a migration-service call; a missing migration or refusal is a CheckError."""
        try:
            return await call
        except NotFound as exc:
            raise CheckError(
                "MIGRATION_NOT_FOUND", f"the migration is gone: {exc.message}"
            ) from exc
        except FailedPrecondition as exc:
            if exc.reason in _KEPT_REASONS:
                raise CheckError(exc.reason, exc.message) from exc
            raise CheckError("MIGRATION_SERVICE_REFUSED", exc.message) from exc

    @contextlib.asynccontextmanager
    async def _connect(
        self, destination: Destination, side: str, namespace: str | None
    ) -> AsyncIterator[Dialect]:
        """`side`'s database as a Dialect; `namespace` (across engines) names its tables."""
        try:
            if destination.engine == MYSQL:
                connection = await connect_mysql(
                    self._destinations,
                    destination,
                    timeout=self._connect_timeout,
                    session=checksum_mysql.SESSION,
                )
            else:
                connection = await self._destinations.connect(
                    destination,
                    timeout=self._connect_timeout,
                    server_settings={"application_name": "sensei-verification"},
                )
        except DestinationNotAllowed:
            raise CheckError(
                "DESTINATION_NOT_ALLOWED",
                f"the {side} database's address is not allowed: the platform's own servers,"
                " loopback, link-local and metadata addresses are refused unless an operator"
                " allows them",
                side=side,
            ) from None
        except DestinationUnreachable:
            raise CheckError(
                f"{side.upper()}_UNREACHABLE",
                f"cannot read the {side} database: check its address, credentials and that it"
                " accepts connections from Sensei",
                side=side,
            ) from None
        if destination.engine == MYSQL:
            try:
                yield MySQLDialect(connection, namespace or "public")
            finally:
                connection.close()
            return
        try:
            yield PostgresDialect(connection, namespace)
        finally:
            with contextlib.suppress(*DATABASE_ERRORS):
                await connection.close(timeout=5)


# Reasons of the migration service's refusals a verification result keeps as they are.
_KEPT_REASONS = frozenset({"SOURCE_UNREACHABLE", "TARGET_UNREACHABLE", "DESTINATION_NOT_ALLOWED"})


def _engines(source: Destination, target: Destination) -> dict[str, str]:
    """The engines a result compared (``mysql``, ``postgresql``)."""
    return {"source": source.engine, "target": target.engine}


def _destination(config: Mapping[str, Any], side: str) -> Destination:
    """The destination of a migration's `side` config; a CheckError if it is not usable."""
    try:
        return destination_of(config, f"{side}_config")
    except FailedPrecondition as exc:
        raise CheckError(
            "DATABASE_NOT_CONFIGURED",
            f"the migration's {side} connection: {exc.message}",
            side=side,
        ) from None
