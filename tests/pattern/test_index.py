"""Embedding ids and vector validation shared by both index backends."""

from __future__ import annotations

import uuid

import pytest

from services.pattern.index import check_vector, embedding_id_for, vector_problem


def test_embedding_id_never_changes_for_a_fingerprint() -> None:
    # Pinned: a different id would orphan every vector already indexed.
    assert embedding_id_for("fp-1") == uuid.UUID("7ede2b35-cc7d-5492-bff2-b21f77693840")


def test_embedding_id_is_a_version_5_uuid() -> None:
    assert embedding_id_for("sha256:abc").version == 5


def test_different_fingerprints_get_different_embedding_ids() -> None:
    assert embedding_id_for("fp-1") != embedding_id_for("fp-2")


def test_vector_of_the_right_dimension_has_no_problem() -> None:
    assert vector_problem([0.0, 1.0, 0.5], 3) is None


@pytest.mark.parametrize(
    ("vector", "message"),
    [
        ([1.0, 0.0], "must have 3 components, has 2"),
        ([1.0, float("nan"), 0.0], "finite"),
        ([1.0, float("inf"), 0.0], "finite"),
        ([0.0, 0.0, 0.0], "all zeros"),
    ],
)
def test_unindexable_vectors_are_described(vector: list[float], message: str) -> None:
    problem = vector_problem(vector, 3)
    assert problem is not None and message in problem


def test_check_vector_raises_on_a_problem() -> None:
    with pytest.raises(ValueError, match="all zeros"):
        check_vector([0.0, 0.0], 2)
