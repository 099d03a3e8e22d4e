"""The pattern rules, without I/O: request checks, what an upsert changes, result ranking."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from services.pattern import domain
from services.pattern.domain import (
    IndexState,
    Outcome,
    Pattern,
    PatternInput,
    UpsertFields,
    search,
)
from services.pattern.domain.search import SearchQuery
from services.pattern.embedder import FeatureHashingEmbedder
from services.pattern.index import embedding_id_for
from shared.errors import InvalidArgument

EMBEDDER = FeatureHashingEmbedder(4)
NOW = datetime(2025, 1, 1, tzinfo=UTC)


def stored(
    fingerprint: str = "fp",
    embedding: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0),
    *,
    pattern_type: str = "column_rename",
    successes: int = 0,
    failures: int = 0,
    embedder: str = EMBEDDER.name,
) -> Pattern:
    return Pattern(
        id=str(uuid.uuid4()),
        type=pattern_type,
        fingerprint=fingerprint,
        embedding_id=embedding_id_for(fingerprint),
        success_count=successes,
        failure_count=failures,
        metadata={"a": 1},
        source_text=None,
        embedding=embedding,
        embedder=embedder,
        index_state=IndexState.INDEXED,
        index_revision=1,
        created_at=NOW,
        updated_at=NOW,
        version=1,
    )


def given(**changes: object) -> PatternInput:
    values: dict[str, object] = {
        "fingerprint": "fp",
        "type": None,
        "metadata": None,
        "embedding": None,
        "source_text": None,
        "etag": "",
    }
    values.update(changes)
    if values["embedding"] is not None:
        values.setdefault("embedder", EMBEDDER.name)
    return PatternInput(**values)  # type: ignore[arg-type]


def fields(**changes: object) -> UpsertFields:
    values: dict[str, object] = {
        "fingerprint": "fp",
        "type": "t",
        "metadata": None,
        "embedding": None,
        "text": None,
        "etag": "",
    }
    values.update(changes)
    return UpsertFields(**values)  # type: ignore[arg-type]


def violated(error: pytest.ExceptionInfo[InvalidArgument]) -> set[str]:
    return {violation.field for violation in error.value.violations}


def test_check_upsert_lists_every_violation() -> None:
    with pytest.raises(InvalidArgument) as error:
        domain.check_upsert(fields(fingerprint="", type=" padded", embedding=[1.0, 2.0]), EMBEDDER)
    assert violated(error) == {"fingerprint", "type", "embedding.values"}


def test_check_upsert_embeds_text_and_keeps_it() -> None:
    checked = domain.check_upsert(fields(text="ALTER TABLE t RENAME a TO b"), EMBEDDER)
    assert checked.embedding is not None and len(checked.embedding) == 4
    assert checked.source_text == "ALTER TABLE t RENAME a TO b"


def test_text_without_tokens_is_invalid() -> None:
    with pytest.raises(InvalidArgument) as error:
        domain.check_upsert(fields(text="  ;; "), EMBEDDER)
    assert violated(error) == {"text"}


def test_caller_vector_is_rounded_to_float32_and_drops_the_text() -> None:
    checked = domain.check_upsert(fields(embedding=[0.1, 0.2, 0.3, 0.4]), EMBEDDER)
    assert checked.embedding == domain.as_float32([0.1, 0.2, 0.3, 0.4])
    assert checked.embedding != (0.1, 0.2, 0.3, 0.4) and checked.source_text is None


def test_create_needs_a_type_and_a_vector() -> None:
    missing = domain.missing_for_create(given())
    assert {violation.field for violation in missing} == {"type", "embedding"}


def test_same_values_change_nothing() -> None:
    current = stored()
    changes = domain.changes_of(
        current, given(type=current.type, metadata={"a": 1}, embedding=current.embedding)
    )
    assert changes.empty and not changes.reindex


def test_metadata_change_needs_no_reindex() -> None:
    changes = domain.changes_of(stored(), given(metadata={"a": 2}))
    assert dict(changes.values) == {"metadata": {"a": 2}} and not changes.reindex


def test_same_vector_of_another_embedder_is_a_change_that_needs_a_reindex() -> None:
    current = stored(embedder="another-embedder/4")
    changes = domain.changes_of(current, given(embedding=current.embedding))
    assert changes.reindex and changes.values["embedder"] == EMBEDDER.name


def test_check_upsert_records_the_embedder_of_the_vector() -> None:
    assert domain.check_upsert(fields(text="rename a"), EMBEDDER).embedder == EMBEDDER.name
    assert domain.check_upsert(fields(type="t"), EMBEDDER).embedder is None


@pytest.mark.parametrize(
    "change", [{"type": "other"}, {"embedding": (0.0, 1.0, 0.0, 0.0)}], ids=["type", "vector"]
)
def test_type_or_vector_change_needs_a_reindex(change: dict[str, object]) -> None:
    assert domain.changes_of(stored(), given(**change)).reindex


def test_etag_is_checked_only_when_sent() -> None:
    current = stored()
    assert domain.check_etag("", current) and domain.check_etag(current.etag, current)
    assert not domain.check_etag("stale", current)


@pytest.mark.parametrize(
    ("which", "name", "fingerprint", "field"),
    [
        (None, "", "", "name"),
        ("name", "patterns/not-a-uuid", "", "name"),
        ("name", f"organizations/{uuid.uuid4()}", "", "name"),
        ("fingerprint", "", "", "fingerprint"),
        ("fingerprint", "", "x" * 513, "fingerprint"),
    ],
)
def test_bad_pattern_references_are_violations(
    which: str | None, name: str, fingerprint: str, field: str
) -> None:
    ref, problem = domain.pattern_ref(which, name, fingerprint)
    assert ref is None and problem is not None and problem.field == field


def test_outcome_report_lists_every_violation() -> None:
    with pytest.raises(InvalidArgument) as error:
        domain.check_outcome_report(None, "", "", "", "\x00", migration="migrations/x")
    assert violated(error) == {"name", "outcome", "request_id", "migration"}


def test_outcome_report_of_a_fingerprint() -> None:
    org, migration = "0b7d4a2e-7a61-4d3c-9f43-7c3b1f0c2a11", "5d1c2e3f-4a5b-4c6d-8e7f-8091a2b3c4d5"
    report = domain.check_outcome_report(
        "fingerprint",
        "",
        "fp",
        "FAILURE",
        "r-1",
        migration=f"organizations/{org}/migrations/{migration}",
    )
    assert (report.ref.fingerprint, report.outcome, report.request_id) == (
        "fp",
        Outcome.FAILURE,
        "r-1",
    )
    assert (report.migration.org_id, report.migration.migration_id) == (org, migration)


def test_check_search_lists_every_violation() -> None:
    with pytest.raises(InvalidArgument) as error:
        search.check_search(
            None,
            [1.0],
            pattern_type="ok",
            top_k=-1,
            min_similarity=1.5,
            embedder=EMBEDDER,
        )
    assert violated(error) == {"vector.values", "top_k", "min_similarity"}


def test_check_search_needs_a_query() -> None:
    with pytest.raises(InvalidArgument) as error:
        search.check_search(
            None, None, pattern_type="", top_k=0, min_similarity=None, embedder=EMBEDDER
        )
    assert violated(error) == {"text"}


@pytest.mark.parametrize(("asked", "used"), [(0, 10), (5, 5), (1000, 100)])
def test_top_k_defaults_and_caps(asked: int, used: int) -> None:
    query = search.check_search(
        "rename", None, pattern_type="", top_k=asked, min_similarity=None, embedder=EMBEDDER
    )
    assert query.top_k == used and query.candidates > used


def test_ranking_drops_vanished_patterns_and_other_types_and_prefers_proven() -> None:
    proven = stored("proven", (1.0, 0.1, 0.0, 0.0), successes=20)
    unproven = stored("unproven", (1.0, 0.0, 0.0, 0.0))
    other_type = stored("other", (1.0, 0.0, 0.0, 0.0), pattern_type="index_add")
    vanished = embedding_id_for("vanished")
    query = SearchQuery(
        (1.0, 0.0, 0.0, 0.0), "column_rename", top_k=10, min_similarity=None, embedder=EMBEDDER.name
    )
    results = search.rank_matches(
        query,
        [
            (vanished, 1.0),
            (unproven.embedding_id, 1.0),
            (other_type.embedding_id, 1.0),
            (proven.embedding_id, 0.99),
        ],
        {p.embedding_id: p for p in (proven, unproven, other_type)},
    )
    assert [result.pattern.fingerprint for result in results] == ["proven", "unproven"]


def test_ranking_takes_the_index_similarity_and_applies_the_bound() -> None:
    close, far = stored("close"), stored("far")
    query = SearchQuery(
        (1.0, 0.0, 0.0, 0.0), None, top_k=10, min_similarity=0.5, embedder=EMBEDDER.name
    )
    results = search.rank_matches(
        query,
        [(close.embedding_id, 0.75), (far.embedding_id, 0.25)],
        {p.embedding_id: p for p in (close, far)},
    )
    assert [(r.pattern.fingerprint, r.score.similarity) for r in results] == [("close", 0.75)]


def test_ranking_never_mixes_vectors_of_another_embedder() -> None:
    waiting = stored("waiting", embedder="another-embedder/4")
    query = SearchQuery(
        (1.0, 0.0, 0.0, 0.0), None, top_k=10, min_similarity=None, embedder=EMBEDDER.name
    )
    assert (
        search.rank_matches(query, [(waiting.embedding_id, 1.0)], {waiting.embedding_id: waiting})
        == []
    )
