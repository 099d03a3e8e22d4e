"""Connection configs: accepted keys, redaction in responses, secrets kept across updates."""

from __future__ import annotations

from typing import Any

import pytest

from services.migration.connection_config import (
    REDACTED,
    connect_arguments,
    connection_config_violations,
    merge_redacted_connection_config,
    redact_connection_config,
)
from shared.errors import FailedPrecondition

FULL = {
    "host": "db.internal",
    "port": 5432.0,
    "database": "shop",
    "user": "app",
    "password": "s3cret",
    "sslmode": "require",
}


def test_full_config_is_valid() -> None:
    assert connection_config_violations(FULL, "source_config") == []


def test_empty_config_is_valid() -> None:
    assert connection_config_violations({}, "source_config") == []


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"port": 70000}, "source_config.port"),
        ({"port": 5432.5}, "source_config.port"),
        ({"port": "5432"}, "source_config.port"),
        ({"sslmode": "sometimes"}, "source_config.sslmode"),
        ({"dsn": "mysql://db/shop"}, "source_config.dsn"),
        ({"dsn": "postgresql://db:notaport/shop"}, "source_config.dsn"),
        ({"host": 42}, "source_config.host"),
        ({"hostname": "db"}, "source_config.hostname"),
    ],
)
def test_bad_config_value_is_a_violation(config: dict[str, Any], field: str) -> None:
    assert [v.field for v in connection_config_violations(config, "source_config")] == [field]


def test_config_that_is_not_an_object_is_a_violation() -> None:
    assert [v.field for v in connection_config_violations("db", "target_config")] == [
        "target_config"
    ]


def test_redaction_hides_the_password() -> None:
    assert redact_connection_config(FULL)["password"] == REDACTED


def test_redaction_hides_the_password_inside_a_dsn() -> None:
    redacted = redact_connection_config({"dsn": "postgresql://app:s3cret@db:5432/shop"})
    assert redacted["dsn"] == f"postgresql://app:{REDACTED}@db:5432/shop"


def test_redaction_hides_a_password_query_parameter() -> None:
    redacted = redact_connection_config({"dsn": "postgresql://db/shop?user=app&password=s3cret"})
    assert "s3cret" not in redacted["dsn"]


def test_redaction_leaves_other_keys_alone() -> None:
    redacted = redact_connection_config(FULL)
    assert {k: v for k, v in redacted.items() if k != "password"} == {
        k: v for k, v in FULL.items() if k != "password"
    }


def test_sending_back_a_redacted_password_keeps_the_stored_one() -> None:
    new = {**redact_connection_config(FULL), "host": "db2.internal"}
    merged = merge_redacted_connection_config(new, FULL)
    assert (merged["password"], merged["host"]) == ("s3cret", "db2.internal")


def test_sending_back_a_redacted_dsn_keeps_the_stored_password() -> None:
    stored = {"dsn": "postgresql://app:s3cret@db/shop"}
    new = {"dsn": f"postgresql://app:{REDACTED}@db/other"}
    assert (
        merge_redacted_connection_config(new, stored)["dsn"] == "postgresql://app:s3cret@db/other"
    )


def test_a_new_password_replaces_the_stored_one() -> None:
    merged = merge_redacted_connection_config({**FULL, "password": "fresh"}, FULL)
    assert merged["password"] == "fresh"


def test_connect_arguments_map_the_keys_for_asyncpg() -> None:
    assert connect_arguments(FULL, field_name="source_config") == {
        "host": "db.internal",
        "port": 5432,
        "database": "shop",
        "user": "app",
        "password": "s3cret",
        "ssl": "require",
    }


def test_config_without_a_server_cannot_be_connected() -> None:
    with pytest.raises(FailedPrecondition) as caught:
        connect_arguments({"database": "shop"}, field_name="target_config")
    assert caught.value.reason == "CONNECTION_NOT_CONFIGURED"
