"""The gRPC data-plane calls: Search, BatchObjects, BatchDelete and a count-only Aggregate."""

from __future__ import annotations

import time
import uuid as uuid_lib
from dataclasses import dataclass

from weaviate.proto.v1 import (
    aggregate_pb2,
    base_search_pb2,
    batch_delete_pb2,
    batch_pb2,
    search_get_pb2,
)

from .convert import batch_properties, result_properties
from .errors import InvalidInput, NotFound, StoreError, Unsupported
from .filters import compile_filter
from .schema import LEGACY_VECTOR
from .store import Collection, Store, StoredObject, Vector
from .values import normalize_uuid
from .vectors import certainty, distance, pack_single, pack_vectors, unpack_single, unpack_vectors

_UNSUPPORTED_SEARCH_FIELDS = (
    "group_by",
    "hybrid_search",
    "bm25_search",
    "near_text",
    "near_image",
    "near_audio",
    "near_video",
    "near_depth",
    "near_thermal",
    "near_imu",
    "generative",
    "rerank",
    "boost",
)


@dataclass(frozen=True)
class _Hit:
    obj: StoredObject
    distance: float | None = None
    certainty: float | None = None


def _filtered(collection: Collection, filters: object | None) -> list[StoredObject]:
    objects = list(collection.objects.values())
    if filters is None:
        return objects
    predicate = compile_filter(collection, filters)  # type: ignore[arg-type]
    return [obj for obj in objects if predicate(obj)]


def _targets(near: base_search_pb2.NearVector | base_search_pb2.NearObject) -> list[str]:
    names = list(near.targets.target_vectors) if near.HasField("targets") else []
    return names or list(near.target_vectors)


def _query_vector(near: base_search_pb2.NearVector) -> tuple[str | None, Vector]:
    """The one (target, vector) pair of a near_vector request, whichever field carries it."""
    targets = _targets(near)
    pairs: list[tuple[str | None, Vector]] = []
    if near.vectors:
        pairs += [(v.name or None, unpack_vectors(v)) for v in near.vectors]
    if near.vector_bytes:
        pairs.append((None, unpack_single(near.vector_bytes)))
    if near.vector:
        pairs.append((None, list(near.vector)))
    for entry in near.vector_for_targets:
        if entry.vectors:
            pairs.append((entry.name, unpack_vectors(entry.vectors[0])))
        else:
            pairs.append((entry.name, unpack_single(entry.vector_bytes)))
    for name, data in near.vector_per_target.items():
        pairs.append((name, unpack_single(data)))
    if len(pairs) != 1 or len(targets) > 1:
        raise Unsupported("multi-target vector search is not supported by the test server")
    chosen, query = pairs[0]
    return chosen or (targets[0] if targets else None), query


def _rank(
    collection: Collection,
    candidates: list[StoredObject],
    *,
    target: str | None,
    query: Vector,
    max_distance: float | None,
    min_certainty: float | None,
) -> list[_Hit]:
    index = collection.resolve_vector_name(target)
    metric = collection.distances[index]
    if min_certainty is not None:
        certainty(metric, 0.0)  # only cosine has a certainty; fail like Weaviate does
    hits: list[_Hit] = []
    for obj in candidates:
        stored = obj.vectors.get(index)
        if stored is None:
            continue
        d = distance(metric, query, stored)
        c = certainty(metric, d) if metric == "cosine" else None
        if max_distance is not None and d > max_distance:
            continue
        if min_certainty is not None and c is not None and c < min_certainty:
            continue
        hits.append(_Hit(obj, d, c))
    hits.sort(key=lambda hit: (hit.distance, hit.obj.uuid))
    return hits


def _sorted(objects: list[StoredObject], sort_by: list[search_get_pb2.SortBy]) -> None:
    for sort in reversed(sort_by):
        path = sort.path[0] if sort.path else "_id"

        def key(obj: StoredObject, path: str = path) -> tuple[bool, object]:
            if path == "_id":
                return (False, obj.uuid)
            if path == "_creationTimeUnix":
                return (False, obj.creation_time_ms)
            if path == "_lastUpdateTimeUnix":
                return (False, obj.last_update_time_ms)
            value = obj.properties.get(path)
            return (value is None, value if value is not None else 0)

        objects.sort(key=key, reverse=not sort.ascending)


