"""`make run`: an embedded PostgreSQL and the four services, ready for grpcurl.

A second embedded PostgreSQL holds sample databases (`sample_source`, with a small shop's
rows, and `sample_target`, the same tables empty): migrations point there, never at the
platform's own server, which the services refuse as a destination (shared/destinations.py).
The services run with `SENSEI_ENV=dev`, so loopback destinations other than the platform's
server are allowed (the sample server, a local MariaDB).

Once the services serve, the starter pattern catalog is loaded (idempotently:
`devstack/catalog.py`). Data lives under `.sensei/` (kept across restarts). Prints the
addresses, a bootstrap access token and grpcurl examples, writes `.sensei/dev.env` (with
`SENSEI_SAMPLE_DATABASE_URL`, a superuser URL of the sample server, and
`SENSEI_SAMPLE_SOURCE_URL` / `SENSEI_SAMPLE_TARGET_URL`, and `SENSEI_SAMPLE_MYSQL_URL` when a
MariaDB/MySQL server is reachable: devstack/mysql_sample.py), and on Ctrl-C stops the services
(gracefully) and both servers.

`SENSEI_DEV_TLS=1` (`make run TLS=1`): a throwaway CA and certificates under `.sensei/tls/`
(devstack/tls.py), the services require client certificates, and `.sensei/dev.env` gets the
CLI's `SENSEI_TLS_*` (the grpcurl examples printed then use `-cacert/-cert/-key`).
"""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import signal
import sys
from pathlib import Path

import asyncpg
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from devstack.catalog import seed_patterns
from devstack.mysql_sample import allowing, sample_mysql_env
from devstack.postgres import EmbeddedPostgres
from devstack.tls import write_dev_tls
from sensei.org.v1 import auth_pb2, auth_pb2_grpc
from shared.config import DEFAULT_PORTS
from shared.db import migrate, service_migrations
from shared.tls import Target, TlsSettings, secure_channel

REPO = Path(__file__).resolve().parent.parent
STATE = REPO / ".sensei"
SERVICES = ("org", "migration", "verification", "pattern")
DATABASE = "sensei"
SAMPLE_SHOP = """
CREATE TABLE IF NOT EXISTS customers (id bigint PRIMARY KEY, email text NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS orders (
    id bigint PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES customers (id),
    total numeric(10, 2) NOT NULL
);
"""
SAMPLE_ROWS = """
INSERT INTO customers SELECT i, 'c' || i || '@shop.test' FROM generate_series(1, 200) AS i
ON CONFLICT DO NOTHING;
INSERT INTO orders SELECT i, 1 + i % 200, (i % 97) * 1.25 FROM generate_series(1, 5000) AS i
ON CONFLICT DO NOTHING;
"""


def _secrets() -> dict[str, str]:
    """Random per-checkout secrets, made once and kept in .sensei/secrets.env."""
    path = STATE / "secrets.env"
    if not path.exists():
        values = {
            "SENSEI_PAGE_TOKEN_SECRET": secrets.token_urlsafe(32),
            "SENSEI_MIGRATION_CONFIG_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
            "SENSEI_ORG_KEY_ENCRYPTION_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        }
        path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
        path.chmod(0o600)
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


async def _prepare_database(server: EmbeddedPostgres) -> str:
    admin = await asyncpg.connect(server.dsn("postgres"))
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DATABASE):
            await admin.execute(f'CREATE DATABASE "{DATABASE}"')
    finally:
        await admin.close()
    return server.dsn(DATABASE)


async def _prepare_samples(server: EmbeddedPostgres) -> dict[str, str]:
    """The sample source (with rows) and target (tables only) databases; their URLs."""
    admin = await asyncpg.connect(server.dsn("postgres"))
    try:
        for name in ("sample_source", "sample_target"):
            if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
                await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    for name, rows in (("sample_source", True), ("sample_target", False)):
        conn = await asyncpg.connect(server.dsn(name))
        try:
            await conn.execute(SAMPLE_SHOP)
            if rows:
                await conn.execute(SAMPLE_ROWS)
        finally:
            await conn.close()
    return {
        "SENSEI_SAMPLE_DATABASE_URL": server.dsn("postgres"),
        "SENSEI_SAMPLE_SOURCE_URL": server.dsn("sample_source"),
        "SENSEI_SAMPLE_TARGET_URL": server.dsn("sample_target"),
    }


