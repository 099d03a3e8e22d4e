"""The suite under test: a fresh embedded PostgreSQL and the services as processes.

Like `make run` (devstack), but throwaway and fast: PostgreSQL runs with durability off
(`EmbeddedPostgres(durable=False)`: fsync, synchronous_commit and full_page_writes off) in a
temporary directory, the first organization is bootstrapped on plan ENTERPRISE (no quota
stops a benchmark), and each service is `python -m services.<name>` with its logs in the
work directory. Extra processes of a service (so_reuseport replicas, or a second
deployment on another port) are started with `start_service`. Migrations' source and target
databases live on a second embedded server (`Stack.dsn`): the services refuse the platform's
own server as a destination, and allow exactly this one.
"""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import grpc

from devstack.postgres import EmbeddedPostgres, free_port
from sensei.org.v1 import auth_pb2, auth_pb2_grpc
from shared.db import migrate, service_migrations

REPO = Path(__file__).resolve().parent.parent
SERVICES = ("org", "migration", "verification", "pattern")
DATABASE = "sensei_bench"
_READY_SECONDS = 90.0


@dataclass
class ServiceProcess:
    """One running service process."""

    name: str
    address: str
    process: asyncio.subprocess.Process
    log_path: Path

    @property
    def pid(self) -> int:
        """The process id (for py-spy)."""
        return self.process.pid

    async def stop(self) -> None:
        """SIGTERM (graceful), SIGKILL after 20 s."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), timeout=20)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()


@dataclass
class Stack:
    """PostgreSQL, the bootstrap identities and the running services."""

    work_dir: Path
    postgres: EmbeddedPostgres
    samples: EmbeddedPostgres
    database_url: str
    env: dict[str, str]
    org_id: str
    owner_api_key: str
    service_api_key: str
    addresses: dict[str, str]
    processes: list[ServiceProcess] = field(default_factory=list)

    @property
    def page_token_secret(self) -> bytes:
        """The services' page-token HMAC key (the bench builds deep-page tokens with it)."""
        return self.env["SENSEI_PAGE_TOKEN_SECRET"].encode()

    def dsn(self, database: str) -> str:
        """A superuser URL of a database on the samples server (sources and targets)."""
        return self.samples.dsn(database)

    def cpu_groups(self) -> dict[str, list[int]]:
        """The processes whose CPU time every line reports: each service's processes, and
        both PostgreSQL servers (their postmasters: backends are their children)."""
        groups: dict[str, list[int]] = {}
        for running in self.processes:
            groups.setdefault(running.name, []).append(running.pid)
        groups["postgres"] = [
            pid for pid in (_postmaster(self.postgres), _postmaster(self.samples)) if pid
        ]
        return groups

    def pid_of(self, service: str) -> int:
        """The pid of the first process of `service`."""
        return next(p.pid for p in self.processes if p.name == service)

    async def start_service(
        self, name: str, *, port: int | None = None, extra_env: dict[str, str] | None = None
    ) -> ServiceProcess:
        """Starts one process of `name` (on its default suite port unless `port` is given)."""
        env = dict(self.env)
        if port is not None:
            env[f"SENSEI_{name.upper()}_PORT"] = str(port)
        env.update(extra_env or {})
        address = f"127.0.0.1:{env[f'SENSEI_{name.upper()}_PORT']}"
        index = sum(1 for p in self.processes if p.name == name)
        log_path = self.work_dir / f"{name}-{index}.log"
        out_path = self.work_dir / f"{name}-{index}.out"
        with log_path.open("wb") as log, out_path.open("wb") as out:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", f"services.{name}", env=env, cwd=REPO, stdout=out, stderr=log
            )
        running = ServiceProcess(name, address, process, log_path)
        self.processes.append(running)
        await _wait_serving(running, out_path)
        return running

    async def stop_service(self, running: ServiceProcess) -> None:
        """Stops one process started with `start_service`."""
        await running.stop()
        self.processes.remove(running)

    async def token(self, api_key: str) -> str:
        """An access token for an API key, from the org service."""
        async with grpc.aio.insecure_channel(self.addresses["org"]) as channel:
            auth = auth_pb2_grpc.AuthServiceStub(channel)
            response = await auth.ExchangeApiKey(auth_pb2.ExchangeApiKeyRequest(api_key=api_key))
            return str(response.access_token)

    async def close(self) -> None:
        """Stops every service (last started first) and PostgreSQL."""
        for running in reversed(list(self.processes)):
            await running.stop()
        self.processes.clear()
        self.samples.remove()
        self.postgres.remove()


