"""The rules of patterns: what a valid request is, what an upsert changes, how search scores.

Pure and synchronous: no I/O, no grpc. The use cases call these with what they read from
the store; `messages.py` only maps protos onto the inputs here.
"""

from __future__ import annotations

import hashlib
import struct
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from services.pattern.domain import ranking
from services.pattern.embedder import Embedder, NothingToEmbed
from services.pattern.index import embedding_id_for, vector_problem
from shared import names
from shared.errors import FieldViolation, InvalidArgument

PATTERN_NAME = "patterns/{pattern}"

MAX_FINGERPRINT_LENGTH = 512
MAX_TYPE_LENGTH = 128
MAX_TEXT_LENGTH = 200_000
MAX_REQUEST_ID_LENGTH = 128


class IndexState(Enum):
    """Where a pattern's current vector stands with respect to the vector index."""

    PENDING = "PENDING"  # stored; the indexer has not written this revision yet
    INDEXED = "INDEXED"  # the index holds the current vector and type
    STALE = "STALE"  # vector of another embedder than the index's, and no text to re-embed


class Outcome(Enum):
    """Result of one application of a pattern."""

    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"


def etag_of(pattern_id: str, version: int) -> str:
    """The opaque etag of one version of a pattern."""
    return hashlib.sha256(f"{pattern_id}:{version}".encode()).hexdigest()[:20]


def pattern_name(pattern_id: str) -> str:
    """`patterns/{id}`."""
    return f"patterns/{pattern_id}"


@dataclass(frozen=True)
class Pattern:
    """A learned migration transformation, as stored in PostgreSQL (the source of truth)."""

    id: str
    type: str
    fingerprint: str
    embedding_id: uuid.UUID
    success_count: int
    failure_count: int
    metadata: Mapping[str, Any]
    source_text: str | None
    # Empty when not loaded (search hits carry no vector).
    embedding: tuple[float, ...]
    # The embedder whose space the vector is in (`Embedder.name`).
    embedder: str
    index_state: IndexState
    index_revision: int
    created_at: datetime
    updated_at: datetime
    version: int

    @property
    def name(self) -> str:
        """Resource name, `patterns/{id}`."""
        return pattern_name(self.id)

    @property
    def etag(self) -> str:
        """Current etag."""
        return etag_of(self.id, self.version)

    @property
    def success_rate(self) -> float:
        """successes / (successes + failures); 0 with no outcomes."""
        return ranking.success_rate(self.success_count, self.failure_count)


# --- input checks ---------------------------------------------------------------------


def raise_if(violations: Iterable[FieldViolation | None]) -> None:
    """INVALID_ARGUMENT listing every violation, if there is any."""
    found = [v for v in violations if v is not None]
    if found:
        raise InvalidArgument(found)


def check_fingerprint(value: str, field_name: str) -> FieldViolation | None:
    """A fingerprint is 1..512 printable characters."""
    if not value:
        return FieldViolation(field_name, "is required", "REQUIRED")
    if len(value) > MAX_FINGERPRINT_LENGTH or not value.isprintable():
        return FieldViolation(
            field_name, f"must be at most {MAX_FINGERPRINT_LENGTH} printable characters"
        )
    return None


def check_type(value: str, field_name: str) -> FieldViolation | None:
    """A type is 1..128 printable characters without surrounding whitespace (may be empty)."""
    if not value:
        return None
    if len(value) > MAX_TYPE_LENGTH or not value.isprintable() or value != value.strip():
        return FieldViolation(
            field_name,
            f"must be at most {MAX_TYPE_LENGTH} printable characters, not padded with spaces",
        )
    return None


def check_request_id(value: str, field_name: str) -> FieldViolation | None:
    """A request id is at most 128 printable characters (empty: no idempotency)."""
    if len(value) > MAX_REQUEST_ID_LENGTH or not value.isprintable():
        return FieldViolation(
            field_name, f"must be at most {MAX_REQUEST_ID_LENGTH} printable characters"
        )
    return None


def check_vector(vector: Sequence[float], dimension: int, field_name: str) -> FieldViolation | None:
    """A vector has the index dimension, finite components and is not all zeros."""
    problem = vector_problem(vector, dimension)
    return None if problem is None else FieldViolation(field_name, problem)


