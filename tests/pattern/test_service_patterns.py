"""UpsertPattern, GetPattern, ListPatterns and DeletePattern over a real channel, on every
index backend."""

from __future__ import annotations

import asyncio

import grpc

from sensei.pattern.v1 import pattern_pb2
from services.pattern.index import embedding_id_for
from shared.outbox import PLATFORM_ORG_ID
from tests.harness import error_info

from .conftest import Deployment, eventually, rpc_error, unique, vector


async def test_upsert_creates_a_pattern_with_a_caller_vector(deployment: Deployment) -> None:
    fingerprint = unique("create")
    response = await deployment.upsert(
        fingerprint, values=vector(1.0, 0.5), metadata={"from": "varchar", "to": "text"}
    )
    pattern = response.pattern
    assert response.created
    assert pattern.name == f"patterns/{pattern.id}"
    assert (pattern.type, pattern.fingerprint) == ("column_rename", fingerprint)
    assert pattern.embedding_id == str(embedding_id_for(fingerprint))
    assert (pattern.success_count, pattern.failure_count, pattern.success_rate) == (0, 0, 0.0)
    assert dict(pattern.metadata) == {"from": "varchar", "to": "text"}
    assert pattern.etag and pattern.create_time == pattern.update_time
    assert pattern.index_state in (pattern_pb2.INDEX_STATE_PENDING, pattern_pb2.INDEX_STATE_INDEXED)
    await deployment.indexed(pattern.name)


async def test_upsert_of_a_known_fingerprint_updates_it(deployment: Deployment) -> None:
    fingerprint = unique("update")
    first = (await deployment.upsert(fingerprint, text="ALTER TABLE a ADD b int")).pattern
    second = await deployment.upsert(fingerprint, "type_change", metadata={"v": 2})
    assert not second.created
    updated = second.pattern
    assert (updated.id, updated.create_time) == (first.id, first.create_time)
    assert (updated.type, dict(updated.metadata)) == ("type_change", {"v": 2})
    assert (
        updated.etag != first.etag
        and updated.update_time.ToDatetime() > first.update_time.ToDatetime()
    )
    # (The index state may move on meanwhile; indexing does not change the etag.)
    assert (await deployment.get(first.name)).etag == updated.etag


async def test_upsert_keeps_what_it_does_not_send(deployment: Deployment) -> None:
    fingerprint = unique("keep")
    first = (
        await deployment.upsert(fingerprint, values=vector(0.0, 1.0), metadata={"keep": True})
    ).pattern
    await deployment.indexed(first.name)
    response = await deployment.upsert(fingerprint, "")
    assert not response.created
    # Nothing changed: no new version, and the index is not asked to do anything again.
    assert response.pattern.etag == first.etag
    assert response.pattern.index_state == pattern_pb2.INDEX_STATE_INDEXED
    assert dict(response.pattern.metadata) == {"keep": True}


async def test_new_vector_makes_the_pattern_pending_until_indexed(
    deployment: Deployment,
) -> None:
    pattern_type = unique("revector")
    created = (await deployment.upsert(unique("fp"), pattern_type, values=vector(1.0))).pattern
    await deployment.indexed(created.name)
    updated = (
        await deployment.upsert(created.fingerprint, "", values=vector(0.0, 0.0, 1.0))
    ).pattern
    assert updated.index_state == pattern_pb2.INDEX_STATE_PENDING
    await deployment.indexed(created.name)
    [hit] = await deployment.search(values=vector(0.0, 0.0, 1.0), pattern_type=pattern_type)
    assert hit.pattern.id == created.id and hit.similarity > 0.999


async def test_concurrent_upserts_of_one_new_fingerprint_create_it_once(
    deployment: Deployment,
) -> None:
    fingerprint = unique("race")
    responses = await asyncio.gather(
        *(deployment.upsert(fingerprint, values=vector(1.0, float(i))) for i in range(16))
    )
    assert sum(response.created for response in responses) == 1
    assert len({response.pattern.id for response in responses}) == 1


