"""The in-memory database behind both front ends; it outlives a stop/start of the server."""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .errors import AlreadyExists, InvalidInput, NotFound
from .schema import (
    LEGACY_VECTOR,
    PropertyDef,
    capitalize_class_name,
    infer_property,
    normalize_class,
    property_defs,
    vector_distances,
)
from .values import coerce_value, normalize_uuid

Vector = list[float] | list[list[float]]
"""A single vector, or a multi-vector (a list of vectors)."""


def now_ms() -> int:
    """Wall-clock milliseconds, the unit of `creationTimeUnix`."""
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class StoredObject:
    """One object as stored; `vectors` is keyed by vector name (`""` is the unnamed vector)."""

    collection: str
    uuid: str
    properties: dict[str, Any]
    vectors: dict[str, Vector]
    creation_time_ms: int
    last_update_time_ms: int

    @property
    def vector(self) -> Vector | None:
        """The object's only vector, whatever its name (None when it has none or several)."""
        return next(iter(self.vectors.values())) if len(self.vectors) == 1 else None


@dataclass
class Collection:
    """A class definition (as `GET /v1/schema/{Name}` serves it) and its objects."""

    config: dict[str, Any]
    objects: dict[str, StoredObject] = field(default_factory=dict)
    dimensions: dict[str, int] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.config["class"])

    @property
    def distances(self) -> dict[str, str]:
        return vector_distances(self.config)

    @property
    def properties(self) -> dict[str, PropertyDef]:
        return property_defs(self.config)

    def resolve_vector_name(self, name: str | None) -> str:
        """The index a query or unnamed write targets, following Weaviate's rules for defaults."""
        distances = self.distances
        if name:
            if name in distances:
                return name
            if name == "default" and LEGACY_VECTOR in distances:
                return LEGACY_VECTOR
            raise InvalidInput(f"collection {self.name!r} has no vector named {name!r}")
        if LEGACY_VECTOR in distances:
            return LEGACY_VECTOR
        if len(distances) == 1:
            return next(iter(distances))
        raise InvalidInput(
            f"collection {self.name!r} has multiple vectors {sorted(distances)}; "
            "name the target vector"
        )


