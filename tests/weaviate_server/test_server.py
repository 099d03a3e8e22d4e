"""The Weaviate test server, driven by the real weaviate-client 4.24 async API."""

from __future__ import annotations

import datetime
import math
import uuid
from typing import Any

import grpc
import httpx
import pytest
import weaviate
from grpc_health.v1 import health_pb2, health_pb2_grpc
from weaviate.classes.config import Configure, DataType, Property, Tokenization, VectorDistances
from weaviate.classes.data import DataObject
from weaviate.classes.query import Filter, MetadataQuery, Sort
from weaviate.collections.classes.config import VectorIndexConfigHNSW
from weaviate.exceptions import (
    UnexpectedStatusCodeError,
    WeaviateConnectionError,
    WeaviateDeleteManyError,
    WeaviateQueryError,
)

from .server import DEFAULT_VERSION, WeaviateTestServer

Client = weaviate.WeaviateAsyncClient
Collection = Any  # weaviate.collections.CollectionAsync[dict, None]


async def _patterns(client: Client, distance: VectorDistances = VectorDistances.COSINE) -> Any:
    """A collection of self-provided vectors like the pattern service's."""
    return await client.collections.create(
        "Pattern",
        properties=[
            Property(name="kind", data_type=DataType.TEXT),
            Property(name="code", data_type=DataType.TEXT, tokenization=Tokenization.FIELD),
            Property(name="uses", data_type=DataType.INT),
        ],
        vector_config=Configure.Vectors.self_provided(
            vector_index_config=Configure.VectorIndex.hnsw(distance_metric=distance)
        ),
    )


ROWS = [
    ({"kind": "add column", "code": "ADD-COL", "uses": 1}, [1.0, 0.0, 0.0]),
    ({"kind": "drop column", "code": "DROP-COL", "uses": 2}, [0.0, 1.0, 0.0]),
    ({"kind": "rename table", "code": "REN-TAB", "uses": 3}, [0.6, 0.8, 0.0]),
]


async def _insert_rows(collection: Collection) -> list[uuid.UUID]:
    ids = [uuid.uuid4() for _ in ROWS]
    result = await collection.data.insert_many(
        [
            DataObject(properties=props, uuid=ids[i], vector=vector)
            for i, (props, vector) in enumerate(ROWS)
        ]
    )
    assert not result.has_errors
    return ids


