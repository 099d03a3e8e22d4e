"""The vector index at scale, and search quality: `make bench` lines for issue 15.

Scale (index level, the service's own `PgvectorIndex` and its query): N random unit
vectors of 256 dimensions upserted in batches of 1,000 (the HNSW graph grows with them;
that is the build time), then, per `hnsw.ef_search` candidate list, recall@10 against an
exact scan and the latency and throughput of 4 concurrent searches, next to 4 concurrent
exact brute-force scans (the same ORDER BY with index scans off). Index memory is
`pg_relation_size` of the HNSW index. Standalone: `python -m benchmarks.pattern_scale
--sizes 5000,100000` starts an embedded PostgreSQL of its own.

Quality: top-1 and top-3 hit rates of the labelled paraphrases (benchmarks/search_quality)
for each built-in embedder, ranked by exact cosine over the starter catalog.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import numpy as np

from benchmarks.bench import Bench
from benchmarks.report import Line
from benchmarks.search_quality import hit_rates, labelled_queries
from services.pattern import catalog
from services.pattern.embedder import Embedder
from services.pattern.embedders import EMBEDDER_KINDS, embedder_named
from services.pattern.index import IndexEntry
from services.pattern.index_pgvector import PgvectorIndex, vector_literal

DIMENSION = 256
CONCURRENCY = 4
EF_SEARCH = (40, 100, 200)
RECALL_QUERIES = 200


@dataclass(frozen=True)
class Load:
    """Latencies and throughput of one concurrent run."""

    rate: float
    p50_ms: float
    p99_ms: float


async def concurrent_load(call: Callable[[int], Awaitable[object]], seconds: float) -> Load:
    """Runs `call(i)` in CONCURRENCY loops for `seconds`; rate and latency percentiles."""
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def loop(worker: int) -> None:
        i = worker
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            await call(i)
            latencies.append(time.perf_counter() - start)
            i += CONCURRENCY

    started = time.perf_counter()
    await asyncio.gather(*(loop(w) for w in range(CONCURRENCY)))
    elapsed = time.perf_counter() - started
    ordered = np.sort(np.array(latencies)) * 1000
    return Load(
        len(latencies) / elapsed,
        float(np.percentile(ordered, 50)),
        float(np.percentile(ordered, 99)),
    )


def unit_vectors(count: int, seed: int) -> np.ndarray:
    """`count` random unit vectors (float32, DIMENSION wide)."""
    vectors = np.random.default_rng(seed).standard_normal((count, DIMENSION)).astype(np.float32)
    unit: np.ndarray = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return unit


async def scale_lines(dsn: str, size: int, seconds: float) -> list[Line]:
    """Build, memory, recall and load lines for an index of `size` vectors."""
    group = f"pattern index at {size:,}"
    schema = f"bench_scale_{uuid.uuid4().hex[:8]}"
    async with asyncpg.create_pool(dsn, min_size=CONCURRENCY, max_size=CONCURRENCY + 1) as pool:
        index = PgvectorIndex(pool, schema=schema, dimension=DIMENSION, embedder="bench")
        await index.reset()
        vectors = unit_vectors(size, seed=size)
        started = time.perf_counter()
        for start in range(0, size, 1000):
            await index.upsert(
                [
                    IndexEntry(uuid.UUID(int=i + 1), tuple(vectors[i].tolist()), "bench", str(i))
                    for i in range(start, min(size, start + 1000))
                ]
            )
        build = time.perf_counter() - started
        index_bytes = await pool.fetchval(
            "SELECT pg_relation_size(to_regclass($1))", f"{schema}.pattern_vectors_embedding_hnsw"
        )
        table_bytes = await pool.fetchval(
            "SELECT pg_total_relation_size(to_regclass($1))", f"{schema}.pattern_vectors"
        )
        queries = unit_vectors(1000, seed=7)
        literals = [vector_literal(q.tolist()) for q in queries]
        extension = await pool.fetchval(
            "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"
            " WHERE e.extname = 'vector'"
        )
        exact_sql = (
            f'SELECT embedding_id FROM "{schema}".pattern_vectors ORDER BY embedding'
            f' OPERATOR("{extension}".<=>) $1::text::"{extension}".vector LIMIT 10'
        )

        async def exact(i: int) -> list[uuid.UUID]:
            async with pool.acquire() as conn, conn.transaction():
                await conn.execute("SET LOCAL enable_indexscan = off")
                return [row[0] for row in await conn.fetch(exact_sql, literals[i % 1000])]

        truth = [await exact(i) for i in range(RECALL_QUERIES)]
        brute = await concurrent_load(exact, seconds)
        lines = [
            Line(
                group,
                "exact brute-force cosine (SQL, seq scan), 4 concurrent",
                brute.rate,
                "req/s",
                brute.p50_ms,
                brute.p99_ms,
                "baseline",
                f"HNSW built by upserts in {build:.1f} s; index {index_bytes / 2**20:.1f} MiB,"
                f" table+indexes {table_bytes / 2**20:.1f} MiB",
            )
        ]
        for ef in EF_SEARCH:
            tuned = PgvectorIndex(
                pool, schema=schema, dimension=DIMENSION, embedder="bench", ef_search=ef
            )
            await tuned.ensure_ready()
            found = [
                [m.embedding_id for m in await tuned.search(queries[i].tolist(), 10)]
                for i in range(RECALL_QUERIES)
            ]
            recall = np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth, strict=True)])

            async def hnsw(i: int, tuned: PgvectorIndex = tuned) -> object:
                return await tuned.search(queries[i % 1000].tolist(), 30)

            load = await concurrent_load(hnsw, seconds)
            lines.append(
                Line(
                    group,
                    f"HNSW search (the service's query), ef_search {ef}, 4 concurrent",
                    load.rate,
                    "req/s",
                    load.p50_ms,
                    load.p99_ms,
                    f"{load.rate / brute.rate:.1f}× exact",
                    f"recall@10 {recall:.3f} over {RECALL_QUERIES} queries (30 candidates asked)",
                )
            )
        await pool.execute(f'DROP SCHEMA "{schema}" CASCADE')
    return lines


async def quality_lines() -> list[Line]:
    """Top-1 / top-3 hit rates of every built-in embedder on the labelled paraphrases."""
    patterns = catalog.load()
    queries = labelled_queries()
    lines = []
    for kind in EMBEDDER_KINDS:
        embedder = embedder_named(kind)
        search = _exact_ranker(
            embedder, [p.text for p in patterns], [p.fingerprint for p in patterns]
        )
        rates = await hit_rates(queries, search)
        lines.append(
            Line(
                "pattern search quality",
                f"{embedder.name}: top-3 hit rate",
                rates.top3,
                "share",
                note=f"top-1 {rates.top1:.2f}; {rates.total} paraphrases, {len(patterns)} patterns",
            )
        )
    return lines


async def pattern_quality(bench: Bench) -> None:
    """Top-1 / top-3 hit rates of each built-in embedder on the labelled paraphrases."""
    bench.lines += await quality_lines()


async def pattern_scale(bench: Bench) -> None:
    """The pgvector index at `patterns` and `large_patterns` random vectors."""
    for size in (bench.options.patterns, bench.options.large_patterns):
        if size > 0:
            bench.lines += await scale_lines(bench.stack.database_url, size, bench.options.duration)


def _exact_ranker(
    embedder: Embedder, texts: Sequence[str], fingerprints: Sequence[str]
) -> Callable[[str], Awaitable[list[str]]]:
    matrix = np.array([embedder.embed(text) for text in texts])

    async def search(text: str) -> list[str]:
        scores = matrix @ np.array(embedder.embed(text))
        return [fingerprints[i] for i in np.argsort(-scores)[:3]]

    return search


def main(argv: Sequence[str] | None = None) -> None:
    """Standalone run on an embedded PostgreSQL; prints the lines."""
    from devstack.postgres import EmbeddedPostgres, free_port

    parser = argparse.ArgumentParser(prog="python -m benchmarks.pattern_scale")
    parser.add_argument("--sizes", default="5000")
    parser.add_argument("--seconds", type=float, default=5.0)
    options = parser.parse_args(argv)

    async def run() -> None:
        for line in await quality_lines():
            print(line)
        for size in (int(s) for s in options.sizes.split(",")):
            for line in await scale_lines(server.dsn("postgres"), size, options.seconds):
                print(line, flush=True)

    with tempfile.TemporaryDirectory() as state:
        server = EmbeddedPostgres(Path(state) / "pgdata", port=free_port())
        server.start()
        try:
            asyncio.run(run())
        finally:
            server.stop()


if __name__ == "__main__":
    main()
