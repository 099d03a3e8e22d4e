"""The audit trail's rules: event validation, the hash chain, checkpoints.

Pure: no I/O. An entry's hash is the hex SHA-256 of the RFC 8785 canonical JSON of all its
fields (org id included, so an entry moved to another organization no longer matches) and
the previous entry's hash. Numbers in `details` are hashed as doubles: that is what a
protobuf Struct holds, and it survives the round trip through jsonb whatever text form
PostgreSQL gives a number back in. Checkpoints sign (org, seq, head hash, time, key id)
with ECDSA P-256; a third party can check them with the JWKS keys.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from services.org.audit import canonical
from shared import names
from shared.errors import FieldViolation, InvalidArgument

GENESIS_HASH = "0" * 64
HASH_VERSION = 1
CHECKPOINT_TYPE = "sensei.audit.checkpoint.v1"

MAX_BATCH = 1000
MAX_ACTOR = 256
MAX_NAME = 128
MAX_RESOURCE_ID = 512
MAX_DETAILS_BYTES = 64 * 1024

_ACTION = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*")
_SERVICE = re.compile(r"[a-z][a-z0-9_-]*")


@dataclass(frozen=True)
class EventDraft:
    """An event as a reporter sent it, before validation."""

    event_id: str
    org_id: str
    user_id: str
    actor: str
    action: str
    resource_type: str
    resource_id: str
    ip_address: str
    service: str
    occurred_at: datetime | None
    details: Mapping[str, Any]


@dataclass(frozen=True)
class AuditEvent:
    """A valid event: ids lower-cased, optional values None."""

    event_id: str
    org_id: str
    user_id: str | None
    actor: str
    action: str
    resource_type: str
    resource_id: str
    ip_address: str
    service: str
    occurred_at: datetime
    details: Mapping[str, Any]


@dataclass(frozen=True)
class AuditEntry:
    """A stored entry: the event at its place in its organization's chain."""

    id: str
    org_id: str
    seq: int
    event_id: str
    user_id: str | None
    actor: str
    action: str
    resource_type: str
    resource_id: str
    ip_address: str
    service: str
    details: Mapping[str, Any]
    occurred_at: datetime
    created_at: datetime
    prev_hash: str
    entry_hash: str

    def computed_hash(self) -> str:
        """What entry_hash must be for the entry's current content."""
        return hash_of(
            entry_id=self.id,
            org_id=self.org_id,
            seq=self.seq,
            event=self,
            created_at=self.created_at,
            prev_hash=self.prev_hash,
        )


@dataclass(frozen=True)
class ChainHead:
    """Where an organization's chain ends, and its last checkpoint."""

    org_id: str
    seq: int
    head_hash: str
    appended_at: datetime | None
    checkpoint_seq: int


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement of a chain's head."""

    org_id: str
    seq: int
    head_hash: str
    created_at: datetime
    key_id: str
    signature: bytes

    @property
    def payload(self) -> bytes:
        """The bytes the signature covers."""
        return checkpoint_payload(
            self.org_id, self.seq, self.head_hash, self.created_at, self.key_id
        )

    def verifies_with(self, key: ec.EllipticCurvePublicKey | None) -> bool:
        """Whether the signature is valid under `key` (False without a key)."""
        if key is None:
            return False
        try:
            key.verify(self.signature, self.payload, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, ValueError):
            return False
        return True

    @property
    def signature_b64(self) -> str:
        """The signature in standard base64."""
        return base64.b64encode(self.signature).decode()


# --- validation -----------------------------------------------------------------------


def validate_events(
    drafts: Sequence[EventDraft], extra: Sequence[FieldViolation] = ()
) -> list[AuditEvent]:
    """The valid events of a batch; INVALID_ARGUMENT listing every violation otherwise."""
    if len(drafts) > MAX_BATCH:
        raise InvalidArgument.single("events", f"must hold at most {MAX_BATCH} events")
    violations = list(extra)
    reported = {violation.field for violation in extra}
    events = []
    for index, draft in enumerate(drafts):
        found = _event_violations(draft, f"events[{index}]")
        # A field the caller's mapping already refused (unreadable time) is reported once.
        violations.extend(v for v in found if v.field not in reported)
        if not found and draft.occurred_at is not None:
            events.append(
                AuditEvent(
                    event_id=draft.event_id.lower(),
                    org_id=draft.org_id.lower(),
                    user_id=draft.user_id.lower() or None,
                    actor=draft.actor,
                    action=draft.action,
                    resource_type=draft.resource_type,
                    resource_id=draft.resource_id,
                    ip_address=draft.ip_address,
                    service=draft.service,
                    occurred_at=draft.occurred_at.astimezone(UTC),
                    details=draft.details,
                )
            )
    if violations:
        raise InvalidArgument(violations)
    return events


def _event_violations(draft: EventDraft, path: str) -> list[FieldViolation]:
    out: list[FieldViolation | None] = [
        _uuid(draft.event_id, f"{path}.event_id", required=True),
        _uuid(draft.org_id, f"{path}.org_id", required=True),
        _uuid(draft.user_id, f"{path}.user_id", required=False),
        _text(draft.actor, f"{path}.actor", MAX_ACTOR),
        _pattern(draft.action, f"{path}.action", _ACTION, "lower-case dotted words"),
        _pattern(draft.resource_type, f"{path}.resource_type", _ACTION, "lower-case words"),
        _text(draft.resource_id, f"{path}.resource_id", MAX_RESOURCE_ID),
        _ip(draft.ip_address, f"{path}.ip_address"),
        _pattern(draft.service, f"{path}.service", _SERVICE, "a lower-case service name"),
        None
        if draft.occurred_at is not None
        else FieldViolation(f"{path}.occur_time", "is required", "REQUIRED"),
        _details(draft.details, f"{path}.details"),
    ]
    return [violation for violation in out if violation is not None]


