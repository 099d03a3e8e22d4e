"""How search results are ranked: similarity, weighted by how well a pattern has proven itself.

A pattern's proof is the Wilson score lower bound (z = 1.96, a 95% interval) of its success
rate: the success rate the platform can be fairly sure the pattern reaches, given how few or
many outcomes were recorded. 0 outcomes → 0; 1 of 1 → 0.21; 10 of 10 → 0.72; 95 of 100 → 0.89.

    rank_score = max(similarity, 0) × ((1 − w) + w × lower_bound),   w = SUCCESS_WEIGHT = 0.5

Similarity counts for half of the score, proven success earns the other half: at equal
similarity a proven pattern always outranks an unproven one, and an unproven pattern needs
to be clearly more similar to beat a proven one. Negative similarities (pointing away from
the query) rank as 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeVar

WILSON_Z = 1.96
SUCCESS_WEIGHT = 0.5

T = TypeVar("T")


@dataclass(frozen=True)
class PatternScore:
    """Everything SearchPatterns reports about one match, besides the pattern itself."""

    similarity: float
    success_rate: float
    success_lower_bound: float
    rank_score: float


def success_rate(success_count: int, failure_count: int) -> float:
    """successes / (successes + failures); 0 when nothing was recorded."""
    total = success_count + failure_count
    return success_count / total if total else 0.0


def wilson_lower_bound(success_count: int, failure_count: int, z: float = WILSON_Z) -> float:
    """Lower bound of the Wilson score interval of the success rate; 0 with no outcomes."""
    if success_count < 0 or failure_count < 0:
        raise ValueError("outcome counts cannot be negative")
    n = success_count + failure_count
    if n == 0:
        return 0.0
    p = success_count / n
    z2 = z * z
    centre = p + z2 / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    # Rounding can leave a hair below 0 when there is no success.
    return max(0.0, (centre - spread) / (1 + z2 / n))


def rank_score(
    similarity: float, success_lower_bound: float, success_weight: float = SUCCESS_WEIGHT
) -> float:
    """max(similarity, 0) × ((1 − w) + w × success_lower_bound); see the module docstring."""
    return max(similarity, 0.0) * ((1.0 - success_weight) + success_weight * success_lower_bound)


def score(similarity: float, success_count: int, failure_count: int) -> PatternScore:
    """The similarity, success rate, Wilson lower bound and rank score of one match."""
    lower_bound = wilson_lower_bound(success_count, failure_count)
    return PatternScore(
        similarity=similarity,
        success_rate=success_rate(success_count, failure_count),
        success_lower_bound=lower_bound,
        rank_score=rank_score(similarity, lower_bound),
    )


def best_first(scored: Iterable[tuple[T, PatternScore]]) -> list[tuple[T, PatternScore]]:
    """Orders matches by rank score, then similarity, both descending (stable otherwise)."""
    return sorted(scored, key=lambda item: (item[1].rank_score, item[1].similarity), reverse=True)