def _metadata(hit: _Hit, request: search_get_pb2.MetadataRequest, metric: str | None) -> object:
    obj = hit.obj
    meta = search_get_pb2.MetadataResult(
        id=obj.uuid if request.uuid else "", id_as_bytes=uuid_lib.UUID(obj.uuid).bytes
    )
    if request.creation_time_unix:
        meta.creation_time_unix = obj.creation_time_ms
        meta.creation_time_unix_present = True
    if request.last_update_time_unix:
        meta.last_update_time_unix = obj.last_update_time_ms
        meta.last_update_time_unix_present = True
    if request.distance and hit.distance is not None:
        meta.distance = hit.distance
        meta.distance_present = True
    if request.certainty and hit.distance is not None and metric is not None:
        meta.certainty = certainty(metric, hit.distance)
        meta.certainty_present = True
    if request.is_consistent:
        meta.is_consistent = True
        meta.is_consistent_present = True
    wanted = set(request.vectors)
    if request.vector or wanted:
        for name, vector in obj.vectors.items():
            if name == LEGACY_VECTOR:
                if request.vector or "default" in wanted:
                    meta.vector_bytes = pack_single(vector)  # type: ignore[arg-type]
            elif request.vector or name in wanted:
                meta.vectors.append(pack_vectors(name, vector))
    return meta


def search(store: Store, request: search_get_pb2.SearchRequest, default_limit: int) -> object:
    """Execute a Search: filters, optional near_vector/near_object, sort, offset and limit."""
    started = time.monotonic()
    if request.tenant:
        raise Unsupported("multi-tenancy is not supported by the Weaviate test server")
    for name in _UNSUPPORTED_SEARCH_FIELDS:
        if request.HasField(name):
            raise Unsupported(f"{name} is not supported by the Weaviate test server")
    if request.autocut:
        raise Unsupported("autocut is not supported by the Weaviate test server")
    collection = store.collection(request.collection)
    candidates = _filtered(collection, request.filters if request.HasField("filters") else None)

    metric: str | None = None
    if request.HasField("near_vector"):
        near = request.near_vector
        target, query = _query_vector(near)
        hits = _rank(
            collection,
            candidates,
            target=target,
            query=query,
            max_distance=near.distance if near.HasField("distance") else None,
            min_certainty=near.certainty if near.HasField("certainty") else None,
        )
        metric = collection.distances[collection.resolve_vector_name(target)]
    elif request.HasField("near_object"):
        near_obj = request.near_object
        targets = _targets(near_obj)
        if len(targets) > 1:
            raise Unsupported("multi-target vector search is not supported by the test server")
        target = targets[0] if targets else None
        index = collection.resolve_vector_name(target)
        source = collection.objects.get(normalize_uuid(near_obj.id))
        if source is None or index not in source.vectors:
            raise NotFound(f"near_object: object {near_obj.id} (or its vector) not found")
        hits = _rank(
            collection,
            candidates,
            target=target,
            query=source.vectors[index],
            max_distance=near_obj.distance if near_obj.HasField("distance") else None,
            min_certainty=near_obj.certainty if near_obj.HasField("certainty") else None,
        )
        metric = collection.distances[index]
    else:
        # Like Weaviate: an unfiltered listing walks the objects bucket, keyed by uuid; a
        # filtered one follows the allow-list, in insertion (doc id) order.
        if request.after:
            after = normalize_uuid(request.after)
            candidates = [o for o in candidates if o.uuid > after]
        if request.after or not request.HasField("filters"):
            candidates.sort(key=lambda o: o.uuid)
        _sorted(candidates, list(request.sort_by))
        hits = [_Hit(obj) for obj in candidates]

    limit = request.limit or default_limit
    hits = hits[request.offset : request.offset + limit]

    defs = collection.properties
    wanted: set[str] | None = None
    if request.HasField("properties") and not request.properties.return_all_nonref_properties:
        wanted = set(request.properties.non_ref_properties)
        if request.properties.object_properties:
            wanted |= {p.prop_name for p in request.properties.object_properties}
    metadata_request = (
        request.metadata if request.HasField("metadata") else search_get_pb2.MetadataRequest()
    )
    results = [
        search_get_pb2.SearchResult(
            properties=search_get_pb2.PropertiesResult(
                non_ref_props=result_properties(hit.obj.properties, defs, wanted),
                target_collection=collection.name,
            ),
            metadata=_metadata(hit, metadata_request, metric),  # type: ignore[arg-type]
        )
        for hit in hits
    ]
    return search_get_pb2.SearchReply(took=time.monotonic() - started, results=results)


