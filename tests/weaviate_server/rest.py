"""The REST front end: meta, readiness, `/v1/schema` and single-object `/v1/objects` calls."""

from __future__ import annotations

import re
import uuid as uuid_lib
from typing import Any

from .errors import AlreadyExists, InvalidInput, NotFound, StoreError, Unsupported
from .http import Request, Response
from .schema import LEGACY_VECTOR
from .store import Store, StoredObject, Vector

GRPC_MAX_MESSAGE_SIZE = 104858000

_OBJECT_PATH = re.compile(r"^/v1/objects/(?P<cls>[^/]+)/(?P<id>[^/]+)$")
_SCHEMA_PATH = re.compile(r"^/v1/schema/(?P<cls>[^/]+)$")


def _error(status: int, message: str) -> Response:
    return Response(status, {"error": [{"message": message}]})


def _store_error(error: StoreError) -> Response:
    if isinstance(error, NotFound):
        return _error(404, str(error))
    if isinstance(error, Unsupported):
        return _error(501, str(error))
    if isinstance(error, AlreadyExists | InvalidInput):
        return _error(422, str(error))
    return _error(500, str(error))


def object_json(obj: StoredObject) -> dict[str, Any]:
    """An object as `GET /v1/objects/{Name}/{id}` returns it."""
    body: dict[str, Any] = {
        "class": obj.collection,
        "id": obj.uuid,
        "properties": obj.properties,
        "creationTimeUnix": obj.creation_time_ms,
        "lastUpdateTimeUnix": obj.last_update_time_ms,
    }
    if LEGACY_VECTOR in obj.vectors:
        body["vector"] = obj.vectors[LEGACY_VECTOR]
    named = {name: v for name, v in obj.vectors.items() if name != LEGACY_VECTOR}
    if named:
        body["vectors"] = named
    return body


def _vectors_of(body: dict[str, Any]) -> dict[str, Vector]:
    vectors: dict[str, Vector] = {}
    if body.get("vector"):
        vectors[LEGACY_VECTOR] = body["vector"]
    for name, vector in (body.get("vectors") or {}).items():
        vectors[name] = vector
    return vectors


class RestApi:
    """Routes one request to the store; the version string is what `GET /v1/meta` reports."""

    def __init__(self, store: Store, version: str) -> None:
        self._store = store
        self._version = version

    async def __call__(self, request: Request) -> Response:
        try:
            if request.query.get("tenant"):
                raise Unsupported("multi-tenancy is not supported by the Weaviate test server")
            return self._route(request)
        except StoreError as e:
            return _store_error(e)
        except (ValueError, TypeError, KeyError, AttributeError) as e:
            return _error(422, f"malformed request: {e}")

    def _route(self, request: Request) -> Response:
        method, path = request.method, request.path.rstrip("/") or "/"
        if method == "GET" and path == "/v1/meta":
            return Response(
                200,
                {
                    "hostname": "http://[::]:8080",
                    "modules": {},
                    "version": self._version,
                    "grpcMaxMessageSize": GRPC_MAX_MESSAGE_SIZE,
                },
            )
        if method == "GET" and path in ("/v1/.well-known/ready", "/v1/.well-known/live"):
            return Response(200)
        if method == "GET" and path == "/v1/.well-known/openid-configuration":
            return _error(404, "OIDC is not configured")
        if path == "/v1/schema":
            if method == "GET":
                return Response(200, {"classes": self._store.collection_configs()})
            if method == "POST":
                return Response(200, self._store.create_collection(request.json()))
        if match := _SCHEMA_PATH.match(path):
            name = match["cls"]
            if method == "GET":
                return Response(200, self._store.collection(name).config)
            if method == "DELETE":
                self._store.delete_collection(name)
                return Response(200)
        if method == "POST" and path == "/v1/objects":
            return self._insert(request.json())
        if match := _OBJECT_PATH.match(path):
            return self._object(method, match["cls"], match["id"], request)
        return _error(501, f"{method} {path} is not implemented by the Weaviate test server")

    def _insert(self, body: dict[str, Any]) -> Response:
        stored = self._store.insert(
            body["class"],
            body.get("id") or str(uuid_lib.uuid4()),
            body.get("properties") or {},
            _vectors_of(body),
            overwrite=False,
        )
        return Response(200, object_json(stored))

    def _object(self, method: str, cls: str, uuid: str, request: Request) -> Response:
        if method == "HEAD":
            self._store.get_object(cls, uuid)
            return Response(204)
        if method == "GET":
            return Response(200, object_json(self._store.get_object(cls, uuid)))
        if method == "DELETE":
            if not self._store.delete_object(cls, uuid):
                raise NotFound(f"object {uuid} not found")
            return Response(204)
        body = request.json() or {}
        if body.get("id") not in (None, uuid) and str(body.get("id")).lower() != uuid.lower():
            raise InvalidInput("the id in the body does not match the id in the path")
        if method == "PUT":
            stored = self._store.replace(cls, uuid, body.get("properties") or {}, _vectors_of(body))
            return Response(200, object_json(stored))
        if method == "PATCH":
            self._store.merge(cls, uuid, body.get("properties") or {}, _vectors_of(body))
            return Response(204)
        return _error(405, f"{method} is not allowed on {request.path}")
