"""Service accounts: non-human platform principals (role SERVICE, no organization)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.org.domain.validation import check_display_name, raise_if


@dataclass(frozen=True)
class ServiceAccount:
    """A non-human principal (role SERVICE, no organization)."""

    id: str
    display_name: str
    created_at: datetime


def check_service_account(display_name: str) -> None:
    """A CreateServiceAccount request needs a display name."""
    raise_if([check_display_name(display_name, "service_account.display_name")])
