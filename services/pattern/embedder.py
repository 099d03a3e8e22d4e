"""What an embedder is, and the dependency-free one: signed feature hashing of text and DDL.

`Embedder` is what the service needs from one (a name, a dimension, `embed`); the default is
the learned `embedder_wordllama.WordLlamaEmbedder`, chosen with `SENSEI_PATTERN_EMBEDDER`
(`embedders.embedder_named`). Feature hashing needs no model and no download: a text becomes
a bag of features (its lowercased identifier and keyword tokens, the parts of snake_case
identifiers,
adjacent-token bigrams and character trigrams of each token), each feature is hashed with
BLAKE2b to one coordinate and a sign, and the sum is L2-normalized. Equal texts give equal
vectors in every process and on every machine; texts that share identifiers, keywords and
spellings point the same way, so cosine similarity ranks them closer than unrelated texts.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

DEFAULT_DIMENSION = 256


# Identifiers (with `_` and `$`), numbers; quotes and punctuation only separate tokens.
_TOKEN = re.compile(r"[a-z_][a-z0-9_$]*|[0-9]+")
_HASH_PERSON = b"sensei-embed-v1"

# Relative weights of the feature kinds; whole tokens carry the most meaning.
_TOKEN_WEIGHT = 1.0
_PART_WEIGHT = 0.5
_BIGRAM_WEIGHT = 0.5
_TRIGRAM_WEIGHT = 0.25


class NothingToEmbed(ValueError):
    """The text holds no token (empty, or only punctuation and whitespace)."""


class Embedder(Protocol):
    """Turns text into a unit vector; equal texts give equal vectors in every process."""

    @property
    def name(self) -> str:
        """Identifies the model and its dimension; vectors of two names never mix."""
        ...

    @property
    def dimension(self) -> int:
        """Length of every vector."""
        ...

    def embed(self, text: str) -> tuple[float, ...]:
        """The unit-length embedding of `text`; raises NothingToEmbed when it has no token."""
        ...


@dataclass(frozen=True)
class FeatureHashingEmbedder:
    """Turns text or DDL into a unit vector of `dimension` floats, deterministically."""

    dimension: int = DEFAULT_DIMENSION

    def __post_init__(self) -> None:
        if self.dimension < 2:
            raise ValueError(f"embedding dimension must be at least 2, got {self.dimension}")

    @property
    def name(self) -> str:
        """Identifies the embedder and its dimension (shown by GetPatternIndex)."""
        return f"feature-hashing-v1/{self.dimension}"

    def embed(self, text: str) -> tuple[float, ...]:
        """The unit-length embedding of `text`; raises NothingToEmbed when it has no token."""
        sums = [0.0] * self.dimension
        for feature, weight in features_of(text):
            index, sign = self._slot(feature)
            sums[index] += sign * weight
        norm = math.sqrt(sum(value * value for value in sums))
        if norm == 0.0:
            # No token at all, or (vanishingly unlikely) every feature cancelled out.
            raise NothingToEmbed("text has nothing to embed: no identifier, keyword or number")
        return tuple(value / norm for value in sums)

    def _slot(self, feature: str) -> tuple[int, float]:
        digest = hashlib.blake2b(
            feature.encode("utf-8"), digest_size=8, person=_HASH_PERSON
        ).digest()
        number = int.from_bytes(digest, "big")
        # Low bit picks the sign, the rest the coordinate, so the two are independent.
        sign = 1.0 if number & 1 else -1.0
        return (number >> 1) % self.dimension, sign


def tokens_of(text: str) -> list[str]:
    """The lowercased identifier, keyword and number tokens of `text`, in order."""
    return _TOKEN.findall(text.lower())


def features_of(text: str) -> Iterator[tuple[str, float]]:
    """Yields each weighted feature of `text`; a feature may repeat (it then counts again)."""
    tokens = tokens_of(text)
    for token in tokens:
        yield f"t:{token}", _TOKEN_WEIGHT
        parts = [part for part in token.split("_") if part]
        if len(parts) > 1:
            for part in parts:
                yield f"p:{part}", _PART_WEIGHT
        padded = f"^{token}$"
        for start in range(len(padded) - 2):
            yield f"c:{padded[start : start + 3]}", _TRIGRAM_WEIGHT
    for first, second in itertools.pairwise(tokens):
        yield f"b:{first} {second}", _BIGRAM_WEIGHT
