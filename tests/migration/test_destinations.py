"""The destination policy, attacked over gRPC through CreateMigration, UpdateMigration and
CaptureSchema: a MEMBER must not reach the platform's own database server in any address
form, metadata or link-local addresses, local files or sockets, nor make the service send a
stored password to a server of their choosing, nor tell apart why a database is unreachable.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import grpc
import pytest
from google.protobuf import field_mask_pb2

from sensei.migration.v1 import migration_pb2, schema_pb2
from tests.conftest import Cluster
from tests.harness import Identity, Suite, bad_request_fields, error_info
from tests.harness.fake_servers import closed_port, fake_http, fake_postgres
from tests.migration.conftest import Api, rpc_error, struct

MakeDatabase = Callable[[], Awaitable[str]]
ALLOWED = "SENSEI_ALLOWED_DESTINATIONS"


def _platform(suite: Suite) -> tuple[int, str]:
    """(port, database) of the platform's own server, where the services keep their data."""
    parts = urlsplit(suite.database_url)
    return parts.port or 5432, parts.path.lstrip("/")


def _config(host: str, port: int, database: str, **extra: Any) -> dict[str, Any]:
    return {"host": host, "port": port, "database": database, "user": "postgres", **extra}


async def _capture_error(api: Api, owner: Identity, config: dict[str, Any]) -> Any:
    migration = await api.create(owner, source_config=config)
    return await rpc_error(
        api.schemas.CaptureSchema(
            schema_pb2.CaptureSchemaRequest(parent=migration.name, type=1),
            metadata=owner.metadata,
        )
    )


# Every way to write "the platform's server" that reaches it over TCP.
PLATFORM_FORMS: dict[str, Callable[[int, str], dict[str, Any]]] = {
    "url 127.0.0.1": lambda p, d: {"dsn": f"postgresql://postgres@127.0.0.1:{p}/{d}"},
    "localhost": lambda p, d: _config("localhost", p, d),
    "LOCALHOST.": lambda p, d: _config("LOCALHOST.", p, d),
    "url [::1]": lambda p, d: {"dsn": f"postgresql://postgres@[::1]:{p}/{d}"},
    "127.0.0.2": lambda p, d: _config("127.0.0.2", p, d),
    "127.1": lambda p, d: _config("127.1", p, d),
    "decimal 2130706433": lambda p, d: _config("2130706433", p, d),
    "::ffff:127.0.0.1": lambda p, d: _config("::ffff:127.0.0.1", p, d),
    "0.0.0.0": lambda p, d: _config("0.0.0.0", p, d),
    "dsn host, keys override": lambda p, d: {
        "dsn": f"postgresql://postgres@db.example.com/{d}",
        "host": "127.0.0.1",
        "port": p,
    },
}


@pytest.mark.parametrize("form", sorted(PLATFORM_FORMS))
async def test_the_platform_server_is_refused_in_every_address_form(api: Api, form: str) -> None:
    owner = await api.tenant()
    port, database = _platform(api.suite)
    error = await _capture_error(api, owner, PLATFORM_FORMS[form](port, database))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_info(error).reason == "DESTINATION_NOT_ALLOWED"


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"host": "/var/run/postgresql"}, "migration.source_config.host"),
        ({"host": "/tmp"}, "migration.source_config.host"),
        ({"dsn": "postgresql://postgres@/sensei?host=/tmp"}, "migration.source_config.dsn?host"),
        ({"dsn": "postgresql://postgres@%2Ftmp/sensei"}, "migration.source_config.host"),
        ({"dsn": "postgresql://a@h/d?hostaddr=127.0.0.1"}, "migration.source_config.dsn?hostaddr"),
    ],
)
async def test_unix_sockets_are_refused_when_the_config_is_sent(
    api: Api, config: dict[str, Any], field: str
) -> None:
    owner = await api.tenant()
    error = await rpc_error(api.create(owner, source_config=config))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in bad_request_fields(error)


async def test_a_url_without_a_host_does_not_fall_back_to_local_sockets(api: Api) -> None:
    owner = await api.tenant()
    error = await _capture_error(api, owner, {"dsn": "postgresql://postgres@/sensei"})
    assert error_info(error).reason == "CONNECTION_NOT_CONFIGURED"


