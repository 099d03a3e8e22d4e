"""Property values between the gRPC messages the client sends/parses and plain Python values."""

from __future__ import annotations

import struct
from typing import Any

from google.protobuf.json_format import MessageToDict
from weaviate.proto.v1 import base_pb2, batch_pb2, properties_pb2

from .schema import PropertyDef
from .values import is_date_string


def _float64s(data: bytes) -> list[float]:
    return list(struct.unpack(f"<{len(data) // 8}d", data))


def batch_properties(
    message: batch_pb2.BatchObject.Properties | base_pb2.ObjectPropertiesValue,
) -> dict[str, Any]:
    """The properties of a gRPC batch object (or nested object) as a dict."""
    props: dict[str, Any] = {}
    if message.HasField("non_ref_properties"):
        props.update(MessageToDict(message.non_ref_properties))
    for texts in message.text_array_properties:
        props[texts.prop_name] = list(texts.values)
    for ints in message.int_array_properties:
        props[ints.prop_name] = list(ints.values)
    for bools in message.boolean_array_properties:
        props[bools.prop_name] = list(bools.values)
    for n in message.number_array_properties:
        props[n.prop_name] = _float64s(n.values_bytes) if n.values_bytes else list(n.values)
    for o in message.object_properties:
        props[o.prop_name] = batch_properties(o.value)
    for oa in message.object_array_properties:
        props[oa.prop_name] = [batch_properties(v) for v in oa.values]
    for name in message.empty_list_props:
        props[name] = []
    if isinstance(message, batch_pb2.BatchObject.Properties):
        for ref in message.single_target_ref_props:
            props[ref.prop_name] = [{"beacon": f"weaviate://localhost/{u}"} for u in ref.uuids]
        for mref in message.multi_target_ref_props:
            props[mref.prop_name] = [
                {"beacon": f"weaviate://localhost/{mref.target_collection}/{u}"} for u in mref.uuids
            ]
    return props


def _infer_type(value: Any) -> str:
    if isinstance(value, list):
        return f"{_infer_type(value[0])}[]" if value else "text[]"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "number"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, str) and is_date_string(value):
        return "date"
    return "text"


def _list_value(base: str, values: list[Any]) -> properties_pb2.ListValue:
    if base == "text":
        return properties_pb2.ListValue(text_values=properties_pb2.TextValues(values=values))
    if base == "int":
        packed = struct.pack(f"<{len(values)}q", *values)
        return properties_pb2.ListValue(int_values=properties_pb2.IntValues(values=packed))
    if base == "number":
        packed = struct.pack(f"<{len(values)}d", *values)
        return properties_pb2.ListValue(number_values=properties_pb2.NumberValues(values=packed))
    if base == "boolean":
        return properties_pb2.ListValue(bool_values=properties_pb2.BoolValues(values=values))
    if base == "date":
        return properties_pb2.ListValue(date_values=properties_pb2.DateValues(values=values))
    if base == "uuid":
        return properties_pb2.ListValue(uuid_values=properties_pb2.UuidValues(values=values))
    if base == "object":
        return properties_pb2.ListValue(
            object_values=properties_pb2.ObjectValues(values=[nested_properties(v) for v in values])
        )
    return properties_pb2.ListValue(
        text_values=properties_pb2.TextValues(values=[str(v) for v in values])
    )


def to_value(data_type: str, value: Any) -> properties_pb2.Value:
    """One property value as the `weaviate.v1.Value` the client decodes by its set field."""
    if value is None:
        return properties_pb2.Value(null_value="NULL_VALUE")
    if data_type.endswith("[]"):
        return properties_pb2.Value(list_value=_list_value(data_type[:-2], value))
    if data_type == "text":
        return properties_pb2.Value(text_value=value)
    if data_type == "int":
        return properties_pb2.Value(int_value=value)
    if data_type == "number":
        return properties_pb2.Value(number_value=value)
    if data_type == "boolean":
        return properties_pb2.Value(bool_value=value)
    if data_type == "date":
        return properties_pb2.Value(date_value=value)
    if data_type == "uuid":
        return properties_pb2.Value(uuid_value=value)
    if data_type == "object":
        return properties_pb2.Value(object_value=nested_properties(value))
    if data_type == "geoCoordinates":
        return properties_pb2.Value(
            geo_value=properties_pb2.GeoCoordinate(
                latitude=value.get("latitude", 0.0), longitude=value.get("longitude", 0.0)
            )
        )
    if data_type == "phoneNumber":
        return properties_pb2.Value(
            phone_value=properties_pb2.PhoneNumber(
                input=value.get("input", ""),
                default_country=value.get("defaultCountry", ""),
            )
        )
    if data_type == "blob":
        return properties_pb2.Value(blob_value=value)
    return properties_pb2.Value(text_value=str(value))


def nested_properties(value: dict[str, Any]) -> properties_pb2.Properties:
    """A nested object, its field types inferred from the Python values."""
    return properties_pb2.Properties(
        fields={k: to_value(_infer_type(v), v) for k, v in value.items()}
    )


def result_properties(
    properties: dict[str, Any], defs: dict[str, PropertyDef], wanted: set[str] | None
) -> properties_pb2.Properties:
    """Stored primitive properties (all, or those named in `wanted`) for a search result."""
    fields: dict[str, properties_pb2.Value] = {}
    for name, value in properties.items():
        prop = defs.get(name)
        if prop is None or prop.is_reference or (wanted is not None and name not in wanted):
            continue
        fields[name] = to_value(prop.data_type, value)
    return properties_pb2.Properties(fields=fields)