def _uuid(value: str, path: str, *, required: bool) -> FieldViolation | None:
    if not value:
        return FieldViolation(path, "is required", "REQUIRED") if required else None
    return None if names.is_uuid(value) else FieldViolation(path, "must be a UUID")


def _text(value: str, path: str, limit: int) -> FieldViolation | None:
    if not value:
        return FieldViolation(path, "is required", "REQUIRED")
    if len(value) > limit or not value.isprintable():
        return FieldViolation(path, f"must be at most {limit} printable characters")
    return None


def _pattern(value: str, path: str, pattern: re.Pattern[str], what: str) -> FieldViolation | None:
    if not value:
        return FieldViolation(path, "is required", "REQUIRED")
    if len(value) > MAX_NAME or not pattern.fullmatch(value):
        return FieldViolation(path, f"must be {what}, at most {MAX_NAME} characters")
    return None


def _ip(value: str, path: str) -> FieldViolation | None:
    if not value:
        return None
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return FieldViolation(path, "must be an IPv4 or IPv6 address")
    return None


def _details(value: Mapping[str, Any], path: str) -> FieldViolation | None:
    text = json.dumps(value)
    if len(text) > MAX_DETAILS_BYTES:
        return FieldViolation(path, f"must be at most {MAX_DETAILS_BYTES} bytes of JSON")
    if _holds_nul(value):  # jsonb cannot store U+0000
        return FieldViolation(path, "must not contain U+0000")
    return None


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, Mapping):
        return any(_holds_nul(key) or _holds_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_holds_nul(item) for item in value)
    return False


# --- the chain ------------------------------------------------------------------------


def hash_of(
    *,
    entry_id: str,
    org_id: str,
    seq: int,
    event: AuditEvent | AuditEntry,
    created_at: datetime,
    prev_hash: str,
) -> str:
    """Hex SHA-256 of the RFC 8785 JSON of an entry's fields and the previous hash."""
    document = canonical.entry_document(
        version=HASH_VERSION,
        entry_id=entry_id,
        org_id=org_id,
        seq=seq,
        event_id=event.event_id,
        user_id=event.user_id,
        actor=event.actor,
        action=event.action,
        resource_type=event.resource_type,
        resource_id=event.resource_id,
        ip_address=event.ip_address,
        service=event.service,
        details=as_doubles(event.details),
        occurred_at=time_text(event.occurred_at),
        created_at=time_text(created_at),
        prev_hash=prev_hash,
    )
    return hashlib.sha256(document).hexdigest()


def extend_chain(
    head: ChainHead, events: Sequence[AuditEvent], ids: Sequence[str], created_at: datetime
) -> list[AuditEntry]:
    """The entries that append `events` (with new ids `ids`) after `head`."""
    entries = []
    prev_hash, seq = head.head_hash, head.seq
    for event, entry_id in zip(events, ids, strict=True):
        seq += 1
        entry_hash = hash_of(
            entry_id=entry_id,
            org_id=head.org_id,
            seq=seq,
            event=event,
            created_at=created_at,
            prev_hash=prev_hash,
        )
        entries.append(
            AuditEntry(
                id=entry_id,
                org_id=head.org_id,
                seq=seq,
                event_id=event.event_id,
                user_id=event.user_id,
                actor=event.actor,
                action=event.action,
                resource_type=event.resource_type,
                resource_id=event.resource_id,
                ip_address=event.ip_address,
                service=event.service,
                details=event.details,
                occurred_at=event.occurred_at,
                created_at=created_at,
                prev_hash=prev_hash,
                entry_hash=entry_hash,
            )
        )
        prev_hash = entry_hash
    return entries


def as_doubles(value: Any) -> Any:
    """JSON with every number as a float (booleans stay booleans)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, Mapping):
        return {key: as_doubles(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [as_doubles(item) for item in value]
    raise TypeError(f"not JSON: {type(value).__name__}")


def time_text(value: datetime) -> str:
    """`YYYY-MM-DDTHH:MM:SS.ffffffZ` in UTC: one text per instant (PostgreSQL keeps µs)."""
    utc = value.astimezone(UTC)
    if utc.year < 1000:  # strftime does not pad %Y to four digits; isoformat would
        return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return utc.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


# --- checkpoints ----------------------------------------------------------------------


def checkpoint_payload(
    org_id: str, seq: int, head_hash: str, created_at: datetime, key_id: str
) -> bytes:
    """The RFC 8785 JSON a checkpoint signature covers."""
    return rfc8785.dumps(
        {
            "type": CHECKPOINT_TYPE,
            "org_id": org_id,
            "seq": seq,
            "head_hash": head_hash,
            "key_id": key_id,
            "time": time_text(created_at),
        }
    )


def sign_checkpoint(
    head: ChainHead,
    created_at: datetime,
    key_id: str,
    private_key: ec.EllipticCurvePrivateKey,
) -> Checkpoint:
    """Signs the head of a chain (ECDSA P-256, SHA-256, DER)."""
    at = datetime.fromisoformat(time_text(created_at))  # what the database will keep
    payload = checkpoint_payload(head.org_id, head.seq, head.head_hash, at, key_id)
    signature = private_key.sign(payload, ec.ECDSA(hashes.SHA256()))
    return Checkpoint(head.org_id, head.seq, head.head_hash, at, key_id, signature)
