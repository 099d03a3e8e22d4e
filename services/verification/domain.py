"""The rules of verifications: valid requests, outcomes, connection configs, job retries.

Pure: no I/O. `messages.py` maps protos onto these types, the use cases
(`use_cases/verifications.py`, `use_cases/signing_keys.py`) and the worker apply the rules,
and `store/` persists the results.
"""

from __future__ import annotations

import enum
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared import names
from shared.errors import FieldViolation, InvalidArgument

MIGRATION_PATTERN = "organizations/{org}/migrations/{migration}"
VERIFICATION_PATTERN = "organizations/{org}/migrations/{migration}/verifications/{verification}"
CERTIFICATE_PATTERN = "organizations/{org}/certificates/{certificate}"
SIGNING_KEY_PREFIX = "signingKeys/"
ALL_MIGRATIONS = "-"

MAX_TABLES = 1000
MAX_TABLE_NAME_LENGTH = 255  # `schema.table`, each part at most 63 bytes in PostgreSQL
MAX_REVOKE_REASON_LENGTH = 1000

_KEY_ID = re.compile(r"[0-9a-f]{64}")


class VerificationType(enum.StrEnum):
    """What a verification compares (proto VerificationType without its prefix)."""

    SCHEMA_PARITY = "SCHEMA_PARITY"
    ROW_COUNT = "ROW_COUNT"
    CHECKSUM = "CHECKSUM"


class VerificationStatus(enum.StrEnum):
    """Lifecycle: PENDING -> RUNNING -> PASSED | FAILED | ERROR."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    PASSED = "PASSED"
    FAILED = "FAILED"
    ERROR = "ERROR"

    @property
    def terminal(self) -> bool:
        """Whether the verification is finished (it never changes again)."""
        return self in _TERMINAL

    @property
    def certified(self) -> bool:
        """Whether a verification finishing in this status gets a certificate."""
        return self in (VerificationStatus.PASSED, VerificationStatus.FAILED)


_TERMINAL = frozenset(
    {VerificationStatus.PASSED, VerificationStatus.FAILED, VerificationStatus.ERROR}
)


@dataclass(frozen=True)
class Verification:
    """A verification as stored."""

    id: str
    org_id: str
    migration_id: str
    type: VerificationType
    status: VerificationStatus
    score: float
    certificate_id: str | None
    result: Mapping[str, Any]
    tables: tuple[str, ...]
    tables_done: int
    tables_total: int
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    version: int
    created_by: str = ""

    @property
    def name(self) -> str:
        """Resource name."""
        return f"organizations/{self.org_id}/migrations/{self.migration_id}/verifications/{self.id}"

    @property
    def migration_name(self) -> str:
        """Resource name of the verified migration."""
        return migration_name(self.org_id, self.migration_id)

    @property
    def certificate_name(self) -> str:
        """Resource name of its certificate, or "" before it has one."""
        if self.certificate_id is None:
            return ""
        return certificate_name(self.org_id, self.certificate_id)


@dataclass(frozen=True)
class NewVerification:
    """A validated CreateVerification request."""

    org_id: str
    migration_id: str
    type: VerificationType
    tables: tuple[str, ...]

    @property
    def migration_name(self) -> str:
        """Resource name of the migration to verify."""
        return migration_name(self.org_id, self.migration_id)


@dataclass(frozen=True)
class Certificate:
    """A stored certificate: the envelope bytes as issued plus what they say."""

    id: str
    org_id: str
    migration_id: str
    verification_id: str
    key_id: str
    envelope: bytes
    verification_type: VerificationType
    score: float
    result_digest: str
    source_schema_fingerprint: str
    target_schema_fingerprint: str
    issued_at: datetime

    @property
    def name(self) -> str:
        """Resource name."""
        return certificate_name(self.org_id, self.id)

    @property
    def verification_name(self) -> str:
        """Resource name of the certified verification."""
        return (
            f"organizations/{self.org_id}/migrations/{self.migration_id}"
            f"/verifications/{self.verification_id}"
        )


def migration_name(org_id: str, migration_id: str) -> str:
    """`organizations/{org}/migrations/{migration}`."""
    return f"organizations/{org_id}/migrations/{migration_id}"


def certificate_name(org_id: str, certificate_id: str) -> str:
    """`organizations/{org}/certificates/{certificate}`."""
    return f"organizations/{org_id}/certificates/{certificate_id}"


def signing_key_name(key_id: str) -> str:
    """`signingKeys/{key_id}`."""
    return f"{SIGNING_KEY_PREFIX}{key_id}"


def new_id() -> str:
    """A fresh resource id."""
    return str(uuid.uuid4())


# --- requests ----------------------------------------------------------------------------------


def validate_new_verification(
    parent: str, type_name: str, tables: Sequence[str]
) -> NewVerification:
    """A CreateVerification request checked whole: every violation is reported at once.

    `type_name` is the type without its proto prefix ("" when unset).
    """
    violations: list[FieldViolation] = []
    ids: dict[str, str] = {}
    try:
        ids = names.parse_name(parent, MIGRATION_PATTERN, "parent")
    except InvalidArgument as exc:
        violations.extend(exc.violations)
    verification_type: VerificationType | None = None
    if not type_name:
        violations.append(FieldViolation("verification.type", "is required", reason="REQUIRED"))
    else:
        try:
            verification_type = VerificationType(type_name)
        except ValueError:
            violations.append(
                FieldViolation(
                    "verification.type",
                    f"must be one of {', '.join(t.value for t in VerificationType)}",
                )
            )
    chosen = _table_violations(tables, violations)
    if violations:
        raise InvalidArgument(violations)
    assert verification_type is not None
    return NewVerification(ids["org"], ids["migration"], verification_type, chosen)


def _table_violations(tables: Sequence[str], violations: list[FieldViolation]) -> tuple[str, ...]:
    if len(tables) > MAX_TABLES:
        violations.append(
            FieldViolation("verification.tables", f"must list at most {MAX_TABLES} tables")
        )
        return ()
    seen: set[str] = set()
    chosen: list[str] = []
    for index, table in enumerate(tables):
        path = f"verification.tables[{index}]"
        qualified = qualified_table(table)
        if qualified is None:
            violations.append(
                FieldViolation(path, "must be `schema.table`, or `table` for schema public")
            )
        elif qualified in seen:
            violations.append(FieldViolation(path, f"lists {qualified} twice"))
        else:
            seen.add(qualified)
            chosen.append(qualified)
    return tuple(chosen)


def qualified_table(text: str) -> str | None:
    """`schema.table` of a table name as a request spells it, or None when it is not one."""
    if not text or len(text) > MAX_TABLE_NAME_LENGTH or not text.isprintable():
        return None
    schema, dot, table = text.partition(".")
    if not dot:
        return f"public.{schema}"
    if not schema or not table:
        return None
    return text


def parse_verification_name(name: str, field_name: str = "name") -> tuple[str, str, str]:
    """(org, migration, verification) ids of a verification's resource name."""
    ids = names.parse_name(name, VERIFICATION_PATTERN, field_name)
    return ids["org"], ids["migration"], ids["verification"]


