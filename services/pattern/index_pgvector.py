"""The embedded default vector index: pgvector in the pattern service's own schema.

One table, `{schema}.pattern_vectors(embedding_id uuid PK, pattern_type text, embedding
vector(dim))`, with an HNSW index over cosine distance; the table's comment names the
embedder of its vectors. A search's similarity is computed by the index query itself (`1 -
(embedding <=> query)`), nothing is scored again in Python. Vectors cross the wire in
pgvector's text form (`[0.1,0.2]`) cast in SQL, so any asyncpg pool works as is: no per-
connection codec and no extra dependency. The extension's types and operators are schema-
qualified, so the service's search_path does not matter.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from services.pattern.embedder import DEFAULT_DIMENSION
from services.pattern.index import (
    Backend,
    IndexDimensionMismatch,
    IndexEmbedderMismatch,
    IndexEntry,
    IndexMatch,
    check_vector,
)

# pgvector's HNSW indexes `vector` columns of at most 2000 dimensions.
MAX_DIMENSION = 2000
# Serializes DDL of concurrent replicas (arbitrary, fixed, unique to this table's setup).
_DDL_LOCK_KEY = 0x5E45E1_0001
# The HNSW candidate list (at least the rows asked for): pgvector's default (40) found
# about half of the true top 10 on 5,000 random vectors (make bench); see DEFAULT_EF_SEARCH.
DEFAULT_EF_SEARCH = 200
_MAX_EF_SEARCH = 1000
# Iterative index scans (which keep filtered searches from coming back short) need 0.8.0.
_ITERATIVE_SCAN_VERSION = (0, 8, 0)
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,62}")


class PgvectorIndex:
    """VectorIndex over pgvector, in `schema` of the database behind `pool`."""

    def __init__(
        self,
        pool: asyncpg.Pool[asyncpg.Record],
        *,
        schema: str = "pattern",
        table: str = "pattern_vectors",
        dimension: int = DEFAULT_DIMENSION,
        embedder: str = "unspecified",
        ef_search: int = DEFAULT_EF_SEARCH,
    ) -> None:
        for identifier in (schema, table):
            if not _IDENTIFIER.fullmatch(identifier):
                raise ValueError(f"not a plain lowercase SQL identifier: {identifier!r}")
        if not 2 <= dimension <= MAX_DIMENSION:
            raise ValueError(f"pgvector index dimension must be 2..{MAX_DIMENSION}: {dimension}")
        self._pool = pool
        self._schema = schema
        self._table = table
        self._dimension = dimension
        self._embedder = embedder
        self._ef_search = ef_search
        self._extension_schema: str | None = None
        self._iterative_scan = False
        self._ready = False

    @property
    def backend(self) -> Backend:
        """Always "pgvector"."""
        return "pgvector"

    @property
    def dimension(self) -> int:
        """Length of every vector in the index."""
        return self._dimension

    @property
    def embedder(self) -> str:
        """Name of the embedder whose vectors the table holds (its comment)."""
        return self._embedder

    async def ensure_ready(self) -> None:
        """Creates the extension, schema, table and indexes if absent; checks the dimension.

        Once it succeeded, later calls return at once (searches call it every time).
        """
        if self._ready:
            return
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _DDL_LOCK_KEY)
            await self._load_extension(conn)
            found = await conn.fetchval(
                "SELECT a.atttypmod FROM pg_catalog.pg_attribute a"
                " WHERE a.attrelid = to_regclass($1) AND a.attname = 'embedding'",
                f"{self._schema}.{self._table}",
            )
            if found is None:
                await self._create_table(conn)
            elif found != self._dimension:
                raise IndexDimensionMismatch(expected=self._dimension, found=found)
            else:
                await self._check_embedder(conn)
        self._ready = True

    async def upsert(self, entries: Sequence[IndexEntry]) -> None:
        """Inserts or replaces the entries in one statement (the last of duplicate ids wins)."""
        latest = {entry.embedding_id: entry for entry in entries}
        if not latest:
            return
        for entry in latest.values():
            check_vector(entry.vector, self._dimension)
        vector_type = self._qualified("vector")
        await self._pool.execute(
            f"INSERT INTO {self._relation} (embedding_id, pattern_type, embedding)"
            f" SELECT id, kind, vec::{vector_type}"
            " FROM unnest($1::uuid[], $2::text[], $3::text[]) AS batch(id, kind, vec)"
            " ON CONFLICT (embedding_id) DO UPDATE"
            " SET pattern_type = EXCLUDED.pattern_type, embedding = EXCLUDED.embedding",
            list(latest),
            [entry.pattern_type for entry in latest.values()],
            [vector_literal(entry.vector) for entry in latest.values()],
        )

    async def delete(self, embedding_ids: Sequence[uuid.UUID]) -> None:
        """Removes the entries with these ids; absent ids are ignored."""
        if not embedding_ids:
            return
        await self._pool.execute(
            f"DELETE FROM {self._relation} WHERE embedding_id = ANY($1::uuid[])",
            list(embedding_ids),
        )

    async def search(
        self, vector: Sequence[float], top_k: int, pattern_type: str | None = None
    ) -> list[IndexMatch]:
        """The `top_k` nearest entries by cosine distance (HNSW), best first."""
        check_vector(vector, self._dimension)
        if top_k <= 0:
            return []
        vector_type = self._qualified("vector")
        distance = f"embedding OPERATOR({self._qualified('<=>')}) $1::text::{vector_type}"
        where = "WHERE pattern_type = $3" if pattern_type is not None else ""
        query = (
            f"SELECT embedding_id, 1 - ({distance}) AS similarity FROM {self._relation}"
            f" {where} ORDER BY {distance} LIMIT $2"
        )
        args: list[object] = [vector_literal(vector), top_k]
        if pattern_type is not None:
            args.append(pattern_type)
        ef_search = min(max(top_k, self._ef_search), _MAX_EF_SEARCH)
        # One round trip for the settings (integers and a constant: nothing to quote).
        settings = f"SET LOCAL hnsw.ef_search = {int(ef_search)}"
        if self._iterative_scan:
            # Keeps scanning the graph until enough rows pass the type filter.
            settings += "; SET LOCAL hnsw.iterative_scan = strict_order"
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(settings)
            rows = await conn.fetch(query, *args)
        return [IndexMatch(row["embedding_id"], float(row["similarity"])) for row in rows]

    async def count(self) -> int:
        """Number of vectors in the table."""
        total = await self._pool.fetchval(f"SELECT count(*) FROM {self._relation}")
        return int(total)

    async def reset(self) -> None:
        """Drops and recreates the table with the configured dimension."""
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _DDL_LOCK_KEY)
            await self._load_extension(conn)
            await conn.execute(f"DROP TABLE IF EXISTS {self._relation}")
            await self._create_table(conn)
        self._ready = True

    async def close(self) -> None:
        """Nothing to release: the pool belongs to the caller."""

    @property
    def _relation(self) -> str:
        return f'"{self._schema}"."{self._table}"'

    def _qualified(self, name: str) -> str:
        if self._extension_schema is None:
            raise RuntimeError("PgvectorIndex.ensure_ready() must be awaited first")
        return f'"{self._extension_schema}".{name}'

    async def _load_extension(self, conn: PoolConnectionProxy[asyncpg.Record]) -> None:
        # The schema first: with search_path = the service schema, the extension lands there.
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self._schema}"')
        await conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        row = await conn.fetchrow(
            "SELECT n.nspname, e.extversion FROM pg_catalog.pg_extension e"
            " JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace"
            " WHERE e.extname = 'vector'"
        )
        if row is None:
            raise RuntimeError("extension vector missing right after CREATE EXTENSION")
        self._extension_schema = row["nspname"]
        self._iterative_scan = version_tuple(row["extversion"]) >= _ITERATIVE_SCAN_VERSION

    async def _create_table(self, conn: PoolConnectionProxy[asyncpg.Record]) -> None:
        await conn.execute(
            f"CREATE TABLE {self._relation} ("
            " embedding_id uuid PRIMARY KEY,"
            " pattern_type text NOT NULL,"
            f" embedding {self._qualified('vector')}({self._dimension}) NOT NULL)"
        )
        await conn.execute(
            f'CREATE INDEX "{self._table}_embedding_hnsw" ON {self._relation}'
            f" USING hnsw (embedding {self._qualified('vector_cosine_ops')})"
        )
        await conn.execute(
            f'CREATE INDEX "{self._table}_pattern_type" ON {self._relation} (pattern_type)'
        )
        await self._record_embedder(conn)

    async def _check_embedder(self, conn: PoolConnectionProxy[asyncpg.Record]) -> None:
        recorded = await conn.fetchval(
            "SELECT obj_description(to_regclass($1), 'pg_class')", f"{self._schema}.{self._table}"
        )
        if recorded == self._embedder:
            return
        if await conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM {self._relation})"):
            raise IndexEmbedderMismatch(expected=self._embedder, found=recorded)
        await self._record_embedder(conn)  # empty: nothing to mix, adopt the configured one

    async def _record_embedder(self, conn: PoolConnectionProxy[asyncpg.Record]) -> None:
        # COMMENT takes no parameters: format() quotes the name as a literal.
        statement = await conn.fetchval(
            "SELECT format('COMMENT ON TABLE %s IS %L', $1::text, $2::text)",
            self._relation,
            self._embedder,
        )
        await conn.execute(statement)


def vector_literal(vector: Sequence[float]) -> str:
    """pgvector's text form of a vector, e.g. `[0.5,-0.25]` (repr keeps every float digit)."""
    return "[" + ",".join(repr(float(value)) for value in vector) + "]"


def version_tuple(version: str) -> tuple[int, ...]:
    """`"0.8.1"` → `(0, 8, 1)`; non-numeric suffixes are ignored."""
    parts: list[int] = []
    for piece in version.split("."):
        digits = re.match(r"\d+", piece)
        if digits is None:
            break
        parts.append(int(digits.group()))
    return tuple(parts)
