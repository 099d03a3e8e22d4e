"""Connection configs: accepted keys, redaction in responses, secrets kept across updates."""

from __future__ import annotations

from typing import Any

import pytest

from services.migration.connection_config import (
    REDACTED,
    connection_config_violations,
    merge_redacted_connection_config,
    redact_connection_config,
)
from shared.errors import InvalidArgument

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
        ({"dsn": "oracle://db/shop"}, "source_config.dsn"),
        ({"engine": "oracle", "host": "db"}, "source_config.engine"),
        ({"dsn": "mysql://db/shop", "engine": "postgresql"}, "source_config.engine"),
        ({"dsn": "postgresql://db:notaport/shop"}, "source_config.dsn"),
        ({"host": 42}, "source_config.host"),
        ({"hostname": "db"}, "source_config.hostname"),
    ],
)
def test_bad_config_value_is_a_violation(config: dict[str, Any], field: str) -> None:
    assert [v.field for v in connection_config_violations(config, "source_config")] == [field]


@pytest.mark.parametrize(
    "config", [{"dsn": "mysql://db/shop"}, {"dsn": "mariadb://db/shop"}, {"engine": "mysql"}]
)
def test_a_mysql_source_is_valid(config: dict[str, Any]) -> None:
    assert connection_config_violations({**config, "host": "db"}, "source_config") == []


def test_a_mysql_target_is_a_violation() -> None:
    violations = connection_config_violations({"dsn": "mysql://db/shop"}, "target_config")
    assert [v.field for v in violations] == ["target_config.dsn"]


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
    new = {**redact_connection_config(FULL), "sslmode": "verify-full"}
    merged = merge_redacted_connection_config(new, FULL, "migration.source_config")
    assert (merged["password"], merged["sslmode"]) == ("s3cret", "verify-full")


def test_sending_back_a_redacted_dsn_keeps_the_stored_password() -> None:
    stored = {"dsn": "postgresql://app:s3cret@db/shop"}
    new = {"dsn": f"postgresql://app:{REDACTED}@db/shop?sslmode=require"}
    assert (
        merge_redacted_connection_config(new, stored, "migration.source_config")["dsn"]
        == "postgresql://app:s3cret@db/shop?sslmode=require"
    )


@pytest.mark.parametrize(
    "change",
    [
        {"host": "db2.internal"},
        {"port": 5433},
        {"database": "other"},
        {"user": "admin"},
        {"host": "", "dsn": "postgresql://evil.example/shop"},
    ],
)
def test_a_redacted_password_does_not_follow_a_new_destination(change: dict[str, Any]) -> None:
    new = {**redact_connection_config(FULL), **change}
    with pytest.raises(InvalidArgument) as caught:
        merge_redacted_connection_config(new, FULL, "migration.source_config")
    assert [v.field for v in caught.value.violations] == ["migration.source_config.password"]
    assert "send the password again" in caught.value.violations[0].description


def test_a_redacted_dsn_password_does_not_follow_a_new_host() -> None:
    stored = {"dsn": "postgresql://app:s3cret@db/shop"}
    new = {"dsn": f"postgresql://app:{REDACTED}@attacker.example/shop"}
    with pytest.raises(InvalidArgument):
        merge_redacted_connection_config(new, stored, "migration.target_config")


def test_a_new_password_replaces_the_stored_one() -> None:
    new = {**FULL, "host": "db2.internal", "password": "fresh"}
    merged = merge_redacted_connection_config(new, FULL, "migration.source_config")
    assert merged["password"] == "fresh"


def test_redaction_hides_sslpassword_and_other_secret_parameters() -> None:
    redacted = redact_connection_config(
        {"dsn": "postgresql://db/shop?sslpassword=k3y&password=s3cret&sslmode=require"}
    )
    assert "k3y" not in redacted["dsn"] and "s3cret" not in redacted["dsn"]
    assert "sslmode=require" in redacted["dsn"]