class Store:
    """All collections, keyed by class name."""

    def __init__(self, *, auto_schema: bool = True) -> None:
        self._collections: dict[str, Collection] = {}
        self._auto_schema = auto_schema

    # --- collections ---

    def create_collection(self, raw: dict[str, Any]) -> dict[str, Any]:
        config = normalize_class(raw)
        if config["class"] in self._collections:
            raise AlreadyExists(f"class name {config['class']!r} already exists")
        self._collections[config["class"]] = Collection(config)
        return copy.deepcopy(config)

    def collection(self, name: str) -> Collection:
        found = self._collections.get(capitalize_class_name(name))
        if found is None:
            raise NotFound(f"could not find class {name} in schema")
        return found

    def collection_names(self) -> list[str]:
        return list(self._collections)

    def collection_configs(self) -> list[dict[str, Any]]:
        return [copy.deepcopy(c.config) for c in self._collections.values()]

    def delete_collection(self, name: str) -> None:
        self._collections.pop(capitalize_class_name(name), None)

    def clear(self) -> None:
        self._collections.clear()

    def _collection_for_write(self, name: str) -> Collection:
        if self._auto_schema and capitalize_class_name(name) not in self._collections:
            self.create_collection({"class": name})
        return self.collection(name)

    # --- objects ---

    def get_object(self, collection: str, uuid: str) -> StoredObject:
        found = self.collection(collection).objects.get(normalize_uuid(uuid))
        if found is None:
            raise NotFound(f"object {uuid} not found in class {collection}")
        return found

    def objects(self, collection: str) -> list[StoredObject]:
        return list(self.collection(collection).objects.values())

    def insert(
        self,
        collection: str,
        uuid: str,
        properties: dict[str, Any],
        vectors: dict[str, Vector],
        *,
        overwrite: bool,
    ) -> StoredObject:
        """Insert an object; `overwrite` is batch semantics (an existing id is replaced)."""
        target = self._collection_for_write(collection)
        key = normalize_uuid(uuid)
        previous = target.objects.get(key)
        if previous is not None and not overwrite:
            raise AlreadyExists(f"id {key!r} already exists")
        stamp = now_ms()
        stored = StoredObject(
            collection=target.name,
            uuid=key,
            properties=self._checked_properties(target, properties),
            vectors=self._checked_vectors(target, vectors),
            creation_time_ms=stamp,
            last_update_time_ms=stamp,
        )
        target.objects.pop(key, None)
        target.objects[key] = stored
        return stored

    def replace(
        self, collection: str, uuid: str, properties: dict[str, Any], vectors: dict[str, Vector]
    ) -> StoredObject:
        target = self.collection(collection)
        previous = self.get_object(collection, uuid)
        stored = dataclasses.replace(
            previous,
            properties=self._checked_properties(target, properties),
            vectors=self._checked_vectors(target, vectors),
            last_update_time_ms=max(now_ms(), previous.last_update_time_ms + 1),
        )
        target.objects[previous.uuid] = stored
        return stored

    def merge(
        self, collection: str, uuid: str, properties: dict[str, Any], vectors: dict[str, Vector]
    ) -> StoredObject:
        target = self.collection(collection)
        previous = self.get_object(collection, uuid)
        new_vectors = self._checked_vectors(target, vectors)
        stored = dataclasses.replace(
            previous,
            properties={
                **previous.properties,
                **self._checked_properties(target, properties),
            },
            vectors={**previous.vectors, **new_vectors},
            last_update_time_ms=max(now_ms(), previous.last_update_time_ms + 1),
        )
        target.objects[previous.uuid] = stored
        return stored

    def delete_object(self, collection: str, uuid: str) -> bool:
        """Delete one object; False when it did not exist."""
        return self.collection(collection).objects.pop(normalize_uuid(uuid), None) is not None

    def delete_objects(self, collection: str, uuids: Iterable[str]) -> None:
        objects = self.collection(collection).objects
        for uuid in uuids:
            objects.pop(uuid, None)

    # --- checks ---

    def _checked_properties(self, target: Collection, properties: dict[str, Any]) -> dict[str, Any]:
        if "id" in properties or "vector" in properties:
            raise InvalidInput("'id' and 'vector' are reserved property names")
        defs = target.properties
        checked: dict[str, Any] = {}
        for name, value in properties.items():
            prop = defs.get(name)
            if prop is None:
                inferred = infer_property(name, value) if self._auto_schema else None
                if inferred is None:
                    raise InvalidInput(
                        f"no such prop with name {name!r} found in class {target.name!r}"
                    )
                target.config["properties"].append(inferred)
                prop = target.properties[name]
            checked[name] = coerce_value(prop, copy.deepcopy(value), target.name)
        return checked

    def _checked_vectors(self, target: Collection, vectors: dict[str, Vector]) -> dict[str, Vector]:
        distances = target.distances
        checked: dict[str, Vector] = {}
        for name, vector in vectors.items():
            if name == LEGACY_VECTOR and LEGACY_VECTOR not in distances and len(distances) > 1:
                raise InvalidInput(
                    f"collection {target.name!r} is configured with multiple named vectors, "
                    "but the object has an unnamed vector"
                )
            if name and name not in distances and name != "default":
                raise InvalidInput(
                    f"collection {target.name!r} does not have a vector index named {name!r}"
                )
            index = target.resolve_vector_name(name or None)
            if not vector:
                continue
            dims = len(vector[0]) if isinstance(vector[0], list) else len(vector)
            known = target.dimensions.setdefault(index, dims)
            if known != dims:
                raise InvalidInput(
                    f"new node has a vector with length {dims}. "
                    f"Existing nodes have vectors with length {known}"
                )
            checked[index] = [list(v) for v in vector] if isinstance(vector[0], list) else vector
        return checked
