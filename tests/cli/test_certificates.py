"""`sensei verifications …` and `sensei certificates …`: run a verification, fetch its
certificate, verify it online and offline."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg

from cli.__main__ import main
from cli.errors import ExitCode
from tests.cli.conftest import Cli, create_migration
from tests.verification.conftest import connection_config

TABLE = """
CREATE TABLE accounts (id int PRIMARY KEY, owner text NOT NULL);
INSERT INTO accounts SELECT i, 'owner-' || i FROM generate_series(1, 20) AS i;
"""


def _fields(text: str) -> dict[str, str]:
    """`key:  value` lines as a dict."""
    return {
        key.strip(): value.strip()
        for key, _, value in (line.partition(":") for line in text.splitlines())
    }


async def _migration_between_identical_databases(
    cli: Cli, make_sample_database: Callable[[], Awaitable[str]]
) -> str:
    dsns = [await make_sample_database(), await make_sample_database()]
    for dsn in dsns:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(TABLE)
        finally:
            await conn.close()
    source, target = (connection_config(dsn) for dsn in dsns)
    migration = await create_migration(cli.suite, cli.owner, "certified", source, target)
    return migration.id


async def test_a_verification_is_watched_to_a_certificate_that_verifies_online_and_offline(
    cli: Cli, make_sample_database: Callable[[], Awaitable[str]], tmp_path: Path
) -> None:
    await cli.login()
    migration_id = await _migration_between_identical_databases(cli, make_sample_database)

    created = await cli.run(
        "verifications", "create", migration_id, "--type", "checksum", "--watch"
    )

    assert created.code == ExitCode.OK, created.err
    lines = created.out.splitlines()
    assert lines[0].startswith("queued organizations/")
    assert lines[-2].split()[1:] == ["PASSED", "1/1", "tables"]
    verdict, _, certificate = lines[-1].partition("  certificate ")
    assert verdict == "PASSED  score 1.000"
    verification = lines[0].removeprefix("queued ")

    shown = await cli.run("verifications", "get", verification, "--json")
    assert json.loads(shown.out)["certificate"] == certificate

    cert = tmp_path / "cert.json"
    fetched = await cli.run("certificates", "get", verification, "-o", str(cert))
    assert fetched.code == ExitCode.OK, fetched.err
    assert fetched.out.strip() == f"wrote the envelope of {certificate} to {cert}"
    assert json.loads(cert.read_bytes())["payloadType"] == "application/vnd.in-toto+json"

    online = await cli.run("certificates", "verify", str(cert))
    assert online.code == ExitCode.OK, online.err
    assert online.out.startswith("VALID  signed by key ")
    shown_fields = _fields(online.out.split("\n", 1)[1])
    assert shown_fields["migration"] == migration_id
    assert shown_fields["type"] == "CHECKSUM"

    keys = tmp_path / "jwks.json"
    assert (await cli.run("certificates", "keys", "-o", str(keys))).code == ExitCode.OK
    offline = await cli.run(
        "certificates", "verify", str(cert), "--offline", "--keys", str(keys), "--json"
    )
    assert offline.code == ExitCode.OK, offline.err
    document = json.loads(offline.out)
    assert document["validity"] == "VALID"
    assert document["offline"] is True
    assert document["statement"]["predicate"]["migrationId"] == migration_id


async def test_a_certificate_is_shown_by_id(
    cli: Cli, make_sample_database: Callable[[], Awaitable[str]]
) -> None:
    await cli.login()
    migration_id = await _migration_between_identical_databases(cli, make_sample_database)
    created = await cli.run(
        "verifications", "create", migration_id, "--type", "row_count", "--watch", "--json"
    )
    assert created.code == ExitCode.OK, created.err
    final = json.loads(created.out.splitlines()[-1])

    result = await cli.run("certificates", "get", final["certificateId"])

    assert result.code == ExitCode.OK, result.err
    fields = _fields(result.out)
    assert fields["name"] == final["certificate"]
    assert fields["type"] == "ROW_COUNT"
    assert fields["score"] == "1.000"


async def test_verification_check_counts_print_as_integers(
    cli: Cli, make_sample_database: Callable[[], Awaitable[str]]
) -> None:
    await cli.login()
    migration_id = await _migration_between_identical_databases(cli, make_sample_database)
    created = await cli.run(
        "verifications", "create", migration_id, "--type", "checksum", "--watch", "--json"
    )
    assert created.code == ExitCode.OK, created.err
    name = json.loads(created.out.splitlines()[-1])["name"]

    text = await cli.run("verifications", "get", name)
    as_json = await cli.run("verifications", "get", name, "--json")

    checks = _fields(text.out)["checks"]
    passed, total = checks.removesuffix(" matched").split(" of ")
    assert passed == total and total.isdigit(), checks
    result = json.loads(as_json.out)["result"]
    assert isinstance(result["checks_total"], int)


async def test_a_tampered_certificate_is_not_valid_online_or_offline(
    cli: Cli, make_sample_database: Callable[[], Awaitable[str]], tmp_path: Path
) -> None:
    await cli.login()
    migration_id = await _migration_between_identical_databases(cli, make_sample_database)
    created = await cli.run(
        "verifications", "create", migration_id, "--type", "checksum", "--watch", "--json"
    )
    certificate = json.loads(created.out.splitlines()[-1])["certificate"]
    cert, keys = tmp_path / "cert.json", tmp_path / "jwks.json"
    await cli.run("certificates", "get", certificate, "-o", str(cert))
    await cli.run("certificates", "keys", "-o", str(keys))
    envelope = json.loads(cert.read_bytes())
    signature = envelope["signatures"][0]["sig"]
    envelope["signatures"][0]["sig"] = ("A" if signature[0] != "A" else "B") + signature[1:]
    cert.write_text(json.dumps(envelope))

    online = await cli.run("certificates", "verify", str(cert))
    offline = await cli.run("certificates", "verify", str(cert), "--offline", "--keys", str(keys))

    assert online.code == offline.code == ExitCode.NEGATIVE
    assert online.out.split(":")[0] in {"SIGNATURE_INVALID", "MALFORMED"}
    assert offline.out.split(":")[0] == online.out.split(":")[0]


async def test_main_verifies_offline_without_any_service(tmp_path: Path) -> None:
    (tmp_path / "cert.json").write_text("{}")
    (tmp_path / "jwks.json").write_text('{"keys": []}')
    out, err = io.StringIO(), io.StringIO()
    argv = ["certificates", "verify", str(tmp_path / "cert.json"), "--offline"]

    # main() runs its own event loop, as from a shell: call it off the test's loop.
    no_keys = await asyncio.to_thread(main, argv, stdout=out, stderr=err, environ={})
    malformed = await asyncio.to_thread(
        main, [*argv, "--keys", str(tmp_path / "jwks.json")], stdout=out, stderr=err, environ={}
    )

    assert no_keys == ExitCode.USAGE
    assert "--offline needs --keys" in err.getvalue()
    assert malformed == ExitCode.NEGATIVE
    assert out.getvalue().startswith("MALFORMED: ")
