"""How well SearchPatterns finds the intended starter pattern for a paraphrased question.

`benchmarks/data/pattern_queries.json` holds questions written for this purpose, each with
the fingerprint of the catalog pattern it means (services/pattern/catalog/starter.json). No
question shares a content word with its pattern (`shared_content_words` checks it; the
test suite runs the check), so a hit shows the embedder matched meaning, not spelling.
`hit_rates` runs every question through a search function and counts top-1 and top-3 hits.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

QUERIES = Path(__file__).with_name("data") / "pattern_queries.json"

# Function words: sharing them says nothing about meaning.
_STOP_WORDS_TEXT = """a an the and or of to in on for with by as at from into onto is are
    be been being
    was were it its this that these those so not no nor than then there their them they you
    your we our can cannot could should would will may might must do does did done have has
    had each every all any some such other another more most less very just only also too up
    down out over under again once here when where which who whom what why how if else while
    about after before between both same own per via vs etc i me my he she his her one new
    old get got make made use used using need needs want without s t"""
STOP_WORDS = frozenset(_STOP_WORDS_TEXT.split())


@dataclass(frozen=True)
class LabelledQuery:
    """A question and the fingerprint of the pattern it means."""

    query: str
    expect: str


@dataclass(frozen=True)
class HitRates:
    """Share of questions whose pattern came first, and among the first three."""

    top1: float
    top3: float
    total: int
    misses: tuple[LabelledQuery, ...]


def labelled_queries(path: Path = QUERIES) -> list[LabelledQuery]:
    """The labelled questions."""
    document = json.loads(path.read_text(encoding="utf-8"))
    return [LabelledQuery(q["query"], q["expect"]) for q in document["queries"]]


def content_words(text: str) -> set[str]:
    """Lowercased words of `text` without function words, crudely stemmed."""
    return {
        _stem(word) for word in re.findall(r"[a-z0-9]+", text.lower()) if word not in STOP_WORDS
    }


def shared_content_words(query: str, pattern_text: str) -> set[str]:
    """The content words a question and a pattern's text have in common."""
    return content_words(query) & content_words(pattern_text)


async def hit_rates(
    queries: Sequence[LabelledQuery], search: Callable[[str], Awaitable[Sequence[str]]]
) -> HitRates:
    """Runs each question through `search` (text → fingerprints, best first)."""
    top1 = top3 = 0
    misses: list[LabelledQuery] = []
    for labelled in queries:
        found = list(await search(labelled.query))
        top1 += found[:1] == [labelled.expect]
        if labelled.expect in found[:3]:
            top3 += 1
        else:
            misses.append(labelled)
    total = len(queries)
    return HitRates(top1 / total, top3 / total, total, tuple(misses))


def _stem(word: str) -> str:
    for suffix in ("ies", "es", "s", "ing", "ed", "ly"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return word
