"""`python -m services.org` serves; `python -m services.org bootstrap ...` creates the first org.

The bootstrap subcommand migrates the org schema, then prints `KEY=value` lines
(SENSEI_ORG_ID, SENSEI_API_KEY, SENSEI_SERVICE_API_KEY, SENSEI_OPERATOR_API_KEY, ...)
ready for a dev.env file. SENSEI_OPERATOR_API_KEY is the platform operator's credential
(role OPERATOR): it changes platform-wide resources and reaches no tenant data.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import asyncpg

from services.org.bootstrap import BootstrapResult, bootstrap
from services.org.server import DEFINITION
from shared import config as config_module
from shared.db import migrate, service_migrations
from shared.errors import DomainError
from shared.server import main


async def run_bootstrap(args: argparse.Namespace) -> BootstrapResult:
    """Migrates the org schema and bootstraps the first organization."""
    config = config_module.load("org")
    conn = await asyncpg.connect(config.database_url)
    try:
        await migrate(conn, config.db_schema, service_migrations(DEFINITION.package_dir))
        await conn.execute(f'SET search_path TO "{config.db_schema}", public')
        return await bootstrap(
            conn,
            org_slug=args.org_slug,
            org_name=args.org_name,
            owner_email=args.owner_email,
            owner_name=args.owner_name,
            plan=args.plan,
        )
    finally:
        await conn.close()


def cli(argv: list[str]) -> int:
    """Entry point."""
    if not argv or argv[0] != "bootstrap":
        main(DEFINITION)
        return 0
    parser = argparse.ArgumentParser(prog="python -m services.org bootstrap")
    parser.add_argument("--org-slug", required=True)
    parser.add_argument("--org-name", required=True)
    parser.add_argument("--owner-email", required=True)
    parser.add_argument("--owner-name", required=True)
    parser.add_argument("--plan", default="FREE", choices=["FREE", "PRO", "ENTERPRISE"])
    args = parser.parse_args(argv[1:])
    try:
        result = asyncio.run(run_bootstrap(args))
    except (DomainError, config_module.ConfigError) as exc:
        print(f"bootstrap failed: {exc}", file=sys.stderr)
        return 1
    print("\n".join(result.env_lines()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(cli(sys.argv[1:]))