@pytest.mark.parametrize(
    "host",
    [
        "169.254.169.254",
        "metadata.google.internal",
        "fd00:ec2::254",
        "169.254.10.10",
        "fe80::1",
    ],
)
async def test_metadata_and_link_local_addresses_are_refused(api: Api, host: str) -> None:
    owner = await api.tenant()
    error = await _capture_error(api, owner, _config(host, 80, "x"))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_info(error).reason == "DESTINATION_NOT_ALLOWED"


async def test_allowing_all_loopback_still_refuses_the_platform_server(
    suite: Suite, sample_postgres: Cluster, make_sample_database: MakeDatabase
) -> None:
    await suite.start(
        "migration",
        env={ALLOWED: "127.0.0.0/8,::1,169.254.0.0/16", "SENSEI_ENV": "dev"},
    )
    api = Api(suite)
    owner = await api.tenant()
    port, database = _platform(suite)
    for host in ("127.0.0.1", "localhost", "127.0.0.2", "::1"):
        error = await _capture_error(api, owner, _config(host, port, database))
        assert error_info(error).reason == "DESTINATION_NOT_ALLOWED", host
    metadata = await _capture_error(api, owner, _config("169.254.169.254", 80, "x"))
    assert error_info(metadata).reason == "DESTINATION_NOT_ALLOWED"
    # The sample server, on loopback too, is reachable.
    sample = urlsplit(await make_sample_database())
    captured = await api.schemas.CaptureSchema(
        schema_pb2.CaptureSchemaRequest(
            parent=(
                await api.create(
                    owner,
                    source_config=_config("localhost", sample.port or 5432, sample.path[1:]),
                )
            ).name,
            type=1,
        ),
        metadata=owner.metadata,
    )
    assert captured.schema.metadata["captured_from"] == "source"


async def test_the_sample_server_is_reachable_only_when_allowed(
    suite: Suite, make_sample_database: MakeDatabase
) -> None:
    await suite.start("migration", env={ALLOWED: ""})
    api = Api(suite)
    owner = await api.tenant()
    sample = urlsplit(await make_sample_database())
    error = await _capture_error(
        api, owner, _config("127.0.0.1", sample.port or 5432, sample.path[1:])
    )
    assert error_info(error).reason == "DESTINATION_NOT_ALLOWED"


FILE_PARAMETERS = [
    "passfile=/etc/passwd",
    "sslrootcert=/etc/passwd",
    "sslcert=/etc/passwd",
    "sslkey=/etc/passwd",
    "sslcrl=/etc/passwd",
    "service=prod",
    "servicefile=/etc/passwd",
    "options=-c%20default_transaction_read_only%3Doff",
    "sslpassword=hunter2-secret",
    "target_session_attrs=any",
]


