"""Checks every request passes before any handler sees it.

Two kinds of input a service could otherwise mistake for its own bug:
- bytes that do not parse as the request message (invalid UTF-8 in a string, a truncated
  field, nesting past protobuf's limit) — refused as INVALID_ARGUMENT instead of UNKNOWN;
- values PostgreSQL or Python cannot hold: U+0000 in any string (text and jsonb refuse it)
  and Timestamps outside 0001-01-01..9999-12-31 or with nanos outside 0..999,999,999.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf import descriptor
from google.protobuf.message import DecodeError, Message

from shared.errors import FieldViolation, InvalidArgument

MIN_TIMESTAMP_SECONDS = -62_135_596_800  # 0001-01-01T00:00:00Z
MAX_TIMESTAMP_SECONDS = 253_402_300_799  # 9999-12-31T23:59:59Z
MAX_VIOLATIONS = 20


@dataclass(frozen=True)
class Undecodable:
    """Stands in for a request whose bytes did not parse."""

    reason: str


def tolerant_deserializer(
    deserialize: Callable[[bytes], Any] | None,
) -> Callable[[bytes], Any] | None:
    """Wraps a request deserializer so parse failures reach the handler as `Undecodable`."""
    if deserialize is None:
        return None

    def parse(data: bytes) -> Any:
        try:
            return deserialize(data)
        except (DecodeError, RecursionError, ValueError, UnicodeDecodeError) as exc:
            return Undecodable(str(exc) or type(exc).__name__)

    return parse


def check_request(request: Any) -> None:
    """Raises INVALID_ARGUMENT for an unparsable request or values no store can hold."""
    if isinstance(request, Undecodable):
        raise InvalidArgument(
            [FieldViolation("request", f"does not parse as the request message: {request.reason}")],
            reason="MALFORMED_REQUEST",
        )
    if isinstance(request, Message):
        violations: list[FieldViolation] = []
        _walk(request, "", violations)
        if violations:
            raise InvalidArgument(violations)


def _walk(message: Message, prefix: str, out: list[FieldViolation]) -> None:
    if len(out) >= MAX_VIOLATIONS:
        return
    if message.DESCRIPTOR.full_name == "google.protobuf.Timestamp":
        _check_timestamp(message, prefix, out)
        return
    for field, value in message.ListFields():
        path = f"{prefix}.{field.name}" if prefix else field.name
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            value_field = field.message_type.fields_by_name["value"]
            for key, item in value.items():
                item_path = f"{path}[{key!r}]"
                _check_string(key, item_path, out)
                _check_value(value_field, item, item_path, out)
        elif field.is_repeated:
            for index, item in enumerate(value):
                _check_value(field, item, f"{path}[{index}]", out)
        else:
            _check_value(field, value, path, out)


def _check_value(
    field: descriptor.FieldDescriptor, value: Any, path: str, out: list[FieldViolation]
) -> None:
    if field.type == descriptor.FieldDescriptor.TYPE_STRING:
        _check_string(value, path, out)
    elif field.type == descriptor.FieldDescriptor.TYPE_MESSAGE:
        _walk(value, path, out)


def _check_string(value: Any, path: str, out: list[FieldViolation]) -> None:
    if isinstance(value, str) and "\x00" in value:
        out.append(FieldViolation(path, "must not contain the NUL character (U+0000)"))


def _check_timestamp(message: Any, path: str, out: list[FieldViolation]) -> None:
    if not 0 <= message.nanos <= 999_999_999:
        out.append(FieldViolation(path, "nanos must be between 0 and 999,999,999"))
    elif not MIN_TIMESTAMP_SECONDS <= message.seconds <= MAX_TIMESTAMP_SECONDS:
        out.append(FieldViolation(path, "must be between 0001-01-01 and 9999-12-31"))