async def test_stale_etag_is_aborted(deployment: Deployment) -> None:
    fingerprint = unique("etag")
    first = (await deployment.upsert(fingerprint, values=vector(1.0))).pattern
    await deployment.upsert(fingerprint, "", metadata={"changed": True})
    stale_update = pattern_pb2.UpsertPatternRequest(
        fingerprint=fingerprint, type="other", etag=first.etag
    )
    error = await rpc_error(
        deployment.stub.UpsertPattern(stale_update, metadata=deployment.service.metadata)
    )
    assert error.code() == grpc.StatusCode.ABORTED and error_info(error).reason == "ETAG_MISMATCH"
    error = await rpc_error(
        deployment.stub.DeletePattern(
            pattern_pb2.DeletePatternRequest(name=first.name, etag=first.etag),
            metadata=deployment.service.metadata,
        )
    )
    assert error.code() == grpc.StatusCode.ABORTED
    assert (await deployment.get(first.name)).type == "column_rename"


async def test_get_by_name_or_fingerprint(deployment: Deployment) -> None:
    created = (await deployment.upsert(unique("get"), text="CREATE INDEX ON t (a)")).pattern
    by_fingerprint = await deployment.stub.GetPattern(
        pattern_pb2.GetPatternRequest(fingerprint=created.fingerprint),
        metadata=deployment.viewer.metadata,
    )
    assert by_fingerprint.pattern.id == created.id
    assert (await deployment.get(created.name)).fingerprint == created.fingerprint


