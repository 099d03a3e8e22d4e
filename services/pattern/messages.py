"""Proto ⇄ domain mapping of the pattern service's messages.

Requests in: fields onto the domain's inputs; names and oneofs checked by the domain's
parsers (every violation at once where the domain collects them). Domain objects out:
every message and response the servicer returns.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sensei.pattern.v1 import pattern_pb2
from services.pattern import domain
from services.pattern.domain import (
    IndexState,
    OutcomeReport,
    Pattern,
    PatternRef,
    SearchResult,
    UpsertFields,
)
from services.pattern.indexer import ReindexProgress
from services.pattern.use_cases.patterns import IndexDescription
from shared import protoconv
from shared.errors import FieldViolation, InvalidArgument
from shared.pagination import Page

_INDEX_STATES = {
    IndexState.PENDING: pattern_pb2.INDEX_STATE_PENDING,
    IndexState.INDEXED: pattern_pb2.INDEX_STATE_INDEXED,
    IndexState.STALE: pattern_pb2.INDEX_STATE_STALE,
}
_BACKENDS = {
    "pgvector": pattern_pb2.INDEX_BACKEND_PGVECTOR,
    "weaviate": pattern_pb2.INDEX_BACKEND_WEAVIATE,
}
_PHASES = {
    "CLEARING": pattern_pb2.REINDEX_PHASE_CLEARING,
    "INDEXING": pattern_pb2.REINDEX_PHASE_INDEXING,
    "DONE": pattern_pb2.REINDEX_PHASE_DONE,
}


# --- requests in ----------------------------------------------------------------------


def upsert_fields_in(
    request: pattern_pb2.UpsertPatternRequest, violations: list[FieldViolation]
) -> UpsertFields:
    """The fields of an UpsertPattern request; metadata problems go to `violations`."""
    source = request.WhichOneof("embedding_source")
    return UpsertFields(
        fingerprint=request.fingerprint,
        type=request.type,
        metadata=metadata_of(request, violations),
        embedding=list(request.embedding.values) if source == "embedding" else None,
        text=request.text if source == "text" else None,
        etag=request.etag,
    )


def metadata_of(
    request: pattern_pb2.UpsertPatternRequest, violations: list[FieldViolation]
) -> dict[str, Any] | None:
    """The metadata Struct as a dict (None when unset); problems go to `violations`."""
    if not request.HasField("metadata"):
        return None
    try:
        return protoconv.dict_of(request.metadata, "metadata")
    except InvalidArgument as exc:
        violations.extend(exc.violations)
        return {}


def pattern_ref_in(request: pattern_pb2.GetPatternRequest) -> PatternRef:
    """The pattern a GetPattern request names (by name or fingerprint); INVALID_ARGUMENT
    when neither is usable."""
    ref, problem = domain.pattern_ref(
        request.WhichOneof("pattern"), request.name, request.fingerprint
    )
    domain.raise_if([problem])
    assert ref is not None
    return ref


def index_state_in(value: int) -> IndexState | None:
    """A ListPatterns filter on index state (unspecified: no filter); unknown numbers →
    INVALID_ARGUMENT."""
    if value == pattern_pb2.INDEX_STATE_UNSPECIFIED:
        return None
    for state, number in _INDEX_STATES.items():
        if number == value:
            return state
    raise InvalidArgument([FieldViolation("index_state", f"unknown index state {value}")])


def outcome_name(value: int) -> str:
    """`PATTERN_OUTCOME_SUCCESS` → `SUCCESS`; unset → ""; unknown numbers stay visible."""
    if value == pattern_pb2.PATTERN_OUTCOME_UNSPECIFIED:
        return ""
    try:
        name: str = pattern_pb2.PatternOutcome.Name(value)  # type: ignore[arg-type]
    except ValueError:
        return f"UNKNOWN({value})"
    return name.removeprefix("PATTERN_OUTCOME_")


def outcome_report_in(request: pattern_pb2.RecordPatternOutcomeRequest) -> OutcomeReport:
    """A RecordPatternOutcome request, checked (every violation at once)."""
    return domain.check_outcome_report(
        request.WhichOneof("pattern"),
        request.name,
        request.fingerprint,
        outcome_name(request.outcome),
        request.request_id,
        migration=request.migration,
    )


def search_vector_in(request: pattern_pb2.SearchPatternsRequest) -> Sequence[float] | None:
    """The query vector of a SearchPatterns request (None when it asks by text)."""
    return list(request.vector.values) if request.WhichOneof("query") == "vector" else None


def search_text_in(request: pattern_pb2.SearchPatternsRequest) -> str | None:
    """The query text of a SearchPatterns request (None when it asks by vector)."""
    return request.text if request.WhichOneof("query") == "text" else None


def min_similarity_in(request: pattern_pb2.SearchPatternsRequest) -> float | None:
    """The similarity bound of a SearchPatterns request (None when unset)."""
    return request.min_similarity if request.HasField("min_similarity") else None


# --- messages out ---------------------------------------------------------------------


def pattern_proto(pattern: Pattern) -> pattern_pb2.Pattern:
    """The API form of a pattern."""
    return pattern_pb2.Pattern(
        name=pattern.name,
        id=pattern.id,
        type=pattern.type,
        fingerprint=pattern.fingerprint,
        embedding_id=str(pattern.embedding_id),
        success_count=pattern.success_count,
        failure_count=pattern.failure_count,
        metadata=protoconv.struct_of(dict(pattern.metadata)),
        create_time=protoconv.timestamp(pattern.created_at),
        update_time=protoconv.timestamp(pattern.updated_at),
        index_state=_INDEX_STATES[pattern.index_state],
        etag=pattern.etag,
        success_rate=pattern.success_rate,
    )


def result_proto(result: SearchResult) -> pattern_pb2.SearchPatternsResult:
    """The API form of one search match."""
    return pattern_pb2.SearchPatternsResult(
        pattern=pattern_proto(result.pattern),
        similarity=result.score.similarity,
        success_rate=result.score.success_rate,
        success_lower_bound=result.score.success_lower_bound,
        rank_score=result.score.rank_score,
    )


def index_proto(described: IndexDescription) -> pattern_pb2.PatternIndex:
    """The API form of the index's state."""
    return pattern_pb2.PatternIndex(
        backend=_BACKENDS[described.backend],
        dimension=described.dimension,
        embedder=described.embedder,
        pattern_count=described.counts.patterns,
        pending_count=described.counts.pending,
        stale_count=described.counts.stale,
    )


