"""Deterministic edge cases for every field of a request: a plausible request with one field
at a time set to a boundary value (NUL in text, NaN, out-of-range times, unknown enum
numbers, NUL inside a Struct, ...). Complements the random fuzzer, which may need many
examples to hit one particular field with one particular value."""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from google.protobuf import descriptor, message_factory, struct_pb2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from tests.reliability.messages import (
    CONNECTION_CONFIG,
    INT32,
    INT64,
    SCHEMA_DEFINITION,
    Names,
    deep_dict,
)

TEXT_EDGES = ("a\x00b", "é" * 20_000, " ", "😀")
DOUBLE_EDGES = (math.nan, math.inf, -math.inf, -1.0, 1e308)
INT_EDGES = {32: (-1, INT32[0], INT32[1]), 64: (-1, INT64[0], INT64[1])}
ENUM_EDGES = (12345, -1)
TIMESTAMP_EDGES = (
    (253402300800, 0),  # year 10000
    (-62135596801, 0),  # year 0
    (0, 1_000_000_000),
    (0, -1),
)
STRUCT_EDGES: tuple[dict[str, Any], ...] = (
    {"text": "nul \x00 inside"},
    {"key\x00": 1},
    {"n": math.nan},
    {"n": 1e308, "m": -1e308, "tiny": 5e-324},
    deep_dict(30),
    {"s": "\ud7ff\ue000\uffff"},
)
BYTES_EDGES = (b"\x00\xff", b'{"payloadType": "\\u0000"}')


@dataclass(frozen=True)
class Case:
    """One request: which field (dotted path) holds which edge value."""

    field: str
    value: str
    request: Message


def calm_request(desc: descriptor.Descriptor, names: Names, method: str, depth: int = 0) -> Message:
    """A plausible request: real names where they fit, short words, sane numbers."""
    message = message_factory.GetMessageClass(desc)()
    if depth > 2:
        return message
    for field in desc.fields:
        if field.containing_oneof is not None and _oneof_choice(field.containing_oneof) != field:
            continue  # one member of a oneof: its text member, if it has one
        value = _calm_value(field, names, method, depth)
        if value is None:
            continue
        _set(message, field, value)
    return message


def _calm_value(field: FieldDescriptor, names: Names, method: str, depth: int) -> Any:
    kind = field.type
    if kind == FieldDescriptor.TYPE_MESSAGE:
        full_name = field.message_type.full_name
        if field.message_type.GetOptions().map_entry:
            return None
        if full_name == "google.protobuf.Struct":
            if field.name == "definition":
                return SCHEMA_DEFINITION
            if field.name.endswith("_config"):
                return CONNECTION_CONFIG
            return {"note": "calm"}
        if full_name == "google.protobuf.Timestamp":
            later = 7200 if field.name.startswith("end") else 0
            return (int(time.time()) - 3600 + later, 0)
        if full_name == "google.protobuf.FieldMask":
            return None
        if full_name.startswith("google.protobuf."):
            return None
        return calm_request(field.message_type, names, method, depth + 1)
    fresh = field.name not in _UNIQUE or method.startswith(("Create", "Update"))
    if kind == FieldDescriptor.TYPE_STRING and field.name in _FRESH and fresh:
        return _FRESH[field.name]()
    if kind == FieldDescriptor.TYPE_STRING and field.name.endswith("_url"):
        return "https://example.test/picture.png"
    if kind == FieldDescriptor.TYPE_STRING and field.name.endswith("_month"):
        return time.strftime("%Y-%m")
    if kind == FieldDescriptor.TYPE_STRING and field.name == "ip_address":
        return "10.1.2.3"
    if kind == FieldDescriptor.TYPE_STRING:
        preferred = names.preferred(field.name, method)
        value = preferred[0] if preferred else "calm"
        return [value] if field.is_repeated else value
    if kind == FieldDescriptor.TYPE_ENUM:
        # The last value: a terminal status, the highest plan, the least role.
        numbers = [v.number for v in field.enum_type.values if v.number]
        return numbers[-1:] if field.is_repeated else (numbers[-1] if numbers else 0)
    if field.is_repeated:
        return None
    if kind in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return 0.5
    if kind == FieldDescriptor.TYPE_BOOL:
        return False
    if kind == FieldDescriptor.TYPE_BYTES:
        return b"{}"
    return 10


# Fields whose plausible value is new on every request (or empty: no etag, first page).
_FRESH = {
    "request_id": lambda: str(uuid.uuid4()),
    "etag": lambda: "",
    "page_token": lambda: "",
    "slug": lambda: f"edge-{uuid.uuid4().hex[:12]}",
    "email": lambda: f"edge-{uuid.uuid4().hex[:12]}@example.test",
}
# Unique values: fresh when creating or updating, the world's own otherwise (lookups).
_UNIQUE = {"slug", "email"}


