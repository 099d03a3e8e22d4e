"""Field checks every resource shares: display names, slugs, e-mails, URLs, masks, etags.

Pure: no I/O. Checks return a violation (or None) so a caller collects every problem of a
request before `raise_if` raises them together.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from shared.errors import EtagMismatch, FieldViolation, InvalidArgument

MAX_DISPLAY_NAME = 200
MAX_EMAIL = 254
MAX_URL = 2048
_SLUG = re.compile(r"^[a-z][a-z0-9-]{1,61}[a-z0-9]$")
# Pragmatic address check: one @, a dot-separated domain with a TLD, no spaces.
_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
    r"[A-Za-z]{2,63}$"
)


def etag_of(resource_id: str, version: int) -> str:
    """The opaque etag of one version of a resource."""
    return hashlib.sha256(f"{resource_id}:{version}".encode()).hexdigest()[:20]


@dataclass(frozen=True)
class Changes:
    """Validated new column values of an update (only the masked ones)."""

    values: Mapping[str, Any] = field(default_factory=dict)


def raise_if(violations: Iterable[FieldViolation | None]) -> None:
    """INVALID_ARGUMENT listing every violation, if there is any."""
    found = [v for v in violations if v is not None]
    if found:
        raise InvalidArgument(found)


def check_display_name(value: str, path: str) -> FieldViolation | None:
    """1..200 printable characters, not only spaces."""
    if not value.strip():
        return FieldViolation(path, "is required", "REQUIRED")
    if len(value) > MAX_DISPLAY_NAME:
        return FieldViolation(path, f"must be at most {MAX_DISPLAY_NAME} characters", "TOO_LONG")
    if not value.isprintable():
        return FieldViolation(path, "must not contain control characters")
    return None


def check_slug(value: str, path: str) -> FieldViolation | None:
    """3..63 of [a-z0-9-], starting with a letter, not ending with `-`."""
    if not value:
        return FieldViolation(path, "is required", "REQUIRED")
    if not _SLUG.fullmatch(value) or "--" in value:
        return FieldViolation(
            path,
            "must be 3-63 characters of a-z, 0-9 and single '-', start with a letter"
            " and not end with '-'",
            "INVALID_SLUG",
        )
    return None


def check_email(value: str, path: str) -> FieldViolation | None:
    """A plausible e-mail address of at most 254 characters."""
    if not value:
        return FieldViolation(path, "is required", "REQUIRED")
    if len(value) > MAX_EMAIL or not _EMAIL.fullmatch(value):
        return FieldViolation(path, "must be a valid e-mail address", "INVALID_EMAIL")
    return None


def check_url(value: str, path: str) -> FieldViolation | None:
    """Empty, or an absolute http(s) URL with a host."""
    if not value:
        return None
    try:
        parts = urlsplit(value)
        valid = parts.scheme in {"http", "https"} and bool(parts.hostname)
    except ValueError:
        valid = False
    if not valid or len(value) > MAX_URL or not value.isprintable() or " " in value:
        return FieldViolation(
            path, f"must be an http(s) URL of at most {MAX_URL} characters", "INVALID_URL"
        )
    return None


def check_mask(
    paths: Sequence[str], mutable: Iterable[str], immutable: Iterable[str], path: str
) -> list[FieldViolation]:
    """Every path must be a known mutable field; the mask must not be empty."""
    if not paths:
        return [FieldViolation(path, "must list the fields to change", "REQUIRED")]
    allowed, frozen = set(mutable), set(immutable)
    out = []
    for item in paths:
        if item in frozen:
            out.append(FieldViolation(path, f"{item!r} cannot be changed", "IMMUTABLE_FIELD"))
        elif item not in allowed:
            out.append(FieldViolation(path, f"{item!r} is not a field", "UNKNOWN_FIELD"))
    return out


def check_etag(sent: str, current: str, resource_type: str, name: str) -> None:
    """ABORTED when an etag was sent and it is not the current one."""
    if sent and sent != current:
        raise EtagMismatch(resource_type, name)


def normalize_email(value: str) -> str:
    """E-mails compare case-insensitively; we store them lower-cased."""
    return value.strip().lower()
