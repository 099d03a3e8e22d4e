"""Conversions between protobuf well-known types and Python values."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

from google.protobuf import json_format, struct_pb2, timestamp_pb2

from shared.errors import InvalidArgument

MAX_STRUCT_DEPTH = 32
MAX_STRUCT_BYTES = 1024 * 1024


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def timestamp(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    """A Timestamp of an aware datetime (None stays None; naive means local time)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.astimezone(UTC)
    # What Timestamp.FromDatetime computes, 4x faster: list responses convert many times.
    since = value - _EPOCH
    return timestamp_pb2.Timestamp(
        seconds=since.days * 86_400 + since.seconds, nanos=since.microseconds * 1000
    )


def to_datetime(ts: timestamp_pb2.Timestamp) -> datetime:
    """An aware UTC datetime of a Timestamp."""
    return ts.ToDatetime(tzinfo=UTC)


def struct_of(value: dict[str, Any] | None) -> struct_pb2.Struct:
    """A Struct of a JSON-able dict."""
    out = struct_pb2.Struct()
    if value:
        out.update(value)
    return out


def dict_of(struct: struct_pb2.Struct, field_name: str) -> dict[str, Any]:
    """A JSON-able dict of a Struct, refusing what JSON cannot hold or what is too big.

    NaN/Infinity, nesting deeper than 32 and bodies over 1 MiB are INVALID_ARGUMENT.
    """
    try:
        value: dict[str, Any] = json_format.MessageToDict(struct)
    except ValueError:  # NaN/Infinity: protobuf refuses to render them as JSON
        raise InvalidArgument.single(
            field_name, "numbers must be finite (no NaN or Infinity)"
        ) from None
    _check_json(value, field_name, 0)
    if len(json.dumps(value)) > MAX_STRUCT_BYTES:
        raise InvalidArgument.single(
            field_name, f"must be at most {MAX_STRUCT_BYTES} bytes of JSON"
        )
    return value


def _check_json(value: Any, field_name: str, depth: int) -> None:
    if depth > MAX_STRUCT_DEPTH:
        raise InvalidArgument.single(field_name, f"must be nested at most {MAX_STRUCT_DEPTH} deep")
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidArgument.single(field_name, "numbers must be finite (no NaN or Infinity)")
    if isinstance(value, dict):
        for item in value.values():
            _check_json(item, field_name, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_json(item, field_name, depth + 1)
