"""Resource names from what an operator types: a full name, a name relative to their
organization (`migrations/{id}`), or, where it is unambiguous, a bare id.

Every id is a full UUID (as the services require); a short prefix such as `6d6e` is
refused here with the forms that work, rather than sent to the server.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

from cli.client import Client
from cli.errors import CliError, ExitCode

# `-` stands for every migration of the organization where a collection is listed.
ANY = "-"


@dataclass(frozen=True)
class _Kind:
    """One kind of resource: its name's collections below the organization."""

    noun: str
    collections: tuple[str, ...]
    # How to see the full ids of this kind.
    listing: str

    @property
    def pattern(self) -> str:
        return "/".join(f"{collection}/{{id}}" for collection in self.collections)

    def forms(self) -> str:
        """The forms that work, in words."""
        relative = self.pattern
        single = len(self.collections) == 1
        return (
            f"give the full resource name organizations/{{org}}/{relative}, or the full"
            f" {'id' if single else 'ids'} as {relative}{' or the bare {id}' if single else ''}"
            f" (your organization is used); ids are full UUIDs (36 characters), as"
            f" {self.listing} shows them"
        )


_MIGRATION = _Kind("migration", ("migrations",), "`sensei migrations list`")
_VERIFICATION = _Kind(
    "verification", ("migrations", "verifications"), "`sensei verifications list -`"
)
_CERTIFICATE = _Kind("certificate", ("certificates",), "`sensei verifications get`")


def is_uuid(text: str) -> bool:
    """Whether `text` is a full UUID (any case), the only id form the services accept."""
    try:
        return str(uuid.UUID(text)) == text.lower()
    except ValueError:
        return False


def _checked(reference: str, kind: _Kind, *, any_allowed: bool = False) -> tuple[str, str]:
    """(`organizations/{org}` or "", the name below it), ids in lower case;
    CliError(USAGE) naming the forms that work."""
    reference = reference.strip()
    parts = reference.split("/")
    organization = parts[1:2] if parts[0] == "organizations" else []
    if organization:
        parts = parts[2:]
    if len(parts) == 1 and len(kind.collections) == 1:
        parts = [kind.collections[0], parts[0]]
    collections, values = parts[0::2], parts[1::2]
    if tuple(collections) != kind.collections or len(values) != len(collections):
        raise CliError(f"{reference!r} is not a {kind.noun} name: {kind.forms()}", ExitCode.USAGE)
    for index, value in enumerate([*organization, *values]):
        if any_allowed and value == ANY and index == len(organization):
            continue
        if not is_uuid(value):
            short = " (a prefix is not enough)" if value and len(value) < 36 else ""
            where = "" if value == reference else f" in {reference!r}"
            raise CliError(
                f"{value!r}{where} is not a full id{short}: {kind.forms()}", ExitCode.USAGE
            )
    parent = f"organizations/{organization[0].lower()}" if organization else ""
    name = "/".join(
        f"{collection}/{value.lower()}"
        for collection, value in zip(collections, values, strict=True)
    )
    return parent, name


async def _resolved(reference: str, kind: _Kind, client: Client, *, any_allowed: bool) -> str:
    parent, name = _checked(reference, kind, any_allowed=any_allowed)
    return f"{parent or await client.org_name()}/{name}"


async def migration(reference: str, client: Client, *, any_allowed: bool = False) -> str:
    """`organizations/{org}/migrations/{id}` from a full name, `migrations/{id}` or `{id}`.

    With `any_allowed`, `-` (every migration of the organization) passes too.
    """
    return await _resolved(reference, _MIGRATION, client, any_allowed=any_allowed)


async def verification(reference: str, client: Client) -> str:
    """`organizations/{org}/migrations/{m}/verifications/{id}` from a full or relative name."""
    return await _resolved(reference, _VERIFICATION, client, any_allowed=False)


async def certificate(reference: str, client: Client) -> str:
    """`organizations/{org}/certificates/{id}` from a full name, `certificates/{id}` or `{id}`."""
    return await _resolved(reference, _CERTIFICATE, client, any_allowed=False)


def is_verification(reference: str) -> bool:
    """Whether a reference is shaped like a verification (…/migrations/{m}/verifications/{v})."""
    parts = reference.strip().split("/")
    if parts[0] == "organizations":
        parts = parts[2:]
    return len(parts) == 4 and parts[0] == "migrations" and parts[2] == "verifications"


def _platform_name(reference: str, collection: str, noun: str, kind: str, listing: str) -> str:
    """`{collection}/{id}` from itself or the bare id, the id checked by its `kind`."""
    reference = reference.strip()
    value = reference.removeprefix(f"{collection}/")
    valid, length, what = _PLATFORM_IDS[kind]
    if "/" in value or not valid(value):
        short = " (a prefix is not enough)" if value and len(value) < length else ""
        raise CliError(
            f"{reference!r} is not a {noun}{short}: give {collection}/{{id}} or the bare id,"
            f" {what}, as {listing} shows them",
            ExitCode.USAGE,
        )
    return f"{collection}/{value.lower()}"


def _is_key_id(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text.lower())


# Kind of id → (check, length, in words).
_PLATFORM_IDS: dict[str, tuple[Callable[[str], bool], int, str]] = {
    "uuid": (is_uuid, 36, "a full UUID (36 characters)"),
    "key": (_is_key_id, 64, "64 hex digits"),
}


def pattern(reference: str) -> str:
    """`patterns/{id}` from itself or the bare id (patterns belong to no organization)."""
    return _platform_name(reference, "patterns", "pattern", "uuid", "`sensei patterns search`")


def signing_key(reference: str) -> str:
    """`signingKeys/{key id}` from itself or the bare key id (64 hex digits)."""
    return _platform_name(
        reference, "signingKeys", "signing key", "key", "`sensei certificates keys`"
    )