def as_float32(vector: Sequence[float]) -> tuple[float, ...]:
    """The vector rounded to float32, as the API (`repeated float`) and storage (`real[]`)
    hold it, so a re-sent vector compares equal to the stored one."""
    return struct.unpack(f"<{len(vector)}f", struct.pack(f"<{len(vector)}f", *vector))


def embed_text(
    text: str, embedder: Embedder, field_name: str
) -> tuple[tuple[float, ...] | None, FieldViolation | None]:
    """The embedding of `text`, or the violation that explains why there is none."""
    if len(text) > MAX_TEXT_LENGTH:
        return None, FieldViolation(field_name, f"must be at most {MAX_TEXT_LENGTH} characters")
    try:
        return as_float32(embedder.embed(text)), None
    except NothingToEmbed:
        return None, FieldViolation(
            field_name, "has nothing to embed (no identifier, keyword or number)"
        )


@dataclass(frozen=True)
class PatternRef:
    """Which pattern a request means: by id (from its name) or by fingerprint."""

    pattern_id: str | None = None
    fingerprint: str | None = None

    def describe(self) -> str:
        """How the caller named it, for NOT_FOUND."""
        if self.pattern_id is not None:
            return pattern_name(self.pattern_id)
        return f"fingerprint {self.fingerprint}"


def parse_pattern_name(name: str, field_name: str) -> tuple[str | None, FieldViolation | None]:
    """The id in `patterns/{id}`, or the violation."""
    try:
        return names.parse_name(name, PATTERN_NAME, field_name)["pattern"], None
    except InvalidArgument as exc:
        return None, exc.violations[0]


def pattern_ref(
    which: str | None, name: str, fingerprint: str
) -> tuple[PatternRef | None, FieldViolation | None]:
    """The reference of a `oneof pattern { name; fingerprint }` whose set field is `which`."""
    if which == "name":
        pattern_id, problem = parse_pattern_name(name, "name")
        return (None, problem) if pattern_id is None else (PatternRef(pattern_id=pattern_id), None)
    if which == "fingerprint":
        problem = check_fingerprint(fingerprint, "fingerprint")
        return (None, problem) if problem else (PatternRef(fingerprint=fingerprint), None)
    return None, FieldViolation("name", "set the pattern's name or its fingerprint", "REQUIRED")


def outcome_of(name: str) -> tuple[Outcome | None, FieldViolation | None]:
    """The outcome called `name` (SUCCESS or FAILURE), or the violation."""
    if not name:
        return None, FieldViolation("outcome", "is required", "REQUIRED")
    try:
        return Outcome(name), None
    except ValueError:
        return None, FieldViolation("outcome", "must be SUCCESS or FAILURE")


MIGRATION_NAME = "organizations/{org}/migrations/{migration}"


@dataclass(frozen=True)
class MigrationRef:
    """The migration an outcome was seen in (`organizations/{org}/migrations/{id}`)."""

    org_id: str
    migration_id: str

    @property
    def name(self) -> str:
        """The migration's resource name."""
        return f"organizations/{self.org_id}/migrations/{self.migration_id}"


@dataclass(frozen=True)
class OutcomeReport:
    """A checked RecordPatternOutcome request."""

    ref: PatternRef
    outcome: Outcome
    request_id: str
    migration: MigrationRef


def migration_ref(name: str) -> tuple[MigrationRef | None, FieldViolation | None]:
    """The migration named by RecordPatternOutcome's `migration`, or the violation."""
    if not name:
        return None, FieldViolation("migration", "is required", "REQUIRED")
    try:
        ids = names.parse_name(name, MIGRATION_NAME, "migration")
    except InvalidArgument as exc:
        return None, exc.violations[0]
    return MigrationRef(ids["org"], ids["migration"]), None