def parse_list_parent(parent: str) -> tuple[str, str | None]:
    """(org, migration or None for `-`) of a ListVerifications parent."""
    if parent.endswith(f"/{ALL_MIGRATIONS}"):
        ids = names.parse_name(parent, "organizations/{org}/migrations/-", "parent")
        return ids["org"], None
    ids = names.parse_name(parent, MIGRATION_PATTERN, "parent")
    return ids["org"], ids["migration"]


def parse_certificate_name(name: str, field_name: str = "name") -> tuple[str, str]:
    """(org, certificate) ids of a certificate's resource name."""
    ids = names.parse_name(name, CERTIFICATE_PATTERN, field_name)
    return ids["org"], ids["certificate"]


def parse_signing_key_name(name: str, field_name: str = "name") -> str:
    """The key id of `signingKeys/{key_id}`."""
    key_id = name.removeprefix(SIGNING_KEY_PREFIX)
    if not name.startswith(SIGNING_KEY_PREFIX) or not _KEY_ID.fullmatch(key_id):
        raise InvalidArgument.single(
            field_name, "must look like 'signingKeys/{key_id}' with a 64-digit lower-case hex id"
        )
    return key_id


def check_revoke_reason(reason: str) -> str:
    """The reason of a revocation, trimmed; INVALID_ARGUMENT when too long or unprintable."""
    trimmed = reason.strip()
    if len(trimmed) > MAX_REVOKE_REASON_LENGTH or not trimmed.isprintable():
        raise InvalidArgument.single(
            "reason", f"must be at most {MAX_REVOKE_REASON_LENGTH} printable characters"
        )
    return trimmed


# --- outcomes ----------------------------------------------------------------------------------


def status_of_score(score: float) -> VerificationStatus:
    """PASSED exactly when every check matched, FAILED otherwise."""
    return VerificationStatus.PASSED if score >= 1.0 else VerificationStatus.FAILED


class CheckError(Exception):
    """A verification that cannot be carried out; it ends in status ERROR with this reason."""

    def __init__(self, reason: str, message: str, **details: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.details = details


def error_result(
    verification_type: VerificationType, reason: str, message: str, details: Mapping[str, str]
) -> dict[str, Any]:
    """The result of a verification that ended in ERROR."""
    return {"type": verification_type.value, "error": message, "reason": reason, **details}


# --- jobs --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobPolicy:
    """How workers hold and retry jobs."""

    # How long a claim lasts without renewal; a worker renews it every third of that.
    lease_seconds: float = 60.0
    # Claims of one job before it ends in ERROR (a job whose workers keep dying).
    max_attempts: int = 5
    # Longest wait between retries of a job whose dependency was unavailable.
    max_retry_delay_seconds: float = 60.0
    # How often an idle worker looks for claimable jobs without a wake-up.
    poll_seconds: float = 2.0

    def __post_init__(self) -> None:
        if self.lease_seconds <= 0 or self.poll_seconds <= 0 or self.max_attempts < 1:
            raise ValueError("lease and poll must be positive, max_attempts at least 1")

    def retry_delay(self, attempts: int) -> float:
        """Seconds to wait before the next attempt after `attempts` failed ones."""
        return float(min(2 ** max(attempts - 1, 0), self.max_retry_delay_seconds))

    def exhausted(self, attempts: int) -> bool:
        """Whether a job claimed for the `attempts`-th time has had too many tries."""
        return attempts > self.max_attempts


@dataclass(frozen=True)
class Lease:
    """A worker's claim on a job: valid while the job's worker and attempt still match."""

    verification_id: str
    worker_id: str
    attempt: int
    # The request that queued the job (W3C traceparent), when tracing was on.
    traceparent: str | None = None


class LeaseLost(Exception):
    """The worker no longer holds the job (its lease expired and another worker took it)."""
