"""Settings are checked before a service starts: one line per bad value, exit status 2."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

import pytest

from shared import settings
from shared.config import DEFAULT_PORTS

REPO = Path(__file__).resolve().parent.parent.parent
# Nothing listens there: a service that got past its checks would fail later, differently.
UNREACHABLE_DATABASE = "postgresql://sensei@127.0.0.1:9/sensei"
EXIT_DEADLINE_SECONDS = 60.0


async def _run_org(extra: dict[str, str]) -> tuple[int, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith("SENSEI_")}
    env = {**keep, "SENSEI_DATABASE_URL": UNREACHABLE_DATABASE, "SENSEI_ENV": "dev", **extra}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.org",
        cwd=REPO,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), EXIT_DEADLINE_SECONDS)
    assert process.returncode is not None
    return process.returncode, stderr.decode()


async def test_a_port_beyond_65535_stops_the_process_with_one_line_and_status_2() -> None:
    code, stderr = await _run_org({"SENSEI_ORG_PORT": "70051"})
    assert code == 2, stderr
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.startswith("org: ")]
    assert lines == [
        "org: SENSEI_ORG_PORT must be a port, 1..65535, or 0 for any free port, got '70051'"
    ]


async def test_every_bad_value_gets_its_own_line() -> None:
    code, stderr = await _run_org(
        {
            "SENSEI_GRACE_SECONDS": "soon",
            "SENSEI_MAX_MESSAGE_BYTES": "8MB",
            "SENSEI_ORG_KEY_ENCRYPTION_KEY": "not-a-key",
            "SENSEI_MIGRATION_ADDR": "migration",
        }
    )
    assert code == 2, stderr
    named = [line.split()[1] for line in stderr.splitlines() if line.startswith("org: ")]
    assert sorted(named) == [
        "SENSEI_GRACE_SECONDS",
        "SENSEI_MAX_MESSAGE_BYTES",
        "SENSEI_MIGRATION_ADDR",
        "SENSEI_ORG_KEY_ENCRYPTION_KEY",
    ]


def test_a_derived_metrics_port_beyond_65535_is_a_setting_error_not_an_overflow() -> None:
    found = settings.problems("org", {"SENSEI_ORG_PORT": "65000"})
    assert len(found) == 1
    assert found[0].startswith("SENSEI_ORG_METRICS_PORT is unset")
    assert (
        settings.problems("org", {"SENSEI_ORG_PORT": "65000", "SENSEI_ORG_METRICS_PORT": "0"}) == []
    )


@pytest.mark.parametrize(
    ("name", "bad", "good"),
    [
        ("SENSEI_ORG_PORT", "-1", "0"),
        ("SENSEI_ORG_PORT", "5e4", "50051"),
        ("SENSEI_DATABASE_URL", "mysql://db/x", "postgresql://u@db/x"),
        ("SENSEI_DATABASE_URL", "db:5432", "postgres:///x?host=/run/pg"),
        ("SENSEI_CONNECTION_IDLE_SECONDS", "nan", "0"),
        ("SENSEI_HANDSHAKE_TIMEOUT_SECONDS", "0", "0.5"),
        ("SENSEI_LOG_LEVEL", "chatty", "debug"),
        ("SENSEI_REUSE_PORT", "maybe", "yes"),
        ("SENSEI_MIGRATION_CONFIG_KEY", "a2V5", "A" * 43 + "," + "B" * 43),
        ("SENSEI_ORG_TOKEN_TTL_SECONDS", "5", "60"),
        ("SENSEI_ORG_REVOCATION_HEARTBEAT_SECONDS", "61", "60"),
    ],
)
def test_values_are_checked_by_kind(name: str, bad: str, good: str) -> None:
    service = "migration" if "MIGRATION" in name else "org"
    assert len(settings.problems(service, {name: bad})) == 1, bad
    assert settings.problems(service, {name: good}) == [], good


def test_a_services_own_settings_are_checked_only_for_it() -> None:
    assert settings.problems("pattern", {"SENSEI_ORG_TOKEN_TTL_SECONDS": "1"}) == []
    assert settings.problems("pattern", {"SENSEI_PATTERN_WEAVIATE_GRPC_PORT": "0"}) != []


def _readme_settings() -> set[str]:
    """Every SENSEI_ variable named in the first column of README's tables."""
    names = set()
    for line in (REPO / "README.md").read_text().splitlines():
        first = line.split("|")[1] if line.startswith("| `SENSEI_") else ""
        names.update(re.findall(r"`(SENSEI_[A-Z0-9_<>]+)`", first))
    return names


def test_readme_lists_every_checked_setting() -> None:
    documented = _readme_settings()
    for setting in settings.SETTINGS:
        name = setting.name
        if name.endswith("_ADDR") and name.split("_")[1].lower() in DEFAULT_PORTS:
            name = "SENSEI_<SVC>_ADDR"
        assert name in documented, f"README's settings tables lack {name}"