def _cosine_distance(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return 1 - dot / (math.hypot(*a) * math.hypot(*b))


# --- connection ---


async def test_client_connects_with_init_checks_and_sees_the_version(
    weaviate_client: Client,
) -> None:
    assert await weaviate_client.is_ready()
    assert await weaviate_client.is_live()
    assert (await weaviate_client.get_meta())["version"] == DEFAULT_VERSION


async def test_grpc_health_check_is_serving(weaviate_server: WeaviateTestServer) -> None:
    async with grpc.aio.insecure_channel(weaviate_server.grpc_address) as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


# --- collections ---


async def test_created_collection_exists_with_its_config(weaviate_client: Client) -> None:
    await _patterns(weaviate_client)
    assert await weaviate_client.collections.exists("Pattern")
    config = await weaviate_client.collections.export_config("Pattern")
    assert config.vector_config is not None
    vector = config.vector_config["default"]
    assert vector.vectorizer.vectorizer == "none"
    assert isinstance(vector.vector_index_config, VectorIndexConfigHNSW)
    assert vector.vector_index_config.distance_metric == VectorDistances.COSINE
    assert {p.name: p.data_type for p in config.properties} == {
        "kind": DataType.TEXT,
        "code": DataType.TEXT,
        "uses": DataType.INT,
    }
    assert list(await weaviate_client.collections.list_all()) == ["Pattern"]


async def test_creating_an_existing_collection_fails(weaviate_client: Client) -> None:
    await _patterns(weaviate_client)
    with pytest.raises(UnexpectedStatusCodeError) as raised:
        await _patterns(weaviate_client)
    assert raised.value.status_code == 422


async def test_a_vectorizer_module_is_refused(weaviate_client: Client) -> None:
    with pytest.raises(UnexpectedStatusCodeError):
        await weaviate_client.collections.create(
            "Texts", vector_config=Configure.Vectors.text2vec_openai()
        )


async def test_deleted_collection_is_gone_with_its_objects(
    weaviate_client: Client, weaviate_server: WeaviateTestServer
) -> None:
    await _insert_rows(await _patterns(weaviate_client))
    await weaviate_client.collections.delete("Pattern")
    assert not await weaviate_client.collections.exists("Pattern")
    assert weaviate_server.collections() == []


# --- single objects over REST ---


async def test_insert_stores_properties_uuid_and_vector(
    weaviate_client: Client, weaviate_server: WeaviateTestServer
) -> None:
    collection = await _patterns(weaviate_client)
    object_id = uuid.uuid4()
    returned = await collection.data.insert(
        {"kind": "add column", "uses": 4}, uuid=object_id, vector=[0.5, 0.5, 0.0]
    )
    assert returned == object_id
    [stored] = weaviate_server.objects("Pattern")
    assert (stored.uuid, stored.properties) == (str(object_id), {"kind": "add column", "uses": 4})
    assert stored.vectors == {"default": [0.5, 0.5, 0.0]}
    assert await collection.data.exists(object_id)


async def test_inserting_a_taken_uuid_fails(weaviate_client: Client) -> None:
    collection = await _patterns(weaviate_client)
    object_id = await collection.data.insert({"kind": "a"}, vector=[1.0, 0.0, 0.0])
    with pytest.raises(UnexpectedStatusCodeError):
        await collection.data.insert({"kind": "b"}, uuid=object_id, vector=[1.0, 0.0, 0.0])


async def test_replace_and_update_change_the_stored_object(
    weaviate_client: Client, weaviate_server: WeaviateTestServer
) -> None:
    collection = await _patterns(weaviate_client)
    object_id = await collection.data.insert({"kind": "a", "uses": 1}, vector=[1.0, 0.0, 0.0])
    await collection.data.replace(object_id, {"kind": "b"}, vector=[0.0, 1.0, 0.0])
    await collection.data.update(object_id, {"uses": 7})
    [stored] = weaviate_server.objects("Pattern")
    assert stored.properties == {"kind": "b", "uses": 7}
    assert stored.vector == [0.0, 1.0, 0.0]


async def test_delete_by_id_removes_only_that_object(
    weaviate_client: Client, weaviate_server: WeaviateTestServer
) -> None:
    collection = await _patterns(weaviate_client)
    ids = await _insert_rows(collection)
    assert await collection.data.delete_by_id(ids[0])
    assert not await collection.data.delete_by_id(ids[0])
    assert [o.uuid for o in weaviate_server.objects("Pattern")] == [str(i) for i in ids[1:]]


async def test_rest_object_has_weaviate_json_shape(
    weaviate_client: Client, weaviate_server: WeaviateTestServer
) -> None:
    collection = await _patterns(weaviate_client)
    object_id = await collection.data.insert({"kind": "a"}, vector=[1.0, 0.0, 0.0])
    async with httpx.AsyncClient(base_url=weaviate_server.url) as http:
        body = (await http.get(f"/v1/objects/Pattern/{object_id}")).json()
        missing = await http.get(f"/v1/objects/Pattern/{uuid.uuid4()}")
    assert body["class"] == "Pattern"
    assert (body["id"], body["properties"]) == (str(object_id), {"kind": "a"})
    assert body["vectors"] == {"default": [1.0, 0.0, 0.0]}
    assert body["creationTimeUnix"] <= body["lastUpdateTimeUnix"]
    assert missing.status_code == 404


# --- batches over gRPC ---


async def test_insert_many_honours_uuids_and_vectors(
    weaviate_client: Client, weaviate_server: WeaviateTestServer
) -> None:
    ids = await _insert_rows(await _patterns(weaviate_client))
    stored = weaviate_server.objects("Pattern")
    assert [o.uuid for o in stored] == [str(i) for i in ids]
    assert [o.properties for o in stored] == [props for props, _ in ROWS]
    for stored_object, (_, vector) in zip(stored, ROWS, strict=True):
        assert stored_object.vector == pytest.approx(vector)


async def test_insert_many_accepts_named_vectors(
    weaviate_client: Client, weaviate_server: WeaviateTestServer
) -> None:
    collection = await _patterns(weaviate_client)
    result = await collection.data.insert_many(
        [DataObject(properties={"kind": "x"}, vector={"default": [0.0, 0.0, 1.0]})]
    )
    assert not result.has_errors
    assert weaviate_server.objects("Pattern")[0].vectors == {"default": [0.0, 0.0, 1.0]}


async def test_insert_many_reports_a_wrong_dimension_per_object(weaviate_client: Client) -> None:
    collection = await _patterns(weaviate_client)
    result = await collection.data.insert_many(
        [
            DataObject(properties={"kind": "ok"}, vector=[1.0, 0.0, 0.0]),
            DataObject(properties={"kind": "short"}, vector=[1.0, 0.0]),
        ]
    )
    assert list(result.errors) == [1]
    assert "length" in result.errors[1].message


async def test_delete_many_by_ids(
    weaviate_client: Client, weaviate_server: WeaviateTestServer
) -> None:
    collection = await _patterns(weaviate_client)
    ids = await _insert_rows(collection)
    deleted = await collection.data.delete_many(
        where=Filter.by_id().contains_any([ids[0], ids[2]]), verbose=True
    )
    assert (deleted.matches, deleted.successful, deleted.failed) == (2, 2, 0)
    assert {o.uuid for o in deleted.objects} == {ids[0], ids[2]}
    assert [o.uuid for o in weaviate_server.objects("Pattern")] == [str(ids[1])]


async def test_delete_many_by_property_dry_run_deletes_nothing(
    weaviate_client: Client, weaviate_server: WeaviateTestServer
) -> None:
    collection = await _patterns(weaviate_client)
    await _insert_rows(collection)
    deleted = await collection.data.delete_many(
        where=Filter.by_property("code").equal("DROP-COL"), dry_run=True
    )
    assert (deleted.matches, deleted.successful) == (1, 0)
    assert len(weaviate_server.objects("Pattern")) == 3


async def test_typed_properties_round_trip_through_batch_and_search(
    weaviate_client: Client,
) -> None:
    collection = await weaviate_client.collections.create(
        "Typed",
        properties=[
            Property(name="tags", data_type=DataType.TEXT_ARRAY),
            Property(name="counts", data_type=DataType.INT_ARRAY),
            Property(name="scores", data_type=DataType.NUMBER_ARRAY),
            Property(name="ok", data_type=DataType.BOOL),
            Property(name="rate", data_type=DataType.NUMBER),
            Property(name="seen", data_type=DataType.DATE),
            Property(name="ref", data_type=DataType.UUID),
        ],
        vector_config=Configure.Vectors.self_provided(),
    )
    props: dict[str, Any] = {
        "tags": ["a", "b"],
        "counts": [1, 2],
        "scores": [0.5, 1.5],
        "ok": True,
        "rate": 0.25,
        "seen": datetime.datetime(2025, 1, 2, 3, 4, 5, tzinfo=datetime.UTC),
        "ref": uuid.uuid4(),
    }
    result = await collection.data.insert_many([DataObject(properties=props, vector=[1.0])])
    assert not result.has_errors
    [found] = (await collection.query.fetch_objects()).objects
    assert found.properties == props


# --- queries over gRPC ---


async def test_unfiltered_fetch_objects_pages_in_uuid_order(weaviate_client: Client) -> None:
    collection = await _patterns(weaviate_client)
    ids = sorted(await _insert_rows(collection))
    page = await collection.query.fetch_objects(limit=2, offset=1)
    assert [o.uuid for o in page.objects] == ids[1:]


async def test_fetch_objects_sorts_by_a_property(weaviate_client: Client) -> None:
    collection = await _patterns(weaviate_client)
    ids = await _insert_rows(collection)
    page = await collection.query.fetch_objects(sort=Sort.by_property("uses", ascending=False))
    assert [o.uuid for o in page.objects] == ids[::-1]


async def test_fetch_object_by_id_returns_properties_and_vector(weaviate_client: Client) -> None:
    collection = await _patterns(weaviate_client)
    ids = await _insert_rows(collection)
    found = await collection.query.fetch_object_by_id(ids[2], include_vector=True)
    assert found is not None
    assert found.properties == ROWS[2][0]
    assert found.vector["default"] == pytest.approx(ROWS[2][1])


async def test_iterator_walks_every_object(weaviate_client: Client) -> None:
    collection = await _patterns(weaviate_client)
    ids = await _insert_rows(collection)
    seen = [o.uuid async for o in collection.iterator(cache_size=2)]
    assert seen == sorted(ids)


async def test_length_counts_objects(weaviate_client: Client) -> None:
    collection = await _patterns(weaviate_client)
    await _insert_rows(collection)
    assert await collection.length() == 3


async def test_word_tokenized_equal_matches_a_token(weaviate_client: Client) -> None:
    collection = await _patterns(weaviate_client)
    ids = await _insert_rows(collection)
    page = await collection.query.fetch_objects(filters=Filter.by_property("kind").equal("column"))
    assert [o.uuid for o in page.objects] == ids[:2]


async def test_field_tokenized_equal_matches_the_whole_value(weaviate_client: Client) -> None:
    collection = await _patterns(weaviate_client)
    ids = await _insert_rows(collection)
    page = await collection.query.fetch_objects(filters=Filter.by_property("code").equal("ADD-COL"))
    assert [o.uuid for o in page.objects] == ids[:1]
    none = await collection.query.fetch_objects(filters=Filter.by_property("code").equal("ADD"))
    assert none.objects == []


async def test_filters_combine_and_compare_numbers(weaviate_client: Client) -> None:
    collection = await _patterns(weaviate_client)
    ids = await _insert_rows(collection)
    page = await collection.query.fetch_objects(
        filters=Filter.by_property("uses").greater_than(1)
        & ~Filter.by_property("kind").equal("drop")
    )
    assert [o.uuid for o in page.objects] == ids[2:]


async def test_near_vector_ranks_by_cosine_distance(weaviate_client: Client) -> None:
    collection = await _patterns(weaviate_client)
    ids = await _insert_rows(collection)
    query = [0.9, 0.1, 0.0]
    result = await collection.query.near_vector(
        query, limit=2, return_metadata=MetadataQuery(distance=True, certainty=True)
    )
    assert [o.uuid for o in result.objects] == [ids[0], ids[2]]
    nearest = result.objects[0].metadata
    assert nearest.distance == pytest.approx(_cosine_distance(query, ROWS[0][1]), abs=1e-6)
    assert nearest.certainty == pytest.approx(1 - nearest.distance / 2, abs=1e-6)


async def test_near_vector_honours_a_distance_threshold(weaviate_client: Client) -> None:
    collection = await _patterns(weaviate_client)
    ids = await _insert_rows(collection)
    result = await collection.query.near_vector([1.0, 0.0, 0.0], distance=0.5)
    assert [o.uuid for o in result.objects] == [ids[0], ids[2]]


async def test_near_vector_applies_filters_first(weaviate_client: Client) -> None:
    collection = await _patterns(weaviate_client)
    ids = await _insert_rows(collection)
    result = await collection.query.near_vector(
        [1.0, 0.0, 0.0], filters=Filter.by_property("kind").equal("drop"), limit=5
    )
    assert [o.uuid for o in result.objects] == [ids[1]]


async def test_near_vector_returns_only_requested_properties_and_the_vector(
    weaviate_client: Client,
) -> None:
    collection = await _patterns(weaviate_client)
    await _insert_rows(collection)
    result = await collection.query.near_vector(
        [0.0, 1.0, 0.0], limit=1, return_properties=["code"], include_vector=True
    )
    [hit] = result.objects
    assert hit.properties == {"code": "DROP-COL"}
    assert hit.vector == {"default": [0.0, 1.0, 0.0]}


async def test_dot_product_distance_is_negative_dot(weaviate_client: Client) -> None:
    collection = await _patterns(weaviate_client, VectorDistances.DOT)
    await _insert_rows(collection)
    result = await collection.query.near_vector(
        [2.0, 0.0, 0.0], limit=1, return_metadata=MetadataQuery(distance=True)
    )
    assert result.objects[0].metadata.distance == pytest.approx(-2.0)


async def test_named_vectors_are_searched_by_target(weaviate_client: Client) -> None:
    collection = await weaviate_client.collections.create(
        "Multi",
        vector_config=[
            Configure.Vectors.self_provided(name="title"),
            Configure.Vectors.self_provided(
                name="body",
                vector_index_config=Configure.VectorIndex.flat(
                    distance_metric=VectorDistances.L2_SQUARED
                ),
            ),
        ],
    )
    near = await collection.data.insert({}, vector={"title": [1.0, 0.0], "body": [0.0, 1.0]})
    far = await collection.data.insert({}, vector={"title": [0.0, 1.0], "body": [1.0, 0.0]})
    by_body = await collection.query.near_vector(
        [0.0, 2.0], target_vector="body", return_metadata=MetadataQuery(distance=True)
    )
    assert [o.uuid for o in by_body.objects] == [near, far]
    assert by_body.objects[0].metadata.distance == pytest.approx(1.0)
    with pytest.raises(WeaviateQueryError):
        await collection.query.near_vector([0.0, 2.0])


async def test_unsupported_queries_fail_loudly(weaviate_client: Client) -> None:
    collection = await _patterns(weaviate_client)
    with pytest.raises(WeaviateQueryError, match="not supported"):
        await collection.query.bm25("column")


# --- outage ---


async def test_outage_fails_calls_and_recovery_keeps_data(
    weaviate_client: Client, weaviate_server: WeaviateTestServer
) -> None:
    collection = await _patterns(weaviate_client)
    ids = await _insert_rows(collection)
    ports = (weaviate_server.http_port, weaviate_server.grpc_port)

    await weaviate_server.stop()
    with pytest.raises(WeaviateConnectionError):
        await collection.data.insert({"kind": "lost"}, vector=[1.0, 0.0, 0.0])
    with pytest.raises(WeaviateDeleteManyError, match="UNAVAILABLE"):
        await collection.data.delete_many(where=Filter.by_id().equal(ids[0]))

    await weaviate_server.start()
    assert (weaviate_server.http_port, weaviate_server.grpc_port) == ports
    assert await weaviate_client.is_ready()
    # The client retries a Search that meets UNAVAILABLE while its channel reconnects.
    page = await collection.query.fetch_objects()
    assert [o.uuid for o in page.objects] == sorted(ids)