async def _wait_serving(running: ServiceProcess, out_path: Path) -> None:
    # `shared.server.serve` prints "<name> serving on <address>" once it is SERVING; with
    # so_reuseport a health check could be answered by another replica, this cannot.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _READY_SECONDS
    while loop.time() < deadline:
        if _says_serving(out_path):
            return
        if running.process.returncode is not None:
            break
        await asyncio.sleep(0.1)  # polling a starting process
    tail = _tail(running.log_path)
    raise RuntimeError(f"{running.name} did not start (see {running.log_path}):\n{tail}")


def _postmaster(server: EmbeddedPostgres) -> int:
    try:
        return int((server.data_dir / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def _tail(path: Path) -> str:
    return path.read_text(errors="replace")[-3000:]


def _says_serving(out_path: Path) -> bool:
    return "serving on" in out_path.read_text(errors="replace")


async def _bootstrap(database_url: str) -> tuple[str, str, str]:
    from services.org.bootstrap import bootstrap

    conn = await asyncpg.connect(database_url)
    try:
        for name in SERVICES:
            await migrate(conn, name, service_migrations(REPO / "services" / name))
        await conn.execute("SET search_path TO org, public")
        result = await bootstrap(
            conn,
            org_slug="bench",
            org_name="Bench Organization",
            owner_email="owner@bench.sensei.test",
            owner_name="Bench Owner",
            plan="ENTERPRISE",
        )
    finally:
        await conn.close()
    return result.org_id, result.owner_api_key, result.service_api_key


async def start_stack(work_dir: Path, allowed: Sequence[str] = ()) -> Stack:
    """PostgreSQL (durable=False) in `work_dir`, bootstrapped, with all four services up.

    The services allow the samples server as a destination, and the `allowed` ones (the
    MariaDB of `checksum-mysql`)."""
    postgres = EmbeddedPostgres(work_dir / "pgdata", durable=False)
    samples = EmbeddedPostgres(work_dir / "samples-pgdata", durable=False)
    postgres.start()
    try:
        samples.start()
        admin = await asyncpg.connect(postgres.dsn("postgres"))
        try:
            await admin.execute(f'CREATE DATABASE "{DATABASE}"')
        finally:
            await admin.close()
        database_url = postgres.dsn(DATABASE)
        org_id, owner_key, service_key = await _bootstrap(database_url)
        env = {
            **os.environ,
            "SENSEI_DATABASE_URL": database_url,
            "SENSEI_SERVICE_API_KEY": service_key,
            "SENSEI_PAGE_TOKEN_SECRET": secrets.token_urlsafe(32),
            "SENSEI_MIGRATION_CONFIG_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
            "SENSEI_ORG_KEY_ENCRYPTION_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
            "SENSEI_VERIFICATION_KEYS_DIR": str(work_dir / "verification-keys"),
            "SENSEI_GRACE_SECONDS": "2",
            "SENSEI_ALLOWED_DESTINATIONS": ",".join([f"127.0.0.1:{samples.port}", *allowed]),
        }
        addresses = {}
        for name in SERVICES:
            port = free_port()
            addresses[name] = f"127.0.0.1:{port}"
            env[f"SENSEI_{name.upper()}_PORT"] = str(port)
            env[f"SENSEI_{name.upper()}_ADDR"] = addresses[name]
        stack = Stack(
            work_dir,
            postgres,
            samples,
            database_url,
            env,
            org_id,
            owner_key,
            service_key,
            addresses,
        )
    except BaseException:
        samples.remove()
        postgres.remove()
        raise
    try:
        for name in SERVICES:
            await stack.start_service(name)
    except BaseException:
        await stack.close()
        raise
    return stack
