"""The pgvector index against a real PostgreSQL with pgvector.

One database for the module (creating one per test costs more than the tests); each test
gets a schema of its own, which is how the index separates its tables anyway.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from services.pattern.index import VectorIndex, embedding_id_for
from services.pattern.index_pgvector import PgvectorIndex, vector_literal, version_tuple
from tests.conftest import RUN_ID, Cluster

from .index_contract import DIMENSION, EMBEDDER, IndexContract, IndexFactory, entry


@pytest.fixture(scope="module")
async def pool(postgres: Cluster) -> AsyncIterator[asyncpg.Pool[asyncpg.Record]]:
    database = f"sensei_t_{RUN_ID}_pgvector_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(postgres.dsn("postgres"))
    try:
        await admin.execute(f'CREATE DATABASE "{database}"')
        setup = await asyncpg.connect(postgres.dsn(database))
        try:
            # As the service's migration leaves it: pgvector in the service's schema.
            await setup.execute("CREATE SCHEMA pattern; CREATE EXTENSION vector SCHEMA pattern")
        finally:
            await setup.close()
        # The service's own schema first, as the pattern service connects.
        async with asyncpg.create_pool(
            postgres.dsn(database),
            min_size=1,
            max_size=4,
            server_settings={"search_path": "pattern"},
        ) as pool:
            yield pool
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
def schema() -> str:
    """A schema of this test only."""
    return f"pattern_{uuid.uuid4().hex[:12]}"


class TestPgvectorIndex(IndexContract):
    """Every VectorIndex behaviour, on pgvector."""

    @pytest.fixture
    def index_factory(self, pool: asyncpg.Pool[asyncpg.Record], schema: str) -> IndexFactory:
        async def make(dimension: int, embedder: str = EMBEDDER) -> VectorIndex:
            return PgvectorIndex(pool, schema=schema, dimension=dimension, embedder=embedder)

        return make

    async def test_backend_is_pgvector(self, index: VectorIndex) -> None:
        assert index.backend == "pgvector"

    async def test_filtered_search_finds_the_type_among_many_closer_decoys(
        self, index: VectorIndex
    ) -> None:
        # Enough closer decoys to fill HNSW's default candidate list (ef_search 40) many times.
        decoys = [entry(f"decoy-{i}", (1.0, i / 1000, 0.0, 0.0), "decoy") for i in range(300)]
        wanted = [entry(f"wanted-{i}", (0.0, 0.0, 1.0, float(i)), "wanted") for i in range(3)]
        await index.upsert(decoys + wanted)
        matches = await index.search((1.0, 0.0, 0.0, 0.0), top_k=3, pattern_type="wanted")
        assert {m.embedding_id for m in matches} == {w.embedding_id for w in wanted}

    async def test_table_lives_in_the_service_schema(
        self, index: VectorIndex, pool: asyncpg.Pool[asyncpg.Record], schema: str
    ) -> None:
        await index.upsert([entry("here", (1.0, 0.0, 0.0, 0.0))])
        stored = await pool.fetchval(
            f"SELECT count(*) FROM {schema}.pattern_vectors WHERE embedding_id = $1",
            embedding_id_for("here"),
        )
        assert stored == 1

    async def test_table_has_an_hnsw_cosine_index(
        self, index: VectorIndex, pool: asyncpg.Pool[asyncpg.Record], schema: str
    ) -> None:
        indexes = await pool.fetch(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = $1"
            " AND tablename = 'pattern_vectors'",
            schema,
        )
        assert any(
            "hnsw" in row["indexdef"] and "vector_cosine_ops" in row["indexdef"] for row in indexes
        )

    async def test_index_in_another_schema_is_separate(
        self, index: VectorIndex, pool: asyncpg.Pool[asyncpg.Record]
    ) -> None:
        other = PgvectorIndex(pool, schema=f"other_{uuid.uuid4().hex[:12]}", dimension=DIMENSION)
        await other.ensure_ready()
        await index.upsert([entry("mine", (1.0, 0.0, 0.0, 0.0))])
        assert await other.count() == 0


def test_vector_literal_is_pgvector_text_form() -> None:
    assert vector_literal((0.5, -0.25, 1e-7)) == "[0.5,-0.25,1e-07]"


def test_version_tuple_reads_numeric_parts() -> None:
    assert version_tuple("0.8.1") == (0, 8, 1) and version_tuple("0.10.0-dev") == (0, 10, 0)


@pytest.mark.parametrize(
    ("schema", "dimension"),
    [("Pattern", 4), ("pattern;drop", 4), ("pattern", 1), ("pattern", 2001)],
)
def test_bad_settings_are_refused(schema: str, dimension: int) -> None:
    with pytest.raises(ValueError):
        PgvectorIndex(None, schema=schema, dimension=dimension)  # type: ignore[arg-type]