def batch_objects(store: Store, request: batch_pb2.BatchObjectsRequest) -> object:
    """Insert (or overwrite) each object; failures are reported per index, as Weaviate does."""
    started = time.monotonic()
    errors: list[batch_pb2.BatchObjectsReply.BatchError] = []
    for index, obj in enumerate(request.objects):
        try:
            if obj.tenant:
                raise Unsupported("multi-tenancy is not supported by the Weaviate test server")
            vectors: dict[str, Vector] = {}
            if obj.vector_bytes:
                vectors[LEGACY_VECTOR] = unpack_single(obj.vector_bytes)
            elif obj.vector:
                vectors[LEGACY_VECTOR] = list(obj.vector)
            for named in obj.vectors:
                vectors[named.name] = unpack_vectors(named)
            properties = batch_properties(obj.properties) if obj.HasField("properties") else {}
            store.insert(
                obj.collection,
                obj.uuid or str(uuid_lib.uuid4()),
                properties,
                vectors,
                overwrite=True,
            )
        except StoreError as e:
            errors.append(batch_pb2.BatchObjectsReply.BatchError(index=index, error=str(e)))
    return batch_pb2.BatchObjectsReply(took=time.monotonic() - started, errors=errors)


def batch_delete(store: Store, request: batch_delete_pb2.BatchDeleteRequest) -> object:
    """Delete every object matching the (required) filter; `dry_run` only counts."""
    started = time.monotonic()
    if request.tenant:
        raise Unsupported("multi-tenancy is not supported by the Weaviate test server")
    if not request.HasField("filters"):
        raise InvalidInput("batch delete needs a filter")
    collection = store.collection(request.collection)
    matches = _filtered(collection, request.filters)
    if not request.dry_run:
        store.delete_objects(collection.name, [o.uuid for o in matches])
    return batch_delete_pb2.BatchDeleteReply(
        took=time.monotonic() - started,
        matches=len(matches),
        successful=0 if request.dry_run else len(matches),
        failed=0,
        objects=(
            [
                batch_delete_pb2.BatchDeleteObject(
                    uuid=uuid_lib.UUID(o.uuid).bytes, successful=not request.dry_run
                )
                for o in matches
            ]
            if request.verbose
            else []
        ),
    )


def aggregate(store: Store, request: aggregate_pb2.AggregateRequest) -> object:
    """Only `total_count` (objects_count), optionally filtered: what `len(collection)` uses."""
    started = time.monotonic()
    if request.aggregations or request.HasField("group_by") or request.tenant:
        raise Unsupported("only total_count aggregation is supported by the test server")
    if request.WhichOneof("search") is not None:
        raise Unsupported("aggregation over a search is not supported by the test server")
    collection = store.collection(request.collection)
    filtered = _filtered(collection, request.filters if request.HasField("filters") else None)
    return aggregate_pb2.AggregateReply(
        took=time.monotonic() - started,
        single_result=aggregate_pb2.AggregateReply.Single(
            objects_count=len(filtered) if request.objects_count else None
        ),
    )
