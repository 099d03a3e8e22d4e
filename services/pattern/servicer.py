"""gRPC servicer of the pattern service: request → use case → response. No rules here.

Every message is read and built in messages.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TypeAlias

import grpc

from sensei.pattern.v1 import pattern_pb2, pattern_pb2_grpc
from services.pattern import messages
from services.pattern.use_cases.patterns import Patterns
from services.pattern.use_cases.search import PatternSearch
from shared.errors import FieldViolation

_CONTEXT: TypeAlias = grpc.aio.ServicerContext


class PatternServicer(pattern_pb2_grpc.PatternServiceServicer):
    """sensei.pattern.v1.PatternService."""

    def __init__(self, patterns: Patterns, search: PatternSearch) -> None:
        self._patterns = patterns
        self._search = search

    async def UpsertPattern(
        self, request: pattern_pb2.UpsertPatternRequest, context: _CONTEXT
    ) -> pattern_pb2.UpsertPatternResponse:
        violations: list[FieldViolation] = []
        fields = messages.upsert_fields_in(request, violations)
        pattern, created = await self._patterns.upsert(fields, violations)
        return messages.upsert_pattern_response(pattern, created)

    async def GetPattern(
        self, request: pattern_pb2.GetPatternRequest, context: _CONTEXT
    ) -> pattern_pb2.GetPatternResponse:
        ref = messages.pattern_ref_in(request)
        return messages.get_pattern_response(await self._patterns.get(ref))

    async def ListPatterns(
        self, request: pattern_pb2.ListPatternsRequest, context: _CONTEXT
    ) -> pattern_pb2.ListPatternsResponse:
        state = messages.index_state_in(request.index_state)
        page = await self._patterns.list_page(
            request.page_size, request.page_token, request.type, state
        )
        return messages.list_patterns_response(page)

    async def DeletePattern(
        self, request: pattern_pb2.DeletePatternRequest, context: _CONTEXT
    ) -> pattern_pb2.DeletePatternResponse:
        await self._patterns.delete(request.name, request.etag)
        return messages.delete_pattern_response()

    async def RecordPatternOutcome(
        self, request: pattern_pb2.RecordPatternOutcomeRequest, context: _CONTEXT
    ) -> pattern_pb2.RecordPatternOutcomeResponse:
        report = messages.outcome_report_in(request)
        return messages.record_outcome_response(await self._patterns.record_outcome(report))

    async def SearchPatterns(
        self, request: pattern_pb2.SearchPatternsRequest, context: _CONTEXT
    ) -> pattern_pb2.SearchPatternsResponse:
        results = await self._search.search(
            messages.search_text_in(request),
            messages.search_vector_in(request),
            pattern_type=request.type,
            top_k=request.top_k,
            min_similarity=messages.min_similarity_in(request),
        )
        return messages.search_patterns_response(results)

    async def ReindexPatterns(
        self, request: pattern_pb2.ReindexPatternsRequest, context: _CONTEXT
    ) -> AsyncIterator[pattern_pb2.ReindexPatternsResponse]:
        async for progress in self._patterns.reindex():
            yield messages.reindex_progress_response(progress)

    async def GetPatternIndex(
        self, request: pattern_pb2.GetPatternIndexRequest, context: _CONTEXT
    ) -> pattern_pb2.GetPatternIndexResponse:
        return messages.get_pattern_index_response(await self._patterns.describe_index())
