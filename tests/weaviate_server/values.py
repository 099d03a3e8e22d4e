"""Property values: type checks against the schema, dates, and Weaviate's text tokenization."""

from __future__ import annotations

import datetime
import re
import uuid as uuid_lib
from typing import Any

from .errors import InvalidInput
from .schema import PropertyDef

_WORD_SPLIT = re.compile(r"[^\w]+|_", re.UNICODE)


def parse_date(text: str) -> datetime.datetime:
    """An RFC 3339 timestamp as an aware datetime (naive input is taken as UTC)."""
    value = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.UTC)
    return value


def is_date_string(text: str) -> bool:
    """True for strings Weaviate's auto-schema would take as a date."""
    if not re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}", text):
        return False
    try:
        parse_date(text)
    except ValueError:
        return False
    return True


def normalize_uuid(text: str) -> str:
    """The canonical lower-case hyphenated form of a uuid, or InvalidInput."""
    try:
        return str(uuid_lib.UUID(str(text)))
    except ValueError as e:
        raise InvalidInput(f"invalid uuid {text!r}") from e


def tokenize(text: str, tokenization: str | None) -> list[str]:
    """Split text as Weaviate's inverted index does (trigram/gse/kagome fall back to word)."""
    if tokenization == "field":
        stripped = text.strip()
        return [stripped] if stripped else []
    if tokenization == "whitespace":
        return text.split()
    if tokenization == "lowercase":
        return text.lower().split()
    return [token for token in _WORD_SPLIT.split(text.lower()) if token]


def _scalar(prop: PropertyDef, base: str, value: Any, where: str) -> Any:
    if base == "text":
        if not isinstance(value, str):
            raise InvalidInput(f"{where}: not a string: {value!r}")
        return value
    if base == "int":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidInput(f"{where}: not an integer: {value!r}")
        if isinstance(value, float):
            if not value.is_integer():
                raise InvalidInput(f"{where}: not an integer: {value!r}")
            return int(value)
        return value
    if base == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidInput(f"{where}: not a number: {value!r}")
        return float(value)
    if base == "boolean":
        if not isinstance(value, bool):
            raise InvalidInput(f"{where}: not a boolean: {value!r}")
        return value
    if base == "date":
        if not isinstance(value, str) or not is_date_string(value):
            raise InvalidInput(f"{where}: not an RFC 3339 date: {value!r}")
        return value
    if base == "uuid":
        return normalize_uuid(value)
    if base == "object":
        if not isinstance(value, dict):
            raise InvalidInput(f"{where}: not an object: {value!r}")
        return value
    return value


def coerce_value(prop: PropertyDef, value: Any, class_name: str) -> Any:
    """Check a value against its property's dataType and normalize it (e.g. 3.0 -> 3 for int)."""
    where = f"invalid {prop.data_type} property {prop.name!r} on class {class_name!r}"
    if value is None or prop.is_reference:
        return value
    if prop.data_type.endswith("[]"):
        if not isinstance(value, list):
            raise InvalidInput(f"{where}: not a list: {value!r}")
        base = prop.data_type[:-2]
        return [_scalar(prop, base, v, where) for v in value]
    return _scalar(prop, prop.data_type, value, where)
