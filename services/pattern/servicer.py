"""gRPC servicer of the pattern service: protos in, catalog calls, protos out. No rules here."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, TypeAlias

import grpc

from sensei.pattern.v1 import pattern_pb2, pattern_pb2_grpc
from services.pattern import domain
from services.pattern.catalog import PatternCatalog
from services.pattern.domain import IndexState, Pattern
from services.pattern.domain.search import SearchResult
from shared import protoconv
from shared.errors import FieldViolation, InvalidArgument

_CONTEXT: TypeAlias = grpc.aio.ServicerContext

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


# --- mapping --------------------------------------------------------------------------


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


def index_state_filter(value: int) -> tuple[IndexState | None, FieldViolation | None]:
    """The IndexState of a filter (unspecified: no filter)."""
    if value == pattern_pb2.INDEX_STATE_UNSPECIFIED:
        return None, None
    for state, number in _INDEX_STATES.items():
        if number == value:
            return state, None
    return None, FieldViolation("index_state", f"unknown index state {value}")


def outcome_name(value: int) -> str:
    """`PATTERN_OUTCOME_SUCCESS` → `SUCCESS`; unset → ""; unknown numbers stay visible."""
    if value == pattern_pb2.PATTERN_OUTCOME_UNSPECIFIED:
        return ""
    try:
        name: str = pattern_pb2.PatternOutcome.Name(value)  # type: ignore[arg-type]
    except ValueError:
        return f"UNKNOWN({value})"
    return name.removeprefix("PATTERN_OUTCOME_")


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


# --- servicer -------------------------------------------------------------------------


class PatternServicer(pattern_pb2_grpc.PatternServiceServicer):
    """sensei.pattern.v1.PatternService."""

    def __init__(self, catalog: PatternCatalog) -> None:
        self._catalog = catalog

    async def UpsertPattern(
        self, request: pattern_pb2.UpsertPatternRequest, context: _CONTEXT
    ) -> pattern_pb2.UpsertPatternResponse:
        violations: list[FieldViolation] = []
        source = request.WhichOneof("embedding_source")
        fields = domain.UpsertFields(
            fingerprint=request.fingerprint,
            type=request.type,
            metadata=metadata_of(request, violations),
            embedding=list(request.embedding.values) if source == "embedding" else None,
            text=request.text if source == "text" else None,
            etag=request.etag,
        )
        pattern, created = await self._catalog.upsert(fields, violations)
        return pattern_pb2.UpsertPatternResponse(pattern=pattern_proto(pattern), created=created)

    async def GetPattern(
        self, request: pattern_pb2.GetPatternRequest, context: _CONTEXT
    ) -> pattern_pb2.GetPatternResponse:
        ref, problem = domain.pattern_ref(
            request.WhichOneof("pattern"), request.name, request.fingerprint
        )
        domain.raise_if([problem])
        assert ref is not None
        return pattern_pb2.GetPatternResponse(pattern=pattern_proto(await self._catalog.get(ref)))

    async def ListPatterns(
        self, request: pattern_pb2.ListPatternsRequest, context: _CONTEXT
    ) -> pattern_pb2.ListPatternsResponse:
        state, problem = index_state_filter(request.index_state)
        domain.raise_if([problem])
        page = await self._catalog.list_page(
            request.page_size, request.page_token, request.type, state
        )
        return pattern_pb2.ListPatternsResponse(
            patterns=[pattern_proto(pattern) for pattern in page.items],
            next_page_token=page.next_page_token,
        )

    async def DeletePattern(
        self, request: pattern_pb2.DeletePatternRequest, context: _CONTEXT
    ) -> pattern_pb2.DeletePatternResponse:
        await self._catalog.delete(request.name, request.etag)
        return pattern_pb2.DeletePatternResponse()

    async def RecordPatternOutcome(
        self, request: pattern_pb2.RecordPatternOutcomeRequest, context: _CONTEXT
    ) -> pattern_pb2.RecordPatternOutcomeResponse:
        report = domain.check_outcome_report(
            request.WhichOneof("pattern"),
            request.name,
            request.fingerprint,
            outcome_name(request.outcome),
            request.request_id,
            migration=request.migration,
        )
        pattern = await self._catalog.record_outcome(report)
        return pattern_pb2.RecordPatternOutcomeResponse(pattern=pattern_proto(pattern))

    async def SearchPatterns(
        self, request: pattern_pb2.SearchPatternsRequest, context: _CONTEXT
    ) -> pattern_pb2.SearchPatternsResponse:
        which = request.WhichOneof("query")
        query = await self._catalog.search_query(
            text=request.text if which == "text" else None,
            vector=list(request.vector.values) if which == "vector" else None,
            pattern_type=request.type,
            top_k=request.top_k,
            min_similarity=(request.min_similarity if request.HasField("min_similarity") else None),
        )
        results = await self._catalog.search(query)
        return pattern_pb2.SearchPatternsResponse(
            results=[result_proto(result) for result in results]
        )

    async def ReindexPatterns(
        self, request: pattern_pb2.ReindexPatternsRequest, context: _CONTEXT
    ) -> AsyncIterator[pattern_pb2.ReindexPatternsResponse]:
        async for progress in self._catalog.reindex():
            yield pattern_pb2.ReindexPatternsResponse(
                phase=_PHASES[progress.phase],
                total_count=progress.total,
                indexed_count=progress.indexed,
            )

    async def GetPatternIndex(
        self, request: pattern_pb2.GetPatternIndexRequest, context: _CONTEXT
    ) -> pattern_pb2.GetPatternIndexResponse:
        described = await self._catalog.describe_index()
        return pattern_pb2.GetPatternIndexResponse(
            index=pattern_pb2.PatternIndex(
                backend=_BACKENDS[described.backend],
                dimension=described.dimension,
                embedder=described.embedder,
                pattern_count=described.counts.patterns,
                pending_count=described.counts.pending,
                stale_count=described.counts.stale,
            )
        )