async def test_unknown_pattern_is_not_found(deployment: Deployment) -> None:
    error = await rpc_error(
        deployment.stub.GetPattern(
            pattern_pb2.GetPatternRequest(fingerprint=unique("nobody")),
            metadata=deployment.viewer.metadata,
        )
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert error_info(error).reason == "PATTERN_NOT_FOUND"


async def test_list_pages_through_one_type_in_creation_order(deployment: Deployment) -> None:
    pattern_type = unique("listed")
    created = [
        (await deployment.upsert(unique("fp"), pattern_type, values=vector(1.0, i))).pattern.id
        for i in range(5)
    ]
    await deployment.upsert(unique("fp"), unique("other"), values=vector(1.0))
    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        page = await deployment.stub.ListPatterns(
            pattern_pb2.ListPatternsRequest(page_size=2, page_token=token, type=pattern_type),
            metadata=deployment.viewer.metadata,
        )
        seen.extend(pattern.id for pattern in page.patterns)
        pages += 1
        token = page.next_page_token
        if not token:
            break
    assert seen == created and pages == 3


async def test_list_filters_by_index_state(deployment: Deployment) -> None:
    pattern_type = unique("state")
    created = (await deployment.upsert(unique("fp"), pattern_type, values=vector(1.0))).pattern
    await deployment.indexed(created.name)
    indexed = await deployment.stub.ListPatterns(
        pattern_pb2.ListPatternsRequest(
            type=pattern_type, index_state=pattern_pb2.INDEX_STATE_INDEXED
        ),
        metadata=deployment.viewer.metadata,
    )
    pending = await deployment.stub.ListPatterns(
        pattern_pb2.ListPatternsRequest(
            type=pattern_type, index_state=pattern_pb2.INDEX_STATE_PENDING
        ),
        metadata=deployment.viewer.metadata,
    )
    assert [p.id for p in indexed.patterns] == [created.id] and not pending.patterns


async def test_page_token_of_another_query_is_invalid(deployment: Deployment) -> None:
    pattern_type = unique("token")
    for i in range(2):
        await deployment.upsert(unique("fp"), pattern_type, values=vector(1.0, i))
    first = await deployment.stub.ListPatterns(
        pattern_pb2.ListPatternsRequest(page_size=1, type=pattern_type),
        metadata=deployment.viewer.metadata,
    )
    for token, pattern_type_asked in ((first.next_page_token, "other"), ("garbage", "")):
        error = await rpc_error(
            deployment.stub.ListPatterns(
                pattern_pb2.ListPatternsRequest(
                    page_size=1, page_token=token, type=pattern_type_asked
                ),
                metadata=deployment.viewer.metadata,
            )
        )
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_delete_removes_the_pattern_and_then_its_vector(deployment: Deployment) -> None:
    pattern_type = unique("deleted")
    created = (await deployment.upsert(unique("fp"), pattern_type, values=vector(1.0))).pattern
    await deployment.indexed(created.name)
    assert created.embedding_id in await deployment.index_ids()
    await deployment.stub.DeletePattern(
        pattern_pb2.DeletePatternRequest(name=created.name, etag=created.etag),
        metadata=deployment.operator.metadata,
    )
    error = await rpc_error(deployment.get(created.name))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert await deployment.search(values=vector(1.0), pattern_type=pattern_type) == []

    async def vector_gone() -> bool:
        return created.embedding_id not in await deployment.index_ids()

    await eventually(vector_gone)
    error = await rpc_error(
        deployment.stub.DeletePattern(
            pattern_pb2.DeletePatternRequest(name=created.name),
            metadata=deployment.operator.metadata,
        )
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND


async def test_pattern_created_again_after_delete_is_searchable(deployment: Deployment) -> None:
    pattern_type = unique("again")
    fingerprint = unique("fp")
    first = (await deployment.upsert(fingerprint, pattern_type, values=vector(1.0))).pattern
    await deployment.stub.DeletePattern(
        pattern_pb2.DeletePatternRequest(name=first.name), metadata=deployment.operator.metadata
    )
    again = (await deployment.upsert(fingerprint, pattern_type, values=vector(1.0))).pattern
    assert again.id != first.id and again.embedding_id == first.embedding_id
    await deployment.indexed(again.name)
    # Give a late deletion of the first incarnation's vector every chance to (wrongly) run.
    await asyncio.sleep(0.3)
    [hit] = await deployment.search(values=vector(1.0), pattern_type=pattern_type)
    assert hit.pattern.id == again.id
    assert again.embedding_id in await deployment.index_ids()


async def test_operator_writes_are_audited_on_the_platform_chain(deployment: Deployment) -> None:
    created = (
        await deployment.upsert(unique("audited"), values=vector(1.0), who=deployment.operator)
    ).pattern
    conn = await deployment.db()
    try:

        async def delivered() -> bool:
            found = await conn.fetchval(
                "SELECT count(*) FROM org.audit_logs WHERE action = 'pattern.create'"
                " AND resource_type = 'pattern' AND resource_id = $1 AND org_id = $2"
                " AND actor LIKE 'operators/%' AND user_id IS NULL",
                created.id,
                PLATFORM_ORG_ID,
            )
            return bool(found == 1)

        await eventually(delivered)
    finally:
        await conn.close()


async def test_service_writes_are_audited_on_the_platform_chain(
    deployment: Deployment,
) -> None:
    created = (await deployment.upsert(unique("platform"), values=vector(1.0))).pattern
    await deployment.upsert(created.fingerprint, "", metadata={"changed": True})
    chains: list[str] = []
    for _ in range(400):  # bounded wait for the relay; no timing is asserted
        rows = await deployment.fetch(
            "SELECT org_id::text FROM org.audit_logs WHERE resource_id = $1 ORDER BY seq",
            created.id,
        )
        chains = [row["org_id"] for row in rows]
        if len(chains) == 2:
            break
        await asyncio.sleep(0.05)
    assert chains == [PLATFORM_ORG_ID, PLATFORM_ORG_ID]
    writer = await deployment.fetchval("SELECT updated_by FROM patterns WHERE id = $1", created.id)
    assert writer.startswith("serviceAccounts/")
