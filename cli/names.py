"""Resource names from what an operator types: a full name, a name relative to their
organization (`migrations/{id}`), or, where it is unambiguous, a bare id."""

from __future__ import annotations

import re

from cli.client import Client
from cli.errors import CliError, ExitCode

_SEGMENT = r"[^/\s]+"
_MIGRATION = re.compile(rf"(organizations/{_SEGMENT}/)?migrations/{_SEGMENT}")
_VERIFICATION = re.compile(
    rf"(organizations/{_SEGMENT}/)?migrations/{_SEGMENT}/verifications/{_SEGMENT}"
)
_CERTIFICATE = re.compile(rf"(organizations/{_SEGMENT}/)?certificates/{_SEGMENT}")
_BARE_ID = re.compile(_SEGMENT)


async def _in_org(reference: str, client: Client) -> str:
    if reference.startswith("organizations/"):
        return reference
    return f"{await client.org_name()}/{reference}"


async def migration(reference: str, client: Client) -> str:
    """`organizations/{org}/migrations/{id}` from a full name, `migrations/{id}` or `{id}`.

    `-` (every migration of the organization, for listing verifications) passes too.
    """
    reference = reference.strip()
    if _BARE_ID.fullmatch(reference):
        reference = f"migrations/{reference}"
    if not _MIGRATION.fullmatch(reference):
        raise CliError(
            f"{reference!r} is not a migration: give organizations/{{org}}/migrations/{{id}},"
            " migrations/{id} or the id",
            ExitCode.USAGE,
        )
    return await _in_org(reference, client)


async def verification(reference: str, client: Client) -> str:
    """`organizations/{org}/migrations/{m}/verifications/{id}` from a full or relative name."""
    reference = reference.strip()
    if not _VERIFICATION.fullmatch(reference):
        raise CliError(
            f"{reference!r} is not a verification: give"
            " organizations/{org}/migrations/{m}/verifications/{id}"
            " or migrations/{m}/verifications/{id}",
            ExitCode.USAGE,
        )
    return await _in_org(reference, client)


async def certificate(reference: str, client: Client) -> str:
    """`organizations/{org}/certificates/{id}` from a full name, `certificates/{id}` or `{id}`."""
    reference = reference.strip()
    if _BARE_ID.fullmatch(reference):
        reference = f"certificates/{reference}"
    if not _CERTIFICATE.fullmatch(reference):
        raise CliError(
            f"{reference!r} is not a certificate: give organizations/{{org}}/certificates/{{id}},"
            " certificates/{id}, the id, or a verification name",
            ExitCode.USAGE,
        )
    return await _in_org(reference, client)


def is_verification(reference: str) -> bool:
    """Whether a reference names a verification (…/migrations/{m}/verifications/{v})."""
    return bool(_VERIFICATION.fullmatch(reference.strip()))