# --- responses ------------------------------------------------------------------------


def upsert_pattern_response(pattern: Pattern, created: bool) -> pattern_pb2.UpsertPatternResponse:
    """UpsertPattern's answer."""
    return pattern_pb2.UpsertPatternResponse(pattern=pattern_proto(pattern), created=created)


def get_pattern_response(pattern: Pattern) -> pattern_pb2.GetPatternResponse:
    """GetPattern's answer."""
    return pattern_pb2.GetPatternResponse(pattern=pattern_proto(pattern))


def list_patterns_response(page: Page[Pattern]) -> pattern_pb2.ListPatternsResponse:
    """One page of ListPatterns."""
    return pattern_pb2.ListPatternsResponse(
        patterns=[pattern_proto(pattern) for pattern in page.items],
        next_page_token=page.next_page_token,
    )


def delete_pattern_response() -> pattern_pb2.DeletePatternResponse:
    """DeletePattern's (empty) answer."""
    return pattern_pb2.DeletePatternResponse()


def record_outcome_response(pattern: Pattern) -> pattern_pb2.RecordPatternOutcomeResponse:
    """RecordPatternOutcome's answer: the pattern with its counts now."""
    return pattern_pb2.RecordPatternOutcomeResponse(pattern=pattern_proto(pattern))


def search_patterns_response(
    results: Sequence[SearchResult],
) -> pattern_pb2.SearchPatternsResponse:
    """SearchPatterns' answer, best match first."""
    return pattern_pb2.SearchPatternsResponse(results=[result_proto(r) for r in results])


def reindex_progress_response(progress: ReindexProgress) -> pattern_pb2.ReindexPatternsResponse:
    """One progress report of ReindexPatterns' stream."""
    return pattern_pb2.ReindexPatternsResponse(
        phase=_PHASES[progress.phase],
        total_count=progress.total,
        indexed_count=progress.indexed,
    )


def get_pattern_index_response(
    described: IndexDescription,
) -> pattern_pb2.GetPatternIndexResponse:
    """GetPatternIndex's answer."""
    return pattern_pb2.GetPatternIndexResponse(index=index_proto(described))