async def _bootstrap(database_url: str) -> dict[str, str]:
    from services.org.bootstrap import bootstrap

    conn = await asyncpg.connect(database_url)
    try:
        await migrate(conn, "org", service_migrations(REPO / "services" / "org"))
        await conn.execute("SET search_path TO org, public")
        result = await bootstrap(
            conn,
            org_slug=os.environ.get("SENSEI_DEV_ORG_SLUG", "dev"),
            org_name="Dev Organization",
            owner_email=os.environ.get("SENSEI_DEV_OWNER_EMAIL", "owner@dev.sensei.test"),
            owner_name="Dev Owner",
        )
    finally:
        await conn.close()
    return {
        "SENSEI_ORG_ID": result.org_id,
        "SENSEI_API_KEY": result.owner_api_key,
        "SENSEI_SERVICE_API_KEY": result.service_api_key,
        "SENSEI_OPERATOR_API_KEY": result.operator_api_key,
    }


def _channel(address: str, tls: TlsSettings | None) -> grpc.aio.Channel:
    return secure_channel(address, tls) if tls else grpc.aio.insecure_channel(address)


def grpcurl_flags(people_tls: dict[str, str]) -> str:
    """How grpcurl reaches the services: `-plaintext`, or the CA and a client certificate."""
    if not people_tls:
        return "-plaintext"
    return " ".join(
        f"-{flag} {os.path.relpath(people_tls[name], REPO)}"
        for flag, name in (
            ("cacert", "SENSEI_TLS_CA_FILE"),
            ("cert", "SENSEI_TLS_CLIENT_CERT_FILE"),
            ("key", "SENSEI_TLS_CLIENT_KEY_FILE"),
        )
    )


async def _wait_serving(
    address: str, process: asyncio.subprocess.Process, name: str, tls: TlsSettings | None
) -> None:
    async with _channel(address, tls) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for _ in range(600):
            if process.returncode is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}; see its log above")
            try:
                response = await health.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if response.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            await asyncio.sleep(0.1)  # polling a starting process; not a test
    raise RuntimeError(f"{name} did not become SERVING at {address}")


async def _token(org_address: str, api_key: str, tls: TlsSettings | None) -> str:
    async with _channel(org_address, tls) as channel:
        auth = auth_pb2_grpc.AuthServiceStub(channel)
        response = await auth.ExchangeApiKey(auth_pb2.ExchangeApiKeyRequest(api_key=api_key))
        return str(response.access_token)


