"""Wiring of the pattern service: the vector index, the indexer loop, use cases and servicer.

Settings (`SENSEI_PATTERN_…`):
- `EMBEDDER` (default `wordllama`; or `feature-hashing`): the built-in embedder of texts.
  Changing it (or the dimension) needs ReindexPatterns, which embeds stored texts again;
  until then searches are FAILED_PRECONDITION (vectors of two embedders never mix).
- `EMBEDDING_DIM` (default 256): length of every vector, and of the built-in embedder's
  (wordllama: 64, 128 or 256).
- `EF_SEARCH` (default 200): pgvector's HNSW candidate list per search (recall vs speed).
- `WEAVIATE_URL` (e.g. `http://weaviate:8080`): use Weaviate as the index; unset → pgvector
  in the service's own schema. With it: `WEAVIATE_GRPC_PORT` (default 50051),
  `WEAVIATE_GRPC_HOST` (default: the URL's host), `WEAVIATE_COLLECTION` (default
  `SenseiPattern`), `WEAVIATE_API_KEY`, `WEAVIATE_TIMEOUT_SECONDS` (default 5: the longest
  a call to Weaviate may take, retries included, before the caller gets UNAVAILABLE).
- `INDEXER_POLL_SECONDS` (default 5), `INDEXER_MAX_BACKOFF_SECONDS` (default 10): how often
  the indexer looks for work without a notification, and how long it waits at most between
  retries while the index is down. `INDEXER_BATCH_SIZE` (default 200).

The service starts whether or not the index is reachable: PostgreSQL is the source of
truth, and the indexer connects (and catches up) when it can. RecordPatternOutcome checks
the migration it names with the migration service (`SENSEI_MIGRATION_ADDR`), as this
service's own service principal (`SENSEI_SERVICE_API_KEY`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from sensei.pattern.v1 import pattern_pb2_grpc
from services.pattern.embedder import DEFAULT_DIMENSION, Embedder
from services.pattern.embedders import DEFAULT_EMBEDDER, embedder_named
from services.pattern.index import VectorIndex
from services.pattern.index_pgvector import DEFAULT_EF_SEARCH, PgvectorIndex
from services.pattern.index_weaviate import DEFAULT_COLLECTION, DEFAULT_GRPC_PORT, WeaviateIndex
from services.pattern.indexer import Indexer
from services.pattern.migration_client import MigrationClient
from services.pattern.servicer import PatternServicer
from services.pattern.use_cases.patterns import Patterns
from services.pattern.use_cases.search import PatternSearch
from shared.config import ConfigError, ServiceConfig
from shared.pagination import PageTokens
from shared.server import ServiceContext, ServiceDefinition

N = TypeVar("N", int, float)


def vector_index(ctx: ServiceContext, embedder: Embedder) -> VectorIndex:
    """Weaviate when a URL is configured, pgvector in the service's schema otherwise."""
    config = ctx.config
    url = config.setting("WEAVIATE_URL")
    dimension = embedder.dimension
    if not url:
        return PgvectorIndex(
            ctx.pool,
            schema=config.db_schema,
            dimension=dimension,
            embedder=embedder.name,
            ef_search=_number(config, "EF_SEARCH", DEFAULT_EF_SEARCH, int),
        )
    try:
        return WeaviateIndex(
            url,
            grpc_port=_number(config, "WEAVIATE_GRPC_PORT", DEFAULT_GRPC_PORT, int),
            grpc_host=config.setting("WEAVIATE_GRPC_HOST") or None,
            collection=config.setting("WEAVIATE_COLLECTION") or DEFAULT_COLLECTION,
            dimension=dimension,
            api_key=config.setting("WEAVIATE_API_KEY") or None,
            timeout_seconds=_number(config, "WEAVIATE_TIMEOUT_SECONDS", 5.0, float),
            embedder=embedder.name,
        )
    except ValueError as exc:
        raise ConfigError(f"SENSEI_PATTERN_WEAVIATE_*: {exc}") from None


async def setup(ctx: ServiceContext) -> None:
    """Builds the index, starts the indexer and registers the servicer."""
    config = ctx.config
    dimension = _number(config, "EMBEDDING_DIM", DEFAULT_DIMENSION, int)
    kind = config.setting("EMBEDDER") or DEFAULT_EMBEDDER
    try:
        embedder = embedder_named(kind, dimension)
    except ValueError as exc:
        raise ConfigError(f"SENSEI_PATTERN_EMBEDDER / EMBEDDING_DIM: {exc}") from None
    try:
        index = vector_index(ctx, embedder)
    except ValueError as exc:
        raise ConfigError(f"SENSEI_PATTERN_EMBEDDING_DIM: {exc}") from None
    ctx.on_close(index.close)
    indexer = Indexer(
        ctx.pool,
        config.database_url,
        index,
        embedder,
        batch_size=_number(config, "INDEXER_BATCH_SIZE", 200, int),
        poll_seconds=_number(config, "INDEXER_POLL_SECONDS", 5.0, float),
        max_backoff_seconds=_number(config, "INDEXER_MAX_BACKOFF_SECONDS", 10.0, float),
    )
    ctx.run_in_background(indexer.run(), name="pattern-indexer")
    credentials = ctx.credentials
    assert credentials is not None
    migrations = MigrationClient(config.address_of("migration"), credentials)
    ctx.on_close(migrations.close)
    patterns = Patterns(
        ctx.pool,
        index,
        embedder,
        indexer,
        PageTokens(config.page_token_secret),
        migrations=migrations,
    )
    ctx.add_servicer(
        pattern_pb2_grpc.add_PatternServiceServicer_to_server,
        PatternServicer(patterns, PatternSearch(ctx.pool, index, embedder)),
    )


def _number(config: ServiceConfig, name: str, default: N, kind: type[N]) -> N:
    raw = config.setting(name)
    if raw is None or raw == "":
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(f"SENSEI_PATTERN_{name} must be a number, got {raw!r}") from None
    if value <= 0:
        raise ConfigError(f"SENSEI_PATTERN_{name} must be positive, got {raw!r}")
    return value


DEFINITION = ServiceDefinition(
    name="pattern",
    service_names=("sensei.pattern.v1.PatternService",),
    package_dir=Path(__file__).parent,
    setup=setup,
)