def _oneof_choice(oneof: descriptor.OneofDescriptor) -> FieldDescriptor:
    for field in oneof.fields:
        if field.type == FieldDescriptor.TYPE_STRING:
            return field
    return oneof.fields[0]


def _set(message: Message, field: FieldDescriptor, value: Any) -> None:
    target = getattr(message, field.name)
    if isinstance(value, Message) and field.is_repeated:
        del target[:]
        target.add().CopyFrom(value)
    elif isinstance(value, Message):
        target.CopyFrom(value)
    elif field.type == FieldDescriptor.TYPE_MESSAGE:
        full_name = field.message_type.full_name
        if full_name == "google.protobuf.Struct":
            target.Clear()
            target.update(value)
        elif full_name == "google.protobuf.Timestamp":
            target.seconds, target.nanos = value
    elif field.is_repeated:
        del target[:]
        target.extend(value)
    else:
        setattr(message, field.name, value)


def edge_cases(desc: descriptor.Descriptor, names: Names, method: str) -> Iterator[Case]:
    """Every field of a calm request (one level of nesting too) at each of its edge values."""
    for path in _field_paths(desc):
        field = path[-1]
        for label, value in _edges(field):
            request = calm_request(desc, names, method)
            holder: Any = request
            for step in path[:-1]:
                holder = getattr(holder, step.name)
            if field.containing_oneof is not None:
                holder.ClearField(_oneof_choice(field.containing_oneof).name)
            _set(holder, field, value)
            if len(path) == 2:
                _mask_only(request, path[1].name)
            yield Case(".".join(step.name for step in path), label, request)


def _mask_only(request: Message, path: str) -> None:
    """Points the request's FieldMask (Update RPCs) at the field under test."""
    for field in request.DESCRIPTOR.fields:
        if (
            field.type == FieldDescriptor.TYPE_MESSAGE
            and field.message_type.full_name == "google.protobuf.FieldMask"
        ):
            mask = getattr(request, field.name)
            del mask.paths[:]
            mask.paths.append(path)


def _field_paths(desc: descriptor.Descriptor) -> Iterator[list[FieldDescriptor]]:
    for field in desc.fields:
        nested = field.type == FieldDescriptor.TYPE_MESSAGE
        if nested and not field.message_type.full_name.startswith("google.protobuf."):
            if field.is_repeated:
                continue
            for inner in field.message_type.fields:
                if inner.type != FieldDescriptor.TYPE_MESSAGE or (
                    inner.message_type.full_name.startswith("google.protobuf.")
                ):
                    yield [field, inner]
        else:
            yield [field]


def _edges(field: FieldDescriptor) -> Iterator[tuple[str, Any]]:
    kind = field.type
    repeated = field.is_repeated
    if kind == FieldDescriptor.TYPE_MESSAGE:
        full_name = field.message_type.full_name
        if full_name == "google.protobuf.Struct" and not repeated:
            for value in STRUCT_EDGES:
                yield f"struct {_short(value)}", value
        elif full_name == "google.protobuf.Timestamp" and not repeated:
            for seconds, nanos in TIMESTAMP_EDGES:
                yield f"timestamp({seconds}, {nanos})", (seconds, nanos)
        return
    if kind == FieldDescriptor.TYPE_STRING:
        for text in TEXT_EDGES:
            yield f"text {_short(text)}", [text, text] if repeated else text
        if repeated:
            yield "1000 strings", [f"s{i}" for i in range(1000)]
        return
    if kind == FieldDescriptor.TYPE_ENUM:
        for number in ENUM_EDGES:
            yield f"enum {number}", [number] if repeated else number
        return
    if repeated:
        if kind in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
            yield "repeated nan", [math.nan, math.inf]
        return
    if kind in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        for number in DOUBLE_EDGES:
            yield f"double {number}", number
    elif kind == FieldDescriptor.TYPE_BYTES:
        for blob in BYTES_EDGES:
            yield f"bytes {blob[:12]!r}", blob
    elif kind in (FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_SINT32):
        for number in INT_EDGES[32]:
            yield f"int {number}", number
    elif kind in (FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_SINT64):
        for number in INT_EDGES[64]:
            yield f"int {number}", number


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def struct_of(value: dict[str, Any]) -> struct_pb2.Struct:
    """A Struct of a dict."""
    out = struct_pb2.Struct()
    out.update(value)
    return out
