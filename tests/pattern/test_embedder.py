"""The built-in feature-hashing embedder."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from services.pattern.embedder import DEFAULT_DIMENSION, FeatureHashingEmbedder, NothingToEmbed

REPO_ROOT = Path(__file__).resolve().parents[2]
DDL = "CREATE TABLE customers (customer_id bigint PRIMARY KEY, email text NOT NULL)"


def cosine(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_default_dimension_is_256() -> None:
    assert len(FeatureHashingEmbedder().embed(DDL)) == DEFAULT_DIMENSION == 256


def test_vector_has_the_configured_dimension() -> None:
    assert len(FeatureHashingEmbedder(dimension=64).embed(DDL)) == 64


def test_vector_has_unit_length() -> None:
    vector = FeatureHashingEmbedder().embed(DDL)
    assert math.isclose(math.sqrt(sum(v * v for v in vector)), 1.0, rel_tol=1e-12)


def test_same_text_gives_the_same_vector_in_another_process() -> None:
    code = (
        "from services.pattern.embedder import FeatureHashingEmbedder;"
        f"print(repr(FeatureHashingEmbedder().embed({DDL!r})))"
    )
    # A different hash seed would change anything built on Python's hash().
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(REPO_ROOT)}
    output = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert output.strip() == repr(FeatureHashingEmbedder().embed(DDL))


def test_case_quotes_and_whitespace_do_not_change_the_vector() -> None:
    embedder = FeatureHashingEmbedder()
    messy = 'create   table "CUSTOMERS" (\n  Customer_Id BIGINT primary key, EMAIL text not null)'
    assert embedder.embed(messy) == embedder.embed(DDL)


def test_similar_ddl_is_closer_than_unrelated_ddl() -> None:
    embedder = FeatureHashingEmbedder()
    query = embedder.embed("ALTER TABLE customers RENAME COLUMN email TO email_address")
    similar = embedder.embed("ALTER TABLE clients RENAME COLUMN e_mail TO email_address")
    unrelated = embedder.embed(
        "CREATE INDEX orders_created_at_idx ON orders USING brin (created_at)"
    )
    assert cosine(query, similar) > cosine(query, unrelated) + 0.2


def test_shared_identifier_parts_make_texts_closer() -> None:
    embedder = FeatureHashingEmbedder()
    query = embedder.embed("customer_id")
    sharing_a_part = embedder.embed("customer_name")
    sharing_nothing = embedder.embed("order_total")
    assert cosine(query, sharing_a_part) > cosine(query, sharing_nothing)


def test_dimensions_spread_features_differently() -> None:
    assert FeatureHashingEmbedder(dimension=128).embed(DDL)[:64] != FeatureHashingEmbedder(
        dimension=64
    ).embed(DDL)


@pytest.mark.parametrize("text", ["", "   ", "(); -- !!"])
def test_text_without_tokens_cannot_be_embedded(text: str) -> None:
    with pytest.raises(NothingToEmbed):
        FeatureHashingEmbedder().embed(text)


def test_dimension_below_two_is_rejected() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        FeatureHashingEmbedder(dimension=1)


def test_name_carries_the_dimension() -> None:
    assert FeatureHashingEmbedder(dimension=64).name == "feature-hashing-v1/64"
