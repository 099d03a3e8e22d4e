"""No public secrets in production: the start-up check, the real processes, the generator."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from shared import secrets as secret_settings
from shared.config import DEFAULT_PORTS

REPO = Path(__file__).resolve().parent.parent.parent
SERVICES = list(DEFAULT_PORTS)
# Values that were published in docker-compose.yml, the test harness and services/org/tokens.py.
PUBLISHED = {
    "SENSEI_PAGE_TOKEN_SECRET": ["compose-dev-page-token-secret", "test-page-token-secret"],
    "SENSEI_ORG_KEY_ENCRYPTION_KEY": [
        "c2Vuc2VpLWNvbXBvc2UtZGV2LWtlay0zMi1ieXRlcyE=",
        "c2Vuc2VpLWNvbXBvc2UtZGV2LWtlay0zMi1ieXRlcyE",  # without padding: still refused
        base64.urlsafe_b64encode(
            hashlib.sha256(b"sensei-dev-token-key-encryption-key").digest()
        ).decode(),
    ],
    "SENSEI_MIGRATION_CONFIG_KEY": [
        "c2Vuc2VpLWNvbXBvc2UtZGV2LWNvbmZpZy1rZXktMzI=",
        "dGVzdC1jb25maWcta2V5LTMyLWJ5dGVzLWxvbmchISE=",
    ],
}
# No database is reached: the check runs before the service connects anywhere.
UNREACHABLE_DATABASE = "postgresql://nobody@127.0.0.1:1/none"
# Longest a refused process may take to exit (imports included); not a timing assertion.
EXIT_DEADLINE_SECONDS = 60


def _service_of(setting: str) -> str:
    owner = setting.removeprefix("SENSEI_").split("_", 1)[0].lower()
    return owner if owner in SERVICES else "pattern"


def test_generated_secrets_pass_for_every_service() -> None:
    env = secret_settings.generate()
    for service in SERVICES:
        assert secret_settings.problems(service, env) == []
        secret_settings.check(service, env)


@pytest.mark.parametrize(
    ("setting", "value"),
    [(setting, value) for setting, values in PUBLISHED.items() for value in values],
)
def test_a_published_value_is_refused_outside_dev(setting: str, value: str) -> None:
    env = {**secret_settings.generate(), setting: value}
    service = _service_of(setting)
    with pytest.raises(secret_settings.PublicSecretError, match=setting):
        secret_settings.check(service, env)
    secret_settings.check(service, {**env, "SENSEI_ENV": "dev"})


@pytest.mark.parametrize("service", SERVICES)
def test_a_missing_secret_is_refused_outside_dev(service: str) -> None:
    with pytest.raises(secret_settings.PublicSecretError) as caught:
        secret_settings.check(service, {})
    assert "SENSEI_PAGE_TOKEN_SECRET is not set" in str(caught.value)
    assert "python -m shared.secrets" in str(caught.value)
    secret_settings.check(service, {"SENSEI_ENV": "dev"})


def test_weak_and_malformed_values_are_refused() -> None:
    good = secret_settings.generate()
    cases = {
        "SENSEI_PAGE_TOKEN_SECRET": "short",
        "SENSEI_ORG_KEY_ENCRYPTION_KEY": base64.urlsafe_b64encode(b"16 bytes only!!!").decode(),
        # A rotation list is checked key by key: a published old key is refused too.
        "SENSEI_MIGRATION_CONFIG_KEY": good["SENSEI_MIGRATION_CONFIG_KEY"]
        + ","
        + PUBLISHED["SENSEI_MIGRATION_CONFIG_KEY"][0],
    }
    for setting, value in cases.items():
        problems = secret_settings.problems(_service_of(setting), {**good, setting: value})
        assert len(problems) == 1 and problems[0].startswith(setting), problems


def test_the_old_compose_database_password_is_refused() -> None:
    env = {
        **secret_settings.generate(),
        "SENSEI_DATABASE_URL": "postgresql://sensei:sensei@postgres:5432/sensei",
    }
    with pytest.raises(secret_settings.PublicSecretError, match="SENSEI_DATABASE_URL"):
        secret_settings.check("verification", env)
    # Without a password (trust, peer or certificate authentication) it is the operator's call.
    secret_settings.check(
        "verification", {**env, "SENSEI_DATABASE_URL": "postgresql://sensei@db/sensei"}
    )
    # A service's own URL wins over the shared one.
    secret_settings.check(
        "verification",
        {**env, "SENSEI_VERIFICATION_DATABASE_URL": "postgresql://v:long-and-random@db/v"},
    )


def test_an_unknown_environment_name_is_refused() -> None:
    with pytest.raises(secret_settings.PublicSecretError, match="SENSEI_ENV"):
        secret_settings.check("org", {**secret_settings.generate(), "SENSEI_ENV": "develop"})


async def _run_service(service: str, env: dict[str, str]) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        f"services.{service}",
        cwd=REPO,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, stderr = await asyncio.wait_for(process.communicate(), EXIT_DEADLINE_SECONDS)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError(f"{service} kept running with public secrets") from None
    assert process.returncode is not None
    return process.returncode, stderr.decode()


def _process_env(extra: dict[str, str]) -> dict[str, str]:
    import os

    keep = {k: v for k, v in os.environ.items() if not k.startswith("SENSEI_")}
    return {**keep, "SENSEI_DATABASE_URL": UNREACHABLE_DATABASE, **extra}


async def test_every_service_process_refuses_the_old_compose_defaults_with_exit_status_2() -> None:
    compose_defaults = {
        "SENSEI_PAGE_TOKEN_SECRET": "compose-dev-page-token-secret",
        "SENSEI_ORG_KEY_ENCRYPTION_KEY": PUBLISHED["SENSEI_ORG_KEY_ENCRYPTION_KEY"][0],
        "SENSEI_MIGRATION_CONFIG_KEY": PUBLISHED["SENSEI_MIGRATION_CONFIG_KEY"][0],
    }
    results = await asyncio.gather(
        *(_run_service(service, _process_env(compose_defaults)) for service in SERVICES)
    )
    for service, (code, stderr) in zip(SERVICES, results, strict=True):
        assert code == 2, (service, stderr)
        # One message, the last line (a library may warn on import before it).
        message = stderr.strip().splitlines()[-1]
        assert stderr.count("refusing to start") == 1, (service, stderr)
        assert message.startswith(f"{service}: refusing to start"), message
        assert "SENSEI_PAGE_TOKEN_SECRET is a value published" in message
        assert "Traceback" not in stderr


async def test_the_org_process_refuses_to_start_without_a_key_encryption_key() -> None:
    env = _process_env(
        {"SENSEI_PAGE_TOKEN_SECRET": secret_settings.generate()["SENSEI_PAGE_TOKEN_SECRET"]}
    )
    code, stderr = await _run_service("org", env)
    assert code == 2, stderr
    assert "SENSEI_ORG_KEY_ENCRYPTION_KEY is not set" in stderr


def test_the_generator_prints_an_env_file_compose_and_the_services_accept() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "shared.secrets", "--compose"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=EXIT_DEADLINE_SECONDS,
    )
    values = dict(line.split("=", 1) for line in result.stdout.splitlines())
    assert set(values) == {
        *(setting.name for setting in secret_settings.SECRET_SETTINGS),
        secret_settings.COMPOSE_POSTGRES_PASSWORD,
    }
    for service in SERVICES:
        secret_settings.check(service, values)
    again = secret_settings.generate()
    assert all(again[name] != values[name] for name in again)
