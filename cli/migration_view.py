"""How a migration is shown, shared by `migrations get` and the lifecycle verbs."""

from __future__ import annotations

from typing import cast

from cli.client import Client
from cli.output import Output, as_json, enum_label, percent, when
from sensei.migration.v1 import migration_pb2, migration_pb2_grpc

pb = migration_pb2
STATUS_PREFIX = "MIGRATION_STATUS_"


def stub(client: Client) -> migration_pb2_grpc.MigrationServiceAsyncStub:
    """The MigrationService of this command's client."""
    return cast(
        "migration_pb2_grpc.MigrationServiceAsyncStub",
        migration_pb2_grpc.MigrationServiceStub(client.channel("migration")),
    )


def status_label(status: int) -> str:
    """`MIGRATING` for MIGRATION_STATUS_MIGRATING."""
    return enum_label(pb.MigrationStatus.Name(status), STATUS_PREFIX)  # type: ignore[arg-type]


def show(migration: migration_pb2.Migration, out: Output) -> None:
    """Prints a migration as fields (or one JSON object)."""
    if out.json_mode:
        out.json(as_json(migration))
        return
    paused = migration.status == pb.MIGRATION_STATUS_PAUSED
    out.fields(
        [
            ("name", migration.name),
            ("display name", migration.display_name),
            ("description", migration.description),
            ("status", status_label(migration.status)),
            ("paused in", status_label(migration.paused_status) if paused else ""),
            ("failure reason", migration.failure_reason),
            ("progress", percent(migration.progress)),
            ("source", config_summary(as_json(migration.source_config))),
            ("target", config_summary(as_json(migration.target_config))),
            ("created", when(migration.create_time)),
            ("started", when(migration.start_time)),
            ("completed", when(migration.complete_time)),
            ("updated", when(migration.update_time)),
            ("etag", migration.etag),
        ]
    )


def config_summary(config: object) -> str:
    """A connection config as one `postgresql://user@host:port/database` line."""
    # Passwords arrive redacted; show the connection's shape, not a wall of JSON.
    if not isinstance(config, dict) or not config:
        return ""
    if "dsn" in config:
        return str(config["dsn"])
    host = config.get("host", "?")
    port = config.get("port")
    where = f"{host}:{port}" if port is not None else str(host)
    user = f"{config['user']}@" if config.get("user") else ""
    return f"postgresql://{user}{where}/{config.get('database', '')}"
