"""Wiring of the verification service: servicer, change feed, signing keys and workers.

Settings (`SENSEI_VERIFICATION_<NAME>`):
- `KEYS_DIR`: directory of the certificate signing private keys (PEM, mode 0600); created with
  a first key on first start. Every replica must see the same directory. Default
  `.sensei/verification-keys`.
- `WORKERS`: job loops in this process (default 2; 0 serves the API only).
- `LEASE_SECONDS`: how long a claimed job stays with its worker without renewal (default 60).
- `POLL_SECONDS`: how often idle workers look for due or abandoned jobs (default 2).
- `MAX_ATTEMPTS`: claims of one job before it ends in ERROR (default 5).
- `CONNECT_TIMEOUT_SECONDS`: timeout of connecting to a source or target database (default 10).
"""

from __future__ import annotations

from pathlib import Path

from sensei.verification.v1 import verification_pb2_grpc
from services.verification import store
from services.verification.checks import CheckRunner
from services.verification.domain import JobPolicy
from services.verification.feed import ChangeFeed
from services.verification.keyring import Keyring
from services.verification.migration_client import MigrationClient
from services.verification.servicer import VerificationServicer
from services.verification.use_cases.signing_keys import SigningKeys
from services.verification.use_cases.verifications import Verifications
from services.verification.worker import Worker, new_worker_id
from shared.config import PREFIX, ConfigError, ServiceConfig
from shared.destinations import DestinationPolicy
from shared.pagination import PageTokens
from shared.server import ServiceContext, ServiceDefinition

DEFAULT_KEYS_DIR = ".sensei/verification-keys"


def _number(config: ServiceConfig, name: str, default: float, *, minimum: float) -> float:
    raw = config.setting(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not value >= minimum:
        raise ConfigError(f"{PREFIX}VERIFICATION_{name} must be a number >= {minimum}, got {raw!r}")
    return value


def job_policy(config: ServiceConfig) -> JobPolicy:
    """The job lease and retry settings."""
    return JobPolicy(
        lease_seconds=_number(config, "LEASE_SECONDS", 60.0, minimum=0.1),
        max_attempts=int(_number(config, "MAX_ATTEMPTS", 5, minimum=1)),
        poll_seconds=_number(config, "POLL_SECONDS", 2.0, minimum=0.01),
    )


async def setup(ctx: ServiceContext) -> None:
    """Registers the servicer, publishes a signing key if needed and starts the workers."""
    config = ctx.config
    workers = int(_number(config, "WORKERS", 2, minimum=0))
    policy = job_policy(config)
    connect_timeout = _number(config, "CONNECT_TIMEOUT_SECONDS", 10.0, minimum=0.1)
    keyring = Keyring.open(Path(config.setting("KEYS_DIR") or DEFAULT_KEYS_DIR))
    page_tokens = PageTokens(config.page_token_secret)

    signing = SigningKeys(ctx.pool, keyring, page_tokens)
    await signing.ensure_active_key()

    credentials = ctx.credentials
    assert credentials is not None
    migrations = MigrationClient(config.address_of("migration"), credentials)
    ctx.on_close(migrations.close)

    feed = ChangeFeed(config.database_url)
    await feed.start()
    ctx.on_close(feed.close)

    verifications = Verifications(ctx.pool, migrations, feed, page_tokens)
    assert ctx.revocations is not None
    ctx.revocations.on_organization_deleted(verifications.organization_deleted)
    ctx.add_servicer(
        verification_pb2_grpc.add_VerificationServiceServicer_to_server,
        VerificationServicer(verifications, signing),
    )
    ctx.metrics.gauge(
        "sensei_verification_jobs_pending",
        "Verification jobs queued or running.",
        lambda: _pending_jobs(ctx),
    )
    destinations = DestinationPolicy.from_env(config.env, config.database_url)
    runner = CheckRunner(migrations, destinations, connect_timeout_seconds=connect_timeout)
    for index in range(workers):
        worker = Worker(ctx.pool, runner, signing, policy, new_worker_id(index))
        ctx.run_in_background(worker.run_forever(feed), name=f"verification-worker-{index}")


DEFINITION = ServiceDefinition(
    name="verification",
    service_names=("sensei.verification.v1.VerificationService",),
    package_dir=Path(__file__).parent,
    setup=setup,
)


async def _pending_jobs(ctx: ServiceContext) -> int:
    async with ctx.pool.acquire() as conn:
        return await store.count_pending_jobs(conn)
