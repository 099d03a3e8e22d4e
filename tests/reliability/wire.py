"""Request bytes the wire carries but no valid message has: invalid UTF-8 in a string field,
a field cut short, a Struct nested past the protobuf parser's recursion limit (100)."""

from __future__ import annotations

from google.protobuf import descriptor, message_factory
from google.protobuf.descriptor import FieldDescriptor

LENGTH_DELIMITED = 2
# JSON levels of the deep Struct: three message levels each, well past the limit of 100.
DEEP_STRUCT_LEVELS = 60


def varint(value: int) -> bytes:
    """Protobuf base-128 varint of a non-negative integer."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if not value:
            out.append(byte)
            return bytes(out)
        out.append(byte | 0x80)


def length_delimited(number: int, body: bytes) -> bytes:
    """Field `number` (wire type 2) holding `body`."""
    return varint((number << 3) | LENGTH_DELIMITED) + varint(len(body)) + body


def _path_to(
    desc: descriptor.Descriptor, wanted: str, depth: int = 0
) -> list[FieldDescriptor] | None:
    """Fields leading from `desc` to a field of kind `wanted` ("string" or "struct")."""
    for field in desc.fields:
        if field.is_repeated:
            continue
        if wanted == "string" and field.type == FieldDescriptor.TYPE_STRING:
            return [field]
        if field.type != FieldDescriptor.TYPE_MESSAGE:
            continue
        if wanted == "struct" and field.message_type.full_name == "google.protobuf.Struct":
            return [field]
    if depth >= 3:
        return None
    for field in desc.fields:
        if field.type == FieldDescriptor.TYPE_MESSAGE and not field.is_repeated:
            if field.message_type.full_name.startswith("google.protobuf."):
                continue
            rest = _path_to(field.message_type, wanted, depth + 1)
            if rest is not None:
                return [field, *rest]
    return None


def first_string_field(desc: descriptor.Descriptor) -> list[FieldDescriptor] | None:
    """The path to the first singular string field (directly or in a nested message)."""
    return _path_to(desc, "string")


def _wrap(path: list[FieldDescriptor], leaf: bytes) -> bytes:
    body = leaf
    for field in reversed(path[:-1]):
        body = length_delimited(field.number, body)
    return body


def invalid_utf8_payload(desc: descriptor.Descriptor) -> bytes:
    """A request whose first string field holds bytes that are not UTF-8."""
    path = first_string_field(desc)
    assert path is not None
    return _wrap(path, length_delimited(path[-1].number, b"organizations/\xff\xfe\xc3("))


def truncated_payload(desc: descriptor.Descriptor) -> bytes:
    """A request whose first field claims 100 bytes and carries 3."""
    number = desc.fields[0].number if desc.fields else 1
    return varint((number << 3) | LENGTH_DELIMITED) + varint(100) + b"abc"


def deep_struct_payload(desc: descriptor.Descriptor) -> bytes | None:
    """A request with a Struct nested past the parser's limit (None: no Struct field)."""
    path = _path_to(desc, "struct")
    if path is None:
        return None
    struct_class = message_factory.GetMessageClass(path[-1].message_type)
    value: object = 1.0
    for _ in range(DEEP_STRUCT_LEVELS):
        value = {"a": value}
    struct = struct_class()
    struct.update(value)  # type: ignore[arg-type]
    return _wrap(path, length_delimited(path[-1].number, struct.SerializeToString()))
