"""Collection definitions: validate a `POST /v1/schema` body and fill Weaviate's defaults.

The client parses `GET /v1/schema/{Name}` strictly (it indexes keys such as
`invertedIndexConfig.bm25.b` or `vectorIndexConfig.efConstruction`), so a stored
definition carries every key a real Weaviate 1.3x returns.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from .errors import InvalidInput

LEGACY_VECTOR = ""
"""Key under which the collection-level ("legacy", unnamed) vector is stored."""

DISTANCES = ("cosine", "dot", "l2-squared", "manhattan", "hamming")
TEXT_TYPES = ("text", "text[]")
PRIMITIVE_TYPES = (
    "text",
    "text[]",
    "int",
    "int[]",
    "number",
    "number[]",
    "boolean",
    "boolean[]",
    "date",
    "date[]",
    "uuid",
    "uuid[]",
    "object",
    "object[]",
    "geoCoordinates",
    "phoneNumber",
    "blob",
)
TOKENIZATIONS = ("word", "lowercase", "whitespace", "field", "trigram", "gse", "kagome_kr")

_QUANTIZERS_OFF: dict[str, Any] = {
    "pq": {
        "enabled": False,
        "bitCompression": False,
        "segments": 0,
        "centroids": 256,
        "trainingLimit": 100000,
        "encoder": {"type": "kmeans", "distribution": "log-normal"},
    },
    "bq": {"enabled": False},
    "sq": {"enabled": False, "trainingLimit": 100000, "rescoreLimit": 20},
}

_HNSW_DEFAULTS: dict[str, Any] = {
    "skip": False,
    "cleanupIntervalSeconds": 300,
    "maxConnections": 32,
    "efConstruction": 128,
    "ef": -1,
    "dynamicEfMin": 100,
    "dynamicEfMax": 500,
    "dynamicEfFactor": 8,
    "vectorCacheMaxObjects": 1000000000000,
    "flatSearchCutoff": 40000,
    "distance": "cosine",
    "filterStrategy": "sweeping",
    **_QUANTIZERS_OFF,
}

_FLAT_DEFAULTS: dict[str, Any] = {
    "vectorCacheMaxObjects": 1000000000000,
    "distance": "cosine",
    "pq": {"enabled": False},
    "bq": {"enabled": False, "cache": False, "rescoreLimit": -1},
    "sq": {"enabled": False},
}

_INVERTED_INDEX_DEFAULTS: dict[str, Any] = {
    "bm25": {"b": 0.75, "k1": 1.2},
    "cleanupIntervalSeconds": 60,
    "stopwords": {"preset": "en", "additions": None, "removals": None},
    "indexNullState": False,
    "indexPropertyLength": False,
    "indexTimestamps": False,
    "usingBlockMaxWAND": True,
}

_SHARDING_DEFAULTS: dict[str, Any] = {
    "virtualPerPhysical": 128,
    "desiredCount": 1,
    "actualCount": 1,
    "desiredVirtualCount": 128,
    "actualVirtualCount": 128,
    "key": "_id",
    "strategy": "hash",
    "function": "murmur3",
}

_REPLICATION_DEFAULTS: dict[str, Any] = {
    "factor": 1,
    "asyncEnabled": False,
    "deletionStrategy": "NoAutomatedResolution",
}

_MULTI_TENANCY_DEFAULTS: dict[str, Any] = {
    "enabled": False,
    "autoTenantCreation": False,
    "autoTenantActivation": False,
}

# Keys the Python client adds to each property on create; Weaviate ignores them.
_CLIENT_ONLY_PROPERTY_KEYS = ("skip_vectorization", "vectorize_property_name")


@dataclass(frozen=True)
class PropertyDef:
    """One primitive or reference property of a collection."""

    name: str
    data_type: str
    tokenization: str | None

    @property
    def is_reference(self) -> bool:
        return self.data_type not in PRIMITIVE_TYPES


def capitalize_class_name(name: str) -> str:
    """Weaviate stores class names with an upper-case first letter, as the client sends them."""
    return name[:1].upper() + name[1:]


def _merged(defaults: dict[str, Any], given: dict[str, Any] | None) -> dict[str, Any]:
    result = copy.deepcopy(defaults)
    for key, value in (given or {}).items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = _merged(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def _vector_index_config(
    index_type: str, given: dict[str, Any] | None, where: str
) -> dict[str, Any]:
    if index_type == "hnsw":
        config = _merged(_HNSW_DEFAULTS, given)
    elif index_type == "flat":
        config = _merged(_FLAT_DEFAULTS, given)
    elif index_type == "dynamic":
        given = dict(given or {})
        distance = given.get("distance", "cosine")
        config = {
            "distance": distance,
            "threshold": given.get("threshold", 10000),
            "hnsw": _merged(_HNSW_DEFAULTS, {"distance": distance, **given.get("hnsw", {})}),
            "flat": _merged(_FLAT_DEFAULTS, {"distance": distance, **given.get("flat", {})}),
        }
    else:
        raise InvalidInput(f"{where}: unsupported vectorIndexType {index_type!r}")
    if config["distance"] not in DISTANCES:
        raise InvalidInput(f"{where}: unsupported distance {config['distance']!r}")
    return config


def _vectorizer_name(vectorizer: Any, where: str) -> str:
    if isinstance(vectorizer, dict):
        if len(vectorizer) != 1:
            raise InvalidInput(f"{where}: exactly one vectorizer expected, got {list(vectorizer)}")
        name = str(next(iter(vectorizer)))
    else:
        name = str(vectorizer)
    if name != "none":
        # No modules run here: only self-provided vectors, like a Weaviate without modules.
        raise InvalidInput(f"{where}: vectorizer: no module with name {name!r} present")
    return name


def _normalize_property(raw: dict[str, Any], class_name: str) -> dict[str, Any]:
    if not isinstance(raw, dict) or not raw.get("name"):
        raise InvalidInput(f"class {class_name!r}: every property needs a name")
    data_type = raw.get("dataType")
    if not isinstance(data_type, list) or not data_type:
        raise InvalidInput(f"property {raw['name']!r}: dataType must be a non-empty list")
    prop = {k: copy.deepcopy(v) for k, v in raw.items() if k not in _CLIENT_ONLY_PROPERTY_KEYS}
    first = data_type[0]
    if first in PRIMITIVE_TYPES:
        if len(data_type) != 1:
            raise InvalidInput(f"property {raw['name']!r}: primitive dataType takes one entry")
        is_text = first in TEXT_TYPES
        tokenization = prop.get("tokenization") or ("word" if is_text else None)
        if tokenization is not None and (not is_text or tokenization not in TOKENIZATIONS):
            raise InvalidInput(
                f"property {raw['name']!r}: tokenization {tokenization!r} is not allowed "
                f"for dataType {first!r}"
            )
        prop["tokenization"] = tokenization
        prop.setdefault("indexFilterable", True)
        prop.setdefault("indexSearchable", is_text)
        prop.setdefault("indexRangeFilters", False)
    else:
        prop.setdefault("indexFilterable", True)
        prop.setdefault("indexSearchable", False)
        prop.setdefault("indexRangeFilters", False)
    return prop


def normalize_class(raw: dict[str, Any]) -> dict[str, Any]:
    """Validate a create body and return the definition `GET /v1/schema/{Name}` serves."""
    if not isinstance(raw, dict) or not isinstance(raw.get("class"), str) or not raw["class"]:
        raise InvalidInput("class name is required")
    name = capitalize_class_name(raw["class"])
    if raw.get("multiTenancyConfig", {}).get("enabled"):
        raise InvalidInput("multi-tenancy is not supported by the Weaviate test server")

    config: dict[str, Any] = {"class": name}
    if raw.get("description") is not None:
        config["description"] = raw["description"]
    config["invertedIndexConfig"] = _merged(
        _INVERTED_INDEX_DEFAULTS, raw.get("invertedIndexConfig")
    )
    config["multiTenancyConfig"] = _merged(_MULTI_TENANCY_DEFAULTS, raw.get("multiTenancyConfig"))
    config["replicationConfig"] = _merged(_REPLICATION_DEFAULTS, raw.get("replicationConfig"))
    config["shardingConfig"] = _merged(_SHARDING_DEFAULTS, raw.get("shardingConfig"))
    if raw.get("moduleConfig"):
        config["moduleConfig"] = copy.deepcopy(raw["moduleConfig"])

    properties = [_normalize_property(p, name) for p in raw.get("properties") or []]
    names = [p["name"] for p in properties]
    if len(names) != len(set(names)):
        raise InvalidInput(f"class {name!r}: duplicate property names")
    config["properties"] = properties

    named = raw.get("vectorConfig") or {}
    has_legacy = not named or any(
        key in raw for key in ("vectorizer", "vectorIndexConfig", "vectorIndexType")
    )
    if named:
        config["vectorConfig"] = {}
        for vector_name, vector in named.items():
            where = f"class {name!r} vector {vector_name!r}"
            _vectorizer_name(vector.get("vectorizer", {"none": {}}), where)
            index_type = vector.get("vectorIndexType") or "hnsw"
            config["vectorConfig"][vector_name] = {
                "vectorizer": copy.deepcopy(vector.get("vectorizer", {"none": {}})),
                "vectorIndexType": index_type,
                "vectorIndexConfig": _vector_index_config(
                    index_type, vector.get("vectorIndexConfig"), where
                ),
            }
    if has_legacy:
        where = f"class {name!r}"
        config["vectorizer"] = _vectorizer_name(raw.get("vectorizer", "none"), where)
        index_type = raw.get("vectorIndexType") or "hnsw"
        config["vectorIndexType"] = index_type
        config["vectorIndexConfig"] = _vector_index_config(
            index_type, raw.get("vectorIndexConfig"), where
        )
    return config


def vector_distances(config: dict[str, Any]) -> dict[str, str]:
    """Map each vector index of a definition (`LEGACY_VECTOR` for the unnamed one) to its metric."""
    distances = {
        name: vector["vectorIndexConfig"]["distance"]
        for name, vector in config.get("vectorConfig", {}).items()
    }
    if "vectorIndexConfig" in config:
        distances[LEGACY_VECTOR] = config["vectorIndexConfig"]["distance"]
    return distances


def property_defs(config: dict[str, Any]) -> dict[str, PropertyDef]:
    """The properties of a definition, by name."""
    return {
        p["name"]: PropertyDef(p["name"], p["dataType"][0], p.get("tokenization"))
        for p in config.get("properties", [])
    }


def infer_property(name: str, value: Any) -> dict[str, Any] | None:
    """Auto-schema: the property Weaviate adds for an undeclared value (None if not inferable)."""
    from .values import is_date_string

    def scalar_type(v: Any) -> str | None:
        if isinstance(v, bool):
            return "boolean"
        if isinstance(v, int | float):
            return "number"
        if isinstance(v, str):
            return "date" if is_date_string(v) else "text"
        if isinstance(v, dict):
            return "object"
        return None

    if isinstance(value, list):
        if not value:
            return None
        element = scalar_type(value[0])
        data_type = None if element is None else f"{element}[]"
    else:
        data_type = scalar_type(value)
    if data_type is None:
        return None
    return _normalize_property({"name": name, "dataType": [data_type]}, "auto-schema")
