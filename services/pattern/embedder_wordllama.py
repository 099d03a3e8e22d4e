"""The default embedder: WordLlama's static token embeddings, shipped inside its wheel.

`wordllama` carries the `l2_supercat` model (256 dimensions, 16 MB of weights) and its
tokenizer in the package itself, so nothing is downloaded, on any machine: the loader is
pointed at the installed package as its cache directory (it looks for the tokenizer under
`tokenizers/` there and the weights under `weights/`) with downloads turned off. A text is
tokenized, its token vectors averaged and L2-normalized; about 0.1 ms a sentence on one
core. Smaller dimensions (64, 128) truncate the model's vectors, as WordLlama's
matryoshka training allows. Chosen by measurement over the starter catalog's paraphrased
queries (`make bench`, pattern-quality: top-3 0.51 against feature hashing's 0.12).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

from services.pattern.embedder import NothingToEmbed, tokens_of

MODEL = "l2_supercat"
MODEL_DIMENSION = 256
DIMENSIONS = (64, 128, 256)


class WordLlamaEmbedder:
    """Embeds text with WordLlama's packaged model; loads it once, at construction."""

    def __init__(self, dimension: int = MODEL_DIMENSION) -> None:
        if dimension not in DIMENSIONS:
            raise ValueError(
                f"the wordllama embedder gives {', '.join(map(str, DIMENSIONS))} dimensions,"
                f" not {dimension}"
            )
        self._dimension = dimension
        self._model = _load_model(dimension)

    @property
    def name(self) -> str:
        """Identifies the model and its dimension (shown by GetPatternIndex)."""
        return f"wordllama-{MODEL}/{self._dimension}"

    @property
    def dimension(self) -> int:
        """Length of every vector."""
        return self._dimension

    def embed(self, text: str) -> tuple[float, ...]:
        """The unit-length embedding of `text`; raises NothingToEmbed when it has no token."""
        if not tokens_of(text):
            raise NothingToEmbed("text has nothing to embed: no word or number")
        vector = self._model.embed(text, norm=True)[0]
        values = tuple(float(value) for value in vector)
        if not all(math.isfinite(value) for value in values):
            raise NothingToEmbed("text has nothing to embed: no known token")
        return values


def _load_model(dimension: int) -> Any:
    # Importing wordllama.inference calls logging.basicConfig(level=INFO); with the
    # service's logging already set up that is a no-op, otherwise keep the root as it was.
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    import wordllama
    from wordllama import WordLlama

    if not handlers:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        root.setLevel(level)
    package = Path(wordllama.__file__).parent
    return WordLlama.load(
        MODEL,
        cache_dir=package,
        dim=MODEL_DIMENSION,
        trunc_dim=None if dimension == MODEL_DIMENSION else dimension,
        disable_download=True,
    )
