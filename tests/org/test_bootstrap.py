"""The bootstrap: first organization, owner, service account and operator; idempotent."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import asyncpg

from services.org.bootstrap import bootstrap

REPO = Path(__file__).resolve().parents[2]


async def _connect(database_url: str) -> asyncpg.Connection:
    return await asyncpg.connect(database_url, server_settings={"search_path": "org"})


async def test_bootstrap_again_reuses_the_org_and_owner_and_issues_new_keys(
    database_url: str,
) -> None:
    conn = await _connect(database_url)
    try:
        args = {
            "org_slug": "initech",
            "org_name": "Initech",
            "owner_email": "Bill@Initech.test",
            "owner_name": "Bill",
            "plan": "PRO",
        }
        first = await bootstrap(conn, **args)
        second = await bootstrap(conn, **args)
        assert (
            second.org_id,
            second.owner_user_id,
            second.service_account_id,
            second.operator_id,
        ) == (first.org_id, first.owner_user_id, first.service_account_id, first.operator_id)
        assert second.owner_api_key != first.owner_api_key
        assert second.service_api_key != first.service_api_key
        assert second.operator_api_key != first.operator_api_key
        assert await conn.fetchval("SELECT count(*) FROM operators") == 1
        assert await conn.fetchval("SELECT count(*) FROM organizations") == 1
        assert await conn.fetchval("SELECT plan FROM organizations") == "PRO"
        assert await conn.fetchval("SELECT role FROM users") == "OWNER"
        assert await conn.fetchval("SELECT email FROM users") == "bill@initech.test"
        # Owner, service account and operator: a new key each, per run.
        assert await conn.fetchval("SELECT count(*) FROM api_keys") == 6
    finally:
        await conn.close()


async def test_the_command_migrates_and_prints_env_lines(make_database: object) -> None:
    database_url = await make_database()  # type: ignore[operator]
    env = {**os.environ, "SENSEI_DATABASE_URL": database_url}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.org",
        "bootstrap",
        "--org-slug",
        "acme",
        "--org-name",
        "Acme",
        "--owner-email",
        "o@acme.test",
        "--owner-name",
        "Olive",
        cwd=REPO,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, err.decode()
    values = dict(line.split("=", 1) for line in out.decode().splitlines())
    assert {
        "SENSEI_ORG_ID",
        "SENSEI_API_KEY",
        "SENSEI_SERVICE_API_KEY",
        "SENSEI_OPERATOR_API_KEY",
    } <= set(values)
    assert values["SENSEI_OPERATOR_API_KEY"].startswith("sk_")
    assert values["SENSEI_API_KEY"].startswith("sk_")
    conn = await _connect(database_url)
    try:
        assert str(await conn.fetchval("SELECT id FROM organizations")) == values["SENSEI_ORG_ID"]
    finally:
        await conn.close()


async def test_bad_bootstrap_input_fails_cleanly(make_database: object) -> None:
    database_url = await make_database()  # type: ignore[operator]
    env = {**os.environ, "SENSEI_DATABASE_URL": database_url}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.org", "bootstrap", "--org-slug", "X!",
        "--org-name", "", "--owner-email", "nope", "--owner-name", "O",
        cwd=REPO, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 1
    message = err.decode()
    assert "bootstrap failed" in message
    for field in ("organization.slug", "organization.display_name", "owner_email"):
        assert field in message
