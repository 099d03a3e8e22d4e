"""The built-in embedders by the name `SENSEI_PATTERN_EMBEDDER` gives them."""

from __future__ import annotations

from services.pattern.embedder import DEFAULT_DIMENSION, Embedder, FeatureHashingEmbedder
from services.pattern.embedder_wordllama import WordLlamaEmbedder

FEATURE_HASHING = "feature-hashing"
WORDLLAMA = "wordllama"
DEFAULT_EMBEDDER = WORDLLAMA
EMBEDDER_KINDS = (WORDLLAMA, FEATURE_HASHING)


def embedder_named(kind: str, dimension: int = DEFAULT_DIMENSION) -> Embedder:
    """The embedder `SENSEI_PATTERN_EMBEDDER` names; ValueError for an unknown kind or a
    dimension the kind cannot produce."""
    if kind == FEATURE_HASHING:
        return FeatureHashingEmbedder(dimension)
    if kind == WORDLLAMA:
        return WordLlamaEmbedder(dimension)
    raise ValueError(f"unknown embedder {kind!r}: use one of {', '.join(EMBEDDER_KINDS)}")