async def run() -> None:
    """Starts everything, prints how to use it, waits for Ctrl-C, stops everything."""
    STATE.mkdir(exist_ok=True)
    port = int(os.environ.get("SENSEI_DEV_PG_PORT", "55432"))
    server = EmbeddedPostgres(STATE / "pgdata", port=port)
    sample_port = int(os.environ.get("SENSEI_DEV_SAMPLE_PG_PORT", str(port + 1)))
    sample_server = EmbeddedPostgres(STATE / "sample-pgdata", port=sample_port)
    server.start()
    processes: list[tuple[str, asyncio.subprocess.Process]] = []
    try:
        sample_server.start()
        samples = await _prepare_samples(sample_server)
        samples.update(await sample_mysql_env(os.environ))
        database_url = await _prepare_database(server)
        identity = await _bootstrap(database_url)
        env = allowing({**os.environ, **_secrets()}, samples.get("SENSEI_SAMPLE_MYSQL_URL"))
        env.setdefault("SENSEI_VERIFICATION_KEYS_DIR", str(STATE / "verification-keys"))
        # Dev: loopback destinations are allowed, except the platform's own server.
        env.setdefault("SENSEI_ENV", "dev")
        env.update(
            # The dev stack's conveniences (e.g. derived secrets) are refused elsewhere.
            SENSEI_ENV="dev",
            SENSEI_DATABASE_URL=database_url,
            SENSEI_SERVICE_API_KEY=identity["SENSEI_SERVICE_API_KEY"],
        )
        people_tls: dict[str, str] = {}
        if os.environ.get("SENSEI_DEV_TLS", "").strip().lower() in {"1", "true", "yes"}:
            services_tls, people_tls = write_dev_tls(STATE / "tls")
            env.update(services_tls)
        tls = TlsSettings.from_env(people_tls)
        addresses = {}
        for name in SERVICES:
            service_port = int(env.get(f"SENSEI_{name.upper()}_PORT", DEFAULT_PORTS[name]))
            addresses[name] = f"127.0.0.1:{service_port}"
            env[f"SENSEI_{name.upper()}_ADDR"] = addresses[name]
        for name in SERVICES:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", f"services.{name}", env=env, cwd=REPO
            )
            processes.append((name, process))
            await _wait_serving(addresses[name], process, name, tls)
        seeded = await seed_patterns(
            Target(addresses["org"], tls),
            Target(addresses["pattern"], tls),
            identity["SENSEI_SERVICE_API_KEY"],
        )
        print(
            f"starter patterns: {seeded.created} created, {seeded.updated} updated,"
            f" {seeded.unchanged} unchanged",
            flush=True,
        )
        token = await _token(addresses["org"], identity["SENSEI_API_KEY"], tls)
        dev_env = {
            **{f"SENSEI_{n.upper()}_ADDR": a for n, a in addresses.items()},
            "SENSEI_DATABASE_URL": database_url,
            **samples,
            **identity,
            "SENSEI_TOKEN": token,
            **people_tls,
        }
        (STATE / "dev.env").write_text("".join(f"{k}={v}\n" for k, v in dev_env.items()))
        _print_banner(
            addresses, identity, token, database_url, samples, grpcurl=grpcurl_flags(people_tls)
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        print("\nstopping…", flush=True)
    finally:
        for _, process in reversed(processes):
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
        for _, process in reversed(processes):
            try:
                await asyncio.wait_for(process.wait(), timeout=30)
            except TimeoutError:
                process.kill()
        sample_server.stop()
        server.stop()


def _print_banner(
    addresses: dict[str, str],
    identity: dict[str, str],
    token: str,
    database_url: str,
    samples: dict[str, str],
    *,
    grpcurl: str,
) -> None:
    org = identity["SENSEI_ORG_ID"]
    tls_note = (
        ["TLS: mutual TLS required (certificates in .sensei/tls/, throwaway)."]
        if grpcurl != "-plaintext"
        else []
    )
    lines = [
        "",
        "Sensei is running.",
        *(f"  {name:<13} {address}" for name, address in addresses.items()),
        f"  postgres      {database_url}  (the platform's own: not a migration destination)",
        f"  samples       {samples['SENSEI_SAMPLE_SOURCE_URL']}",
        f"                {samples['SENSEI_SAMPLE_TARGET_URL']}",
        *(
            [f"  mysql sample  {samples['SENSEI_SAMPLE_MYSQL_URL']}"]
            if "SENSEI_SAMPLE_MYSQL_URL" in samples
            else []
        ),
        "",
        f"Organization: organizations/{org}",
        f"Owner API key (shown once; also in .sensei/dev.env): {identity['SENSEI_API_KEY']}",
        "Platform operator API key (signing keys, patterns; no tenant data):",
        f"  {identity['SENSEI_OPERATOR_API_KEY']}",
        "",
        *tls_note,
        "Try it (a token valid for 15 minutes is in $SENSEI_TOKEN):",
        "  source .sensei/dev.env",
        f"  .venv/bin/grpcurl {grpcurl} {addresses['org']} list",
        f'  .venv/bin/grpcurl {grpcurl} -H "authorization: Bearer $SENSEI_TOKEN" \\',
        f'    -d \'{{"name": "organizations/{org}"}}\' \\',
        f"    {addresses['org']} sensei.org.v1.OrganizationService/GetOrganization",
        "  # a fresh token:",
        f'  .venv/bin/grpcurl {grpcurl} -d "{{\\"api_key\\": \\"$SENSEI_API_KEY\\"}}" \\',
        f"    {addresses['org']} sensei.org.v1.AuthService/ExchangeApiKey",
        "",
        "Ctrl-C stops everything; data stays in .sensei/.",
    ]
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    asyncio.run(run())
