"""The default embedder: WordLlama's packaged model, offline, and the embedder setting."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from services.pattern.embedder import FeatureHashingEmbedder, NothingToEmbed
from services.pattern.embedder_wordllama import WordLlamaEmbedder
from services.pattern.embedders import DEFAULT_EMBEDDER, embedder_named

REPO_ROOT = Path(__file__).resolve().parents[2]
TEXT = "Copy a large table in chunks ordered by primary key"


@pytest.fixture(scope="module")
def embedder() -> WordLlamaEmbedder:
    return WordLlamaEmbedder()


def cosine(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_default_embedder_is_wordllama_of_256_dimensions() -> None:
    chosen = embedder_named(DEFAULT_EMBEDDER)
    assert (chosen.name, chosen.dimension) == ("wordllama-l2_supercat/256", 256)


def test_feature_hashing_stays_selectable() -> None:
    assert isinstance(embedder_named("feature-hashing", 64), FeatureHashingEmbedder)


@pytest.mark.parametrize(("kind", "dimension"), [("bert", 256), ("wordllama", 100)])
def test_unknown_kinds_and_dimensions_are_refused(kind: str, dimension: int) -> None:
    with pytest.raises(ValueError):
        embedder_named(kind, dimension)


def test_vector_has_unit_length(embedder: WordLlamaEmbedder) -> None:
    vector = embedder.embed(TEXT)
    assert len(vector) == 256
    assert math.isclose(math.sqrt(sum(v * v for v in vector)), 1.0, rel_tol=1e-5)


def test_truncated_dimensions_are_unit_vectors_too() -> None:
    vector = WordLlamaEmbedder(64).embed(TEXT)
    assert len(vector) == 64
    assert math.isclose(math.sqrt(sum(v * v for v in vector)), 1.0, rel_tol=1e-5)


def test_text_without_words_has_nothing_to_embed(embedder: WordLlamaEmbedder) -> None:
    with pytest.raises(NothingToEmbed):
        embedder.embed("  ;; ")


def test_meaning_is_closer_than_shared_nothing(embedder: WordLlamaEmbedder) -> None:
    query = embedder.embed("move millions of records piece by piece")
    related = embedder.embed(TEXT)
    unrelated = embedder.embed("Oracle treats the empty string as NULL")
    assert cosine(query, related) > cosine(query, unrelated)


def test_loads_offline_without_a_cache_or_network() -> None:
    # A fresh HOME (no ~/.cache/wordllama), hub access off, and any proxy pointing nowhere:
    # the model and tokenizer must come from the installed package.
    code = (
        "from services.pattern.embedder_wordllama import WordLlamaEmbedder;"
        f"print(repr(WordLlamaEmbedder().embed({TEXT!r})[:3]))"
    )
    env = {
        **os.environ,
        "HOME": "/nonexistent",
        "HF_HUB_OFFLINE": "1",
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9",
        "PYTHONPATH": str(REPO_ROOT),
    }
    output = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert output.strip() == repr(WordLlamaEmbedder().embed(TEXT)[:3])