def check_outcome_report(
    which: str | None,
    name: str,
    fingerprint: str,
    outcome: str,
    request_id: str,
    *,
    migration: str,
) -> OutcomeReport:
    """Checks a RecordPatternOutcome request (every violation at once)."""
    ref, ref_problem = pattern_ref(which, name, fingerprint)
    found, outcome_problem = outcome_of(outcome)
    seen_in, migration_problem = migration_ref(migration)
    raise_if(
        [
            ref_problem,
            outcome_problem,
            check_request_id(request_id, "request_id"),
            migration_problem,
        ]
    )
    assert ref is not None and found is not None and seen_in is not None
    return OutcomeReport(ref, found, request_id, seen_in)


def check_etag(etag: str, current: Pattern) -> bool:
    """Whether an optional etag (empty: not checked) matches the current version."""
    return not etag or etag == current.etag


# --- upsert ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PatternInput:
    """A checked UpsertPattern request. None means "not sent" (keep on update)."""

    fingerprint: str
    type: str | None
    metadata: Mapping[str, Any] | None
    embedding: tuple[float, ...] | None
    source_text: str | None
    etag: str
    # The embedder whose space `embedding` is in (the configured one), when it is set.
    embedder: str | None = None

    @property
    def embedding_id(self) -> uuid.UUID:
        """The embedding id of the pattern: derived from its fingerprint."""
        return embedding_id_for(self.fingerprint)


@dataclass(frozen=True)
class UpsertFields:
    """An UpsertPattern request as the caller sent it (None: the field was not set)."""

    fingerprint: str
    type: str
    metadata: Mapping[str, Any] | None
    embedding: Sequence[float] | None
    text: str | None
    etag: str


def check_upsert(
    fields: UpsertFields,
    embedder: Embedder,
    extra: Iterable[FieldViolation] = (),
) -> PatternInput:
    """Checks an upsert (every violation at once) and embeds its text."""
    violations = [
        *extra,
        check_fingerprint(fields.fingerprint, "fingerprint"),
        check_type(fields.type, "type"),
    ]
    embedding: tuple[float, ...] | None = None
    if fields.embedding is not None:
        problem = check_vector(fields.embedding, embedder.dimension, "embedding.values")
        violations.append(problem)
        if problem is None:
            embedding = as_float32(fields.embedding)
    elif fields.text is not None:
        embedding, problem = embed_text(fields.text, embedder, "text")
        violations.append(problem)
    raise_if(violations)
    return PatternInput(
        fingerprint=fields.fingerprint,
        type=fields.type or None,
        metadata=fields.metadata,
        embedding=embedding,
        source_text=fields.text if fields.embedding is None else None,
        etag=fields.etag,
        embedder=embedder.name if embedding is not None else None,
    )


def missing_for_create(given: PatternInput) -> list[FieldViolation]:
    """What a request lacks to create a pattern (it may update one without them)."""
    violations: list[FieldViolation] = []
    if given.type is None:
        violations.append(
            FieldViolation("type", "is required when the pattern does not exist", "REQUIRED")
        )
    if given.embedding is None:
        violations.append(
            FieldViolation(
                "embedding",
                "set `embedding` or `text` when the pattern does not exist",
                "REQUIRED",
            )
        )
    return violations


@dataclass(frozen=True)
class PatternChanges:
    """What an upsert changes on an existing pattern; empty when it changes nothing."""

    values: Mapping[str, Any]
    reindex: bool

    @property
    def empty(self) -> bool:
        """Whether the pattern stays exactly as it is."""
        return not self.values


def changes_of(current: Pattern, given: PatternInput) -> PatternChanges:
    """The columns an upsert rewrites; `reindex` when the index must learn of it."""
    values: dict[str, Any] = {}
    if given.type is not None and given.type != current.type:
        values["type"] = given.type
    if given.metadata is not None and dict(given.metadata) != dict(current.metadata):
        values["metadata"] = dict(given.metadata)
    if given.embedding is not None and (
        given.embedding != current.embedding or given.embedder != current.embedder
    ):
        # A vector of another embedder is new even if it happens to be equal.
        values["embedding"] = given.embedding
        values["embedder"] = given.embedder
    if given.embedding is not None and given.source_text != current.source_text:
        values["source_text"] = given.source_text
    reindex = "type" in values or "embedding" in values
    return PatternChanges(values, reindex)
