"""Test harness: one PostgreSQL per run, a database per test, services on real channels."""

from tests.harness.errors import bad_request_fields, error_info, quota_failure, rich_status
from tests.harness.suite import ALL_SERVICES, Identity, Suite

__all__ = [
    "ALL_SERVICES",
    "Identity",
    "Suite",
    "bad_request_fields",
    "error_info",
    "quota_failure",
    "rich_status",
]
