"""Wilson lower bound, success rate and the combined rank score."""

from __future__ import annotations

import pytest

from services.pattern.domain.ranking import (
    best_first,
    rank_score,
    score,
    success_rate,
    wilson_lower_bound,
)


@pytest.mark.parametrize(
    ("successes", "failures", "expected"),
    [
        (0, 0, 0.0),
        (1, 0, 0.2065),
        (10, 0, 0.7225),
        (5, 5, 0.2366),
        (95, 5, 0.8882),
        (0, 10, 0.0),
    ],
)
def test_wilson_lower_bound_matches_known_values(
    successes: int, failures: int, expected: float
) -> None:
    assert wilson_lower_bound(successes, failures) == pytest.approx(expected, abs=1e-4)


def test_more_evidence_at_the_same_rate_raises_the_bound() -> None:
    assert wilson_lower_bound(4, 1) < wilson_lower_bound(40, 10) < wilson_lower_bound(400, 100)


def test_negative_counts_are_rejected() -> None:
    with pytest.raises(ValueError, match="negative"):
        wilson_lower_bound(-1, 3)


def test_success_rate_is_successes_over_total() -> None:
    assert success_rate(3, 1) == 0.75


def test_success_rate_is_zero_without_outcomes() -> None:
    assert success_rate(0, 0) == 0.0


def test_proven_pattern_outranks_unproven_at_equal_similarity() -> None:
    proven = score(0.8, success_count=20, failure_count=1)
    unproven = score(0.8, success_count=0, failure_count=0)
    assert proven.rank_score > unproven.rank_score


def test_much_more_similar_unproven_pattern_beats_a_barely_similar_proven_one() -> None:
    assert score(0.9, 0, 0).rank_score > score(0.3, 100, 0).rank_score


def test_rank_score_is_half_similarity_without_proof_and_full_with_certainty() -> None:
    assert rank_score(0.8, 0.0) == pytest.approx(0.4)
    assert rank_score(0.8, 1.0) == pytest.approx(0.8)


def test_negative_similarity_ranks_as_zero() -> None:
    assert rank_score(-0.5, 0.9) == 0.0


def test_score_reports_similarity_rate_and_bound() -> None:
    result = score(0.7, success_count=5, failure_count=5)
    assert (result.similarity, result.success_rate) == (0.7, 0.5)
    assert result.success_lower_bound == pytest.approx(0.2366, abs=1e-4)


def test_best_first_orders_by_rank_score_then_similarity() -> None:
    ranked = best_first(
        [
            ("unproven", score(0.8, 0, 0)),
            ("proven", score(0.8, 30, 0)),
            ("zero-similarity", score(0.0, 0, 0)),
            ("negative-similarity", score(-0.2, 0, 0)),
        ]
    )
    assert [name for name, _ in ranked][:2] == ["proven", "unproven"]
    assert [name for name, _ in ranked][2:] == ["zero-similarity", "negative-similarity"]