@pytest.mark.parametrize("parameter", FILE_PARAMETERS)
async def test_dsn_parameters_outside_the_allowlist_are_refused_by_name(
    api: Api, parameter: str
) -> None:
    owner = await api.tenant()
    name, _, value = parameter.partition("=")
    error = await rpc_error(
        api.create(owner, source_config={"dsn": f"postgresql://app@db.example.com/x?{parameter}"})
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"migration.source_config.dsn?{name}" in bad_request_fields(error)
    assert value not in str(error.details()) and value not in str(error.debug_error_string())


async def test_update_refuses_a_file_parameter_too(api: Api) -> None:
    owner = await api.tenant()
    created = await api.create(owner, source_config={"dsn": "postgresql://app@db.example.com/x"})
    edited = migration_pb2.Migration(
        name=created.name,
        source_config=struct({"dsn": "postgresql://app@db.example.com/x?passfile=/etc/passwd"}),
    )
    error = await rpc_error(
        api.migrations.UpdateMigration(
            migration_pb2.UpdateMigrationRequest(
                migration=edited, update_mask=field_mask_pb2.FieldMask(paths=["source_config"])
            ),
            metadata=owner.metadata,
        )
    )
    assert "migration.source_config.dsn?passfile" in bad_request_fields(error)


async def _update_source(api: Api, owner: Identity, edited: migration_pb2.Migration) -> Any:
    return await api.migrations.UpdateMigration(
        migration_pb2.UpdateMigrationRequest(
            migration=edited, update_mask=field_mask_pb2.FieldMask(paths=["source_config"])
        ),
        metadata=owner.metadata,
    )


async def test_a_stored_password_never_follows_a_changed_destination(
    suite: Suite, sample_postgres: Cluster, make_sample_database: MakeDatabase
) -> None:
    secret = "stored-secret-" + uuid.uuid4().hex
    async with fake_postgres() as fake:
        await suite.start(
            "migration", env={ALLOWED: f"{sample_postgres.destination},127.0.0.1:{fake.port}"}
        )
        api = Api(suite)
        owner = await api.tenant()
        sample = urlsplit(await make_sample_database())
        database = sample.path[1:]
        created = await api.create(
            owner,
            source_config=_config("127.0.0.1", sample.port or 5432, database, password=secret),
        )
        assert dict(created.source_config)["password"] == "REDACTED"
        changes: list[dict[str, Any]] = [
            {"port": fake.port},
            {"host": "localhost", "port": fake.port},
            {"database": "other"},
            {"user": "admin"},
        ]
        for change in changes:
            edited = migration_pb2.Migration()
            edited.CopyFrom(created)  # as read: password REDACTED
            edited.source_config.update(change)
            error = await rpc_error(_update_source(api, owner, edited))
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, change
            assert "migration.source_config.password" in bad_request_fields(error)
            assert "send the password again" in str(error.details())
        # The DSN form of the same move.
        edited = migration_pb2.Migration(
            name=created.name,
            source_config=struct(
                {"dsn": f"postgresql://postgres:REDACTED@127.0.0.1:{fake.port}/{database}"}
            ),
        )
        error = await rpc_error(_update_source(api, owner, edited))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        # Still the original destination: capturing works and the fake server saw nothing.
        await api.schemas.CaptureSchema(
            schema_pb2.CaptureSchemaRequest(parent=created.name, type=1),
            metadata=owner.metadata,
        )
        assert fake.passwords == [] and fake.startups == []


async def test_a_config_without_a_password_never_sends_the_services_own(
    suite: Suite, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    passfile = tmp_path / "pgpass"
    passfile.write_text("*:*:*:*:service-passfile-secret\n")
    passfile.chmod(0o600)
    monkeypatch.setenv("PGPASSWORD", "service-env-secret")
    monkeypatch.setenv("PGPASSFILE", str(passfile))
    async with fake_postgres() as fake:
        await suite.start("migration", env={ALLOWED: f"127.0.0.1:{fake.port}"})
        api = Api(suite)
        owner = await api.tenant()
        error = await _capture_error(api, owner, _config("127.0.0.1", fake.port, "shop"))
        assert error_info(error).reason == "SOURCE_UNREACHABLE"
        assert fake.passwords == [""]


async def test_every_unreachable_database_gets_the_same_answer(
    suite: Suite, sample_postgres: Cluster, make_sample_database: MakeDatabase
) -> None:
    async with fake_postgres() as fake, fake_http() as http:
        await suite.start("org")
        grpc_port = int(suite.address("org").rsplit(":", 1)[1])
        refused = closed_port()
        ports = (fake.port, http.port, grpc_port, refused)
        allowed = ",".join([sample_postgres.destination, *(f"127.0.0.1:{p}" for p in ports)])
        await suite.start("migration", env={ALLOWED: allowed})
        api = Api(suite)
        owner = await api.tenant()
        sample = urlsplit(await make_sample_database())
        sample_port = sample.port or 5432
        configs = {
            "refused port": _config("127.0.0.1", refused, "shop"),
            "http port": _config("127.0.0.1", http.port, "shop"),
            "grpc port": _config("127.0.0.1", grpc_port, "shop"),
            "wrong password": _config("127.0.0.1", fake.port, "shop", password="wrong"),
            "real server, no such database": _config("127.0.0.1", sample_port, "no_such_db"),
        }
        answers = {}
        for label, config in configs.items():
            error = await _capture_error(api, owner, config)
            info = error_info(error)
            answers[label] = (error.code(), error.details(), info.reason, dict(info.metadata))
        assert fake.passwords == ["wrong"]  # the login really was tried, and refused
        assert len(set(map(str, answers.values()))) == 1, answers
        code, details, reason, _ = answers["refused port"]
        assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "SOURCE_UNREACHABLE")
        for leak in ("Error", "refused", "HTTP", "no_such_db", "password authentication"):
            assert leak not in details
