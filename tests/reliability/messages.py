"""Hypothesis strategies for any protobuf message, built from its descriptor.

Values are random and at the boundaries: huge and odd strings (NUL, controls, RTL marks,
SQL and format metacharacters), real resource names of the caller's and another
organization (and mangled ones), extreme integers, NaN and infinite doubles, unknown enum
numbers, deep and odd `Struct`s, out-of-range `Timestamp`s, odd field masks. Everything
built here is a well-formed message; what the wire allows beyond that (invalid UTF-8,
truncation, nesting past the parser's limit) is in `wire.py`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from google.protobuf import descriptor, message_factory
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from hypothesis import strategies as st

# Largest string a request may carry here (the stack runs with a small message limit).
HUGE = 200 * 1024
# Nesting of generated Structs kept below the protobuf parser's recursion limit (100).
MAX_STRUCT_DEPTH = 24

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
UINT32 = (0, 2**32 - 1)
UINT64 = (0, 2**64 - 1)

ODD_STRINGS = (
    "",
    " ",
    "\x00",
    "a\x00b",
    "\t\n\r",
    "-",
    "*",
    ".",
    "..",
    "../../etc/passwd",
    "%s%n%x",
    "{}",
    "null",
    "' OR '1'='1' --",
    "'; DROP TABLE migrations; --",
    "\\",
    "\u202e\u200b\ufeff",
    "é" * 64,
    "😀" * 300,
    "00000000-0000-0000-0000-000000000000",
    "ffffffff-ffff-ffff-ffff-ffffffffffff",
    "organizations/",
    "organizations/-",
    "organizations/*",
    "organizations/00000000-0000-0000-0000-000000000000",
    "patterns/",
    "signingKeys/",
    "users/x",
    "serviceAccounts/x",
)

SCHEMA_DEFINITION: dict[str, Any] = {
    "version": 1,
    "tables": {
        "public.users": {
            "columns": {
                "id": {"position": 1, "type": "bigint", "nullable": False, "identity": "ALWAYS"},
                "email": {"position": 2, "type": "text", "nullable": False},
                "name": {"position": 3, "type": "text", "default": "'anonymous'::text"},
            },
            "primary_key": {"name": "users_pkey", "columns": ["id"]},
            "unique_constraints": [{"name": "users_email_key", "columns": ["email"]}],
            "foreign_keys": [],
            "indexes": [
                {
                    "name": "users_name_idx",
                    "keys": [{"column": "name", "descending": True}],
                    "unique": False,
                    "method": "btree",
                }
            ],
        }
    },
}
# Loopback only: a closed port on 127.0.0.1, so nothing here reaches another host.
CONNECTION_CONFIG: dict[str, Any] = {
    "host": "127.0.0.1",
    "port": 9,
    "database": "nothing",
    "user": "nobody",
    "password": "fuzz-secret",
    "sslmode": "disable",
}
PATTERN_METADATA: dict[str, Any] = {"from": "old_name", "to": "new_name", "weight": 0.5}
SEED_STRUCTS: tuple[dict[str, Any], ...] = (SCHEMA_DEFINITION, CONNECTION_CONFIG, PATTERN_METADATA)

TIMESTAMP_SECONDS = (
    0,
    -1,
    -62135596800,  # 0001-01-01, the smallest valid
    -62135596801,
    253402300799,  # 9999-12-31T23:59:59, the largest valid
    253402300800,
    INT64[0],
    INT64[1],
    1_700_000_000,
)
NANOS = (0, 1, 999_999_999, 1_000_000_000, -1, INT32[0], INT32[1])


def integers(bounds: tuple[int, int]) -> st.SearchStrategy[int]:
    """Integers in `bounds`, often at their edges or at paging limits."""
    low, high = bounds
    edges = [v for v in (0, 1, -1, 49, 50, 51, 999, 1000, 1001, low, high) if low <= v <= high]
    return st.one_of(st.sampled_from(edges), st.integers(low, high))


def doubles(width: int = 64) -> st.SearchStrategy[float]:
    """Doubles including NaN, ±inf, -0.0 and values just outside [0, 1]."""
    edges = [0.0, -0.0, 1.0, -1.0, 0.5, 1.0000001, -1e-300, 1e308, math.nan, math.inf, -math.inf]
    return st.one_of(st.sampled_from(edges), st.floats(width=width))


def json_values(max_leaves: int = 12) -> st.SearchStrategy[Any]:
    """JSON values as a Struct holds them (numbers are doubles, NaN and inf included)."""
    leaves = st.one_of(
        st.none(),
        st.booleans(),
        doubles(),
        st.text(max_size=20),
        st.sampled_from(ODD_STRINGS),
    )
    return st.recursive(
        leaves,
        lambda children: st.one_of(
            st.lists(children, max_size=4),
            st.dictionaries(st.text(max_size=8), children, max_size=4),
        ),
        max_leaves=max_leaves,
    )


def deep_dict(depth: int, leaf: Any = 1.0) -> dict[str, Any]:
    """`{"a": {"a": ... leaf}}`, `depth` objects deep."""
    value: Any = leaf
    for _ in range(depth):
        value = {"a": value}
    assert isinstance(value, dict)
    return value


@st.composite
def mutated(draw: st.DrawFn, seed: Any) -> Any:
    """`seed` with one value somewhere inside replaced by a random JSON value."""
    paths: list[tuple[Any, ...]] = []

    def walk(node: Any, path: tuple[Any, ...]) -> None:
        paths.append(path)
        if isinstance(node, dict):
            for key, child in node.items():
                walk(child, (*path, key))
        elif isinstance(node, list):
            for index, child in enumerate(node):
                walk(child, (*path, index))

    walk(seed, ())
    path = draw(st.sampled_from(paths))
    replacement = draw(json_values(max_leaves=4))
    if not path:
        return replacement
    copy = json.loads(json.dumps(seed))
    node = copy
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = replacement
    return copy


def struct_dicts() -> st.SearchStrategy[dict[str, Any]]:
    """Objects for Struct fields: random, deep, seeds (valid schema, config) and mutants."""
    objects = st.dictionaries(st.text(max_size=10), json_values(), max_size=6)
    seeds = st.sampled_from(SEED_STRUCTS)
    mutants = st.sampled_from(SEED_STRUCTS).flatmap(mutated)
    deep = st.integers(1, MAX_STRUCT_DEPTH).map(deep_dict)
    wide = st.integers(100, 2000).map(lambda n: {f"k{i}": i for i in range(n)})
    return st.one_of(
        objects,
        seeds,
        mutants.filter(lambda value: isinstance(value, dict)),
        deep,
        wide,
        st.just({}),
    )


class Names:
    """Strings worth trying in a string field: real values of the world and near misses.

    `by_field` maps a field name to the real values made for it (`fingerprint`, `slug`,
    `etag`, ...); resource names follow AIP, so `name` and `parent` fields of an RPC about
    migrations prefer `.../migrations/{id}` and its parent.
    """

    def __init__(self, real: Sequence[str], by_field: Mapping[str, Sequence[str]]) -> None:
        self.real = tuple(dict.fromkeys(value for value in real if value))
        self.by_field = {key: tuple(values) for key, values in by_field.items() if values}

    def strategy(self, field_name: str, method: str) -> st.SearchStrategy[str]:
        """Preferred real values, any real value, mangled, odd, random and huge strings."""
        real = st.sampled_from(self.real) if self.real else st.just("")
        preferred = self.preferred(field_name, method)
        best = st.sampled_from(preferred) if preferred else real
        mangled = st.tuples(best, st.sampled_from(_MANGLERS)).map(lambda pair: pair[1](pair[0]))
        huge = st.tuples(
            st.sampled_from((1024, 64 * 1024, HUGE)), st.sampled_from(("a", "é", "/", "\x00"))
        ).map(lambda pair: pair[1] * pair[0])
        return st.one_of(
            best,
            best,
            best,
            real,
            mangled,
            st.sampled_from(ODD_STRINGS),
            st.text(max_size=40),
            huge,
        )

    def calm_strategy(self, field_name: str, method: str) -> st.SearchStrategy[str]:
        """Plausible values only: preferred real values and short words."""
        preferred = self.preferred(field_name, method)
        words = st.text(alphabet=_WORDS, min_size=1, max_size=24)
        if preferred:
            return st.one_of(st.sampled_from(preferred), st.sampled_from(preferred), words)
        return words

    def preferred(self, field_name: str, method: str) -> tuple[str, ...]:
        """Real values that fit a field of this name in this RPC (may be empty)."""
        if field_name in self.by_field:
            return self.by_field[field_name]
        collection = _collection_of(method)
        if collection is None:
            return ()
        if field_name in ("name", "base_schema", "target_schema", "user"):
            return tuple(v for v in self.real if _last_collection(v) == collection)
        if field_name == "parent":
            parents = _PARENTS.get(collection, ())
            return tuple(v for v in self.real if _last_collection(v) in parents)
        if field_name.endswith("_id"):
            return tuple(v for v in self.real if _is_uuid(v))
        return ()


# Leading verbs of RPC names; what follows names the resource (AIP-style).
_VERBS = (
    "Get", "List", "Create", "Update", "Delete", "Start", "Advance", "Pause", "Resume",
    "Complete", "Fail", "Cancel", "Watch", "Capture", "Diff", "Lookup", "Revoke", "Rotate",
    "Record", "Search", "Reindex", "Upsert", "Verify", "Exchange", "Append", "Report",
)  # fmt: skip
_COLLECTIONS = {
    "AgentExecution": "agentExecutions",
    "Migration": "migrations",
    "Schema": "schemas",
    "Verification": "verifications",
    "Certificate": "certificates",
    "SigningKey": "signingKeys",
    "Pattern": "patterns",
    "ApiKey": "apiKeys",
    "User": "users",
    "Organization": "organizations",
    "Audit": "auditLogs",
    "Usage": "usage",
    "Progress": "migrations",
}
_PARENTS = {
    "organizations": ("",),
    "migrations": ("organizations",),
    "schemas": ("migrations",),
    "agentExecutions": ("migrations",),
    "verifications": ("migrations",),
    "users": ("organizations",),
    "apiKeys": ("organizations",),
    "certificates": ("organizations",),
    "auditLogs": ("organizations",),
    "usage": ("organizations",),
}


def _collection_of(method: str) -> str | None:
    rest = method
    for verb in _VERBS:
        if method.startswith(verb):
            rest = method[len(verb) :]
            break
    for prefix, collection in sorted(_COLLECTIONS.items(), key=lambda kv: -len(kv[0])):
        if rest.startswith(prefix):
            return collection
    return None


def _last_collection(value: str) -> str | None:
    parts = value.split("/")
    if len(parts) < 2 or len(parts) % 2:
        return None
    return parts[-2]


def _is_uuid(value: str) -> bool:
    parts = value.split("-")
    return len(value) == 36 and [len(p) for p in parts] == [8, 4, 4, 4, 12]


_MANGLERS = (
    lambda s: s + "/",
    lambda s: s + "/extra/segments",
    lambda s: s.upper(),
    lambda s: s[:-1],
    lambda s: s + "\x00",
    lambda s: " " + s,
    lambda s: s.replace("-", ""),
    lambda s: s.rsplit("/", 1)[0] + "/-",
    lambda s: s * 3,
    lambda s: s.split("/")[-1],
)


class Requests:
    """Strategies for request messages of one RPC, with `names` for string fields.

    A request is drawn in one of three moods: calm (every set field plausible, to get past
    validation), calm with one hostile field somewhere (the likeliest to reach code that
    trusts validated input), or hostile throughout.
    """

    def __init__(self, names: Names, method: str, *, max_depth: int = 4) -> None:
        self._names = names
        self._method = method
        self._max_depth = max_depth
        self._cache: dict[tuple[str, int, bool], st.SearchStrategy[Message]] = {}

    def request(self, desc: descriptor.Descriptor) -> st.SearchStrategy[Message]:
        """Requests of type `desc` in any of the three moods."""
        calm = self.message(desc, calm=True)
        one_bad = self._one_hostile_field(desc)
        return st.one_of(calm, one_bad, one_bad, self.message(desc, calm=False))

    def message(
        self, desc: descriptor.Descriptor, depth: int = 0, *, calm: bool = False
    ) -> st.SearchStrategy[Message]:
        """Messages of type `desc`; each field unset or set to a drawn value."""
        key = (desc.full_name, depth, calm)
        if key not in self._cache:
            self._cache[key] = self._build(desc, depth, calm)
        return self._cache[key]

    def _build(
        self, desc: descriptor.Descriptor, depth: int, calm: bool
    ) -> st.SearchStrategy[Message]:
        special = self._well_known(desc, calm, _mask_words_near(desc))
        if special is not None:
            return special
        message_class = message_factory.GetMessageClass(desc)
        if depth >= self._max_depth:
            return st.just(message_class())
        fields = list(desc.fields)
        siblings = _mask_words_near(desc)
        setting = st.sampled_from((True, True, False)) if calm else st.booleans()

        @st.composite
        def build(draw: st.DrawFn) -> Message:
            message = message_class()
            for field in fields:
                if draw(setting):
                    value = draw(self._field_values(field, depth, calm, siblings))
                    _assign(message, field, value)
            return message

        return build()

    def _one_hostile_field(self, desc: descriptor.Descriptor) -> st.SearchStrategy[Message]:
        fields = list(desc.fields)
        if not fields:
            return self.message(desc, calm=True)

        @st.composite
        def build(draw: st.DrawFn) -> Message:
            message = draw(self.message(desc, calm=True))
            target: Message = message
            field = draw(st.sampled_from(fields))
            depth = 1
            # Sometimes go one message deeper (e.g. `migration.display_name`).
            while (
                field.type == FieldDescriptor.TYPE_MESSAGE
                and not field.is_repeated
                and not field.message_type.full_name.startswith("google.protobuf.")
                and field.message_type.fields
                and draw(st.booleans())
            ):
                target = getattr(target, field.name)
                target.SetInParent()
                field = draw(st.sampled_from(list(field.message_type.fields)))
                depth += 1
            target.ClearField(field.name)
            siblings = _mask_words_near(field.containing_type)
            value = draw(self._field_values(field, depth, False, siblings))
            _assign(target, field, value)
            return message

        return build()

    def _field_values(
        self, field: FieldDescriptor, depth: int, calm: bool, mask_words: tuple[str, ...]
    ) -> st.SearchStrategy[Any]:
        if _is_map(field):
            key_field = field.message_type.fields_by_name["key"]
            value_field = field.message_type.fields_by_name["value"]
            return st.dictionaries(
                self._single(key_field, depth + 1, calm, mask_words),
                self._single(value_field, depth + 1, calm, mask_words),
                max_size=4,
            )
        single = self._single(field, depth + 1, calm, mask_words)
        if field.is_repeated:
            small = st.lists(single, max_size=3 if calm else 4)
            if calm:
                return small
            return st.one_of(small, small, small, st.lists(single, min_size=100, max_size=300))
        return single

    def _single(
        self, field: FieldDescriptor, depth: int, calm: bool, mask_words: tuple[str, ...]
    ) -> st.SearchStrategy[Any]:
        kind = field.type
        if kind == FieldDescriptor.TYPE_MESSAGE:
            if field.message_type.full_name == "google.protobuf.FieldMask":
                return self._mask(field.message_type, calm, mask_words)
            return self.message(field.message_type, depth, calm=calm)
        if kind == FieldDescriptor.TYPE_STRING:
            if calm:
                return self._names.calm_strategy(field.name, self._method)
            return self._names.strategy(field.name, self._method)
        if kind == FieldDescriptor.TYPE_BYTES:
            return _bytes()
        if kind == FieldDescriptor.TYPE_BOOL:
            return st.booleans()
        if kind == FieldDescriptor.TYPE_ENUM:
            known = [value.number for value in field.enum_type.values]
            if calm:
                return st.sampled_from([number for number in known if number] or known)
            return st.one_of(st.sampled_from(known), integers(INT32))
        if kind in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
            if calm:
                return st.floats(0.0, 1.0)
            return doubles(64 if kind == FieldDescriptor.TYPE_DOUBLE else 32)
        if kind in _INTEGER_BOUNDS:
            if calm:
                return st.integers(0, 100)
            return integers(_INTEGER_BOUNDS[kind])
        raise AssertionError(f"no strategy for field {field.full_name} of type {kind}")

    def _mask(
        self, desc: descriptor.Descriptor, calm: bool, words: tuple[str, ...]
    ) -> st.SearchStrategy[Message]:
        message_class = message_factory.GetMessageClass(desc)
        paths = st.sampled_from(words) if (calm and words) else _mask_paths()
        return st.lists(paths, max_size=4).map(lambda chosen: message_class(paths=chosen))

    def _well_known(
        self, desc: descriptor.Descriptor, calm: bool, mask_words: tuple[str, ...]
    ) -> st.SearchStrategy[Message] | None:
        message_class = message_factory.GetMessageClass(desc)
        name = desc.full_name
        if name == "google.protobuf.Struct":
            dicts = calm_struct_dicts() if calm else struct_dicts()
            return dicts.map(lambda value: _filled(message_class(), value))
        if name == "google.protobuf.Value":
            values = calm_json_values() if calm else json_values()
            return values.map(lambda value: _value_of(message_class, value))
        if name == "google.protobuf.ListValue":
            values = calm_json_values() if calm else json_values()
            return st.lists(values, max_size=5).map(lambda items: _list_of(message_class, items))
        if name in ("google.protobuf.Timestamp", "google.protobuf.Duration"):
            if calm:
                return st.builds(
                    lambda seconds, nanos: message_class(seconds=seconds, nanos=nanos),
                    st.integers(1_600_000_000, 1_900_000_000),
                    st.integers(0, 999_999_999),
                )
            return st.builds(
                lambda seconds, nanos: message_class(seconds=seconds, nanos=nanos),
                st.one_of(st.sampled_from(TIMESTAMP_SECONDS), integers(INT64)),
                st.one_of(st.sampled_from(NANOS), integers(INT32)),
            )
        if name == "google.protobuf.FieldMask":
            return self._mask(desc, calm, mask_words)
        return None


def _mask_words_near(desc: descriptor.Descriptor) -> tuple[str, ...]:
    """Field names of the resource messages beside a FieldMask (what Update masks name)."""
    words: list[str] = []
    for field in desc.fields:
        if field.type == FieldDescriptor.TYPE_MESSAGE and not field.is_repeated:
            inner = field.message_type
            if not inner.full_name.startswith("google.protobuf."):
                words.extend(f.name for f in inner.fields)
    return tuple(words)


def calm_json_values() -> st.SearchStrategy[Any]:
    """Plain JSON values: short text, finite numbers, booleans, null, small containers."""
    leaves = st.one_of(
        st.none(),
        st.booleans(),
        st.floats(-1e6, 1e6, allow_nan=False),
        st.text(alphabet=_WORDS, max_size=12),
    )
    return st.recursive(
        leaves,
        lambda children: st.one_of(
            st.lists(children, max_size=3),
            st.dictionaries(st.text(alphabet=_WORDS, min_size=1, max_size=8), children, max_size=3),
        ),
        max_leaves=6,
    )


def calm_struct_dicts() -> st.SearchStrategy[dict[str, Any]]:
    """Objects for Struct fields that a service may well accept."""
    return st.one_of(
        st.sampled_from(SEED_STRUCTS),
        st.dictionaries(
            st.text(alphabet=_WORDS, min_size=1, max_size=8), calm_json_values(), max_size=4
        ),
        st.just({}),
    )


_WORDS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _-.é"


_INTEGER_BOUNDS = {
    FieldDescriptor.TYPE_INT32: INT32,
    FieldDescriptor.TYPE_SINT32: INT32,
    FieldDescriptor.TYPE_SFIXED32: INT32,
    FieldDescriptor.TYPE_INT64: INT64,
    FieldDescriptor.TYPE_SINT64: INT64,
    FieldDescriptor.TYPE_SFIXED64: INT64,
    FieldDescriptor.TYPE_UINT32: UINT32,
    FieldDescriptor.TYPE_FIXED32: UINT32,
    FieldDescriptor.TYPE_UINT64: UINT64,
    FieldDescriptor.TYPE_FIXED64: UINT64,
}

_MASK_WORDS = (
    "display_name",
    "description",
    "name",
    "id",
    "role",
    "plan",
    "settings",
    "email",
    "status",
    "source_config",
    "target_config",
    "progress",
    "etag",
    "create_time",
    "metadata",
    "settings.theme",
    "*",
    "",
    "DisplayName",
    "a.b.c",
)


def _mask_paths() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(_MASK_WORDS), st.text(max_size=12))


def _bytes() -> st.SearchStrategy[bytes]:
    envelopes = json_values(max_leaves=6).map(lambda value: json.dumps(value).encode())
    dsse = st.builds(
        lambda payload, sig: json.dumps(
            {
                "payloadType": "application/vnd.in-toto+json",
                "payload": payload,
                "signatures": [{"keyid": "0" * 64, "sig": sig}],
            }
        ).encode(),
        st.sampled_from(("", "e30=", "!!!", "eyJfdHlwZSI6IngifQ==")),
        st.sampled_from(("", "MEUCIQ==", "not base64")),
    )
    return st.one_of(
        st.binary(max_size=64),
        envelopes,
        dsse,
        st.sampled_from((b"", b"\x00", b"{", b"\xff\xfe", b"[]")),
        st.just(b"\x00" * HUGE),
    )


def _is_map(field: FieldDescriptor) -> bool:
    return (
        field.type == FieldDescriptor.TYPE_MESSAGE
        and field.is_repeated
        and field.message_type.GetOptions().map_entry
    )


def _assign(message: Message, field: FieldDescriptor, value: Any) -> None:
    target = getattr(message, field.name)
    if _is_map(field):
        value_field = field.message_type.fields_by_name["value"]
        for key, item in value.items():
            if value_field.type == FieldDescriptor.TYPE_MESSAGE:
                target[key].CopyFrom(item)
            else:
                target[key] = item
    elif field.is_repeated:
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            for item in value:
                target.add().CopyFrom(item)
        else:
            target.extend(value)
    elif field.type == FieldDescriptor.TYPE_MESSAGE:
        target.CopyFrom(value)
    else:
        setattr(message, field.name, value)


def _filled(struct: Any, value: dict[str, Any]) -> Any:
    struct.update(value)
    return struct


def _value_of(value_class: Any, value: Any) -> Any:
    from google.protobuf import struct_pb2

    holder = struct_pb2.Struct()
    holder.update({"v": value})
    out = value_class()
    out.CopyFrom(holder.fields["v"])
    return out


def _list_of(list_class: Any, values: list[Any]) -> Any:
    out = list_class()
    out.extend(values)
    return out
