"""`make run` seeds the starter pattern catalog once the services are up (issue 15).

The same command the compose and Kubernetes bootstraps run
(`python -m services.pattern.load_catalog`), called in-process with the dev stack's
service account: idempotent, so every `make run` leaves one copy of each pattern.
"""

from __future__ import annotations

from services.pattern import catalog
from services.pattern.load_catalog import LoadReport, load_catalog
from shared.credentials import ServiceCredentials


async def seed_patterns(org_address: str, pattern_address: str, api_key: str) -> LoadReport:
    """Upserts the starter catalog as the service account of `api_key`."""
    credentials = ServiceCredentials(org_address, api_key)
    try:
        return await load_catalog(pattern_address, credentials, catalog.load())
    finally:
        await credentials.close()
