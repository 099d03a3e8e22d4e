"""Evaluate a gRPC `weaviate.v1.Filters` tree against stored objects.

Text operands are tokenized with the property's tokenization, as Weaviate's inverted
index does: `equal("add column")` on a `word` property matches every object whose
text contains both tokens, not only the exact string. Reference, geo and
cross-reference count filters are not supported.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from typing import Any

from weaviate.proto.v1 import base_pb2

from .errors import InvalidInput, Unsupported
from .schema import PropertyDef
from .store import Collection, StoredObject
from .values import normalize_uuid, parse_date, tokenize

Op = base_pb2.Filters.Operator
_ID = "_id"
_TIMESTAMPS = {
    "_creationTimeUnix": "creation_time_ms",
    "_lastUpdateTimeUnix": "last_update_time_ms",
}


def _operand(node: base_pb2.Filters) -> Any:
    kind = node.WhichOneof("test_value")
    if kind is None:
        return None
    value = getattr(node, kind)
    if kind.endswith("_array"):
        return list(value.values)
    if kind == "value_geo":
        raise Unsupported("geo-range filters are not supported by the Weaviate test server")
    return value


def _target(node: base_pb2.Filters) -> str:
    if node.HasField("target"):
        kind = node.target.WhichOneof("target")
        if kind != "property":
            raise Unsupported(f"{kind} filter targets are not supported by the test server")
        return str(node.target.property)
    if len(node.on) == 1:
        return str(node.on[0])
    raise Unsupported("reference-path filters are not supported by the Weaviate test server")


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


class _Leaf:
    """One comparison, with the stored values and the operand brought to comparable types."""

    def __init__(self, collection: Collection, node: base_pb2.Filters) -> None:
        self.operator = node.operator
        self.path = _target(node)
        self.operand = _operand(node)
        self.length = self.path.startswith("len(") and self.path.endswith(")")
        name = self.path[4:-1] if self.length else self.path
        self.prop: PropertyDef | None = None
        if name not in (_ID, *_TIMESTAMPS):
            self.prop = collection.properties.get(name)
            if self.prop is None:
                raise InvalidInput(f"no such prop with name {name!r} found in class")
            if self.prop.is_reference:
                raise Unsupported("reference filters are not supported by the test server")
        self.name = name

    def stored(self, obj: StoredObject) -> list[Any]:
        if self.name == _ID:
            return [obj.uuid]
        if self.name in _TIMESTAMPS:
            return [getattr(obj, _TIMESTAMPS[self.name])]
        value = obj.properties.get(self.name)
        if self.length:
            return [0 if value is None else len(value)]
        return _as_list(value)

    def convert(self, value: Any) -> Any:
        """An operand value in the stored values' domain."""
        if self.length:
            return value
        if self.name == _ID:
            return normalize_uuid(value)
        if self.name in _TIMESTAMPS:
            if isinstance(value, str):
                return int(parse_date(value).timestamp() * 1000)
            return value
        assert self.prop is not None
        base = self.prop.data_type.removesuffix("[]")
        if base == "date" and isinstance(value, str):
            return parse_date(value)
        if base == "uuid" and isinstance(value, str):
            return normalize_uuid(value)
        return value

    def normalize_stored(self, values: list[Any]) -> list[Any]:
        if (
            self.prop is not None
            and not self.length
            and self.prop.data_type.removesuffix("[]") == "date"
        ):
            return [parse_date(v) for v in values]
        return values

    @property
    def is_text(self) -> bool:
        return (
            self.prop is not None
            and not self.length
            and self.prop.data_type.removesuffix("[]") == "text"
        )

    def tokens(self, text: str) -> list[str]:
        assert self.prop is not None
        return tokenize(text, self.prop.tokenization)

    def matches(self, obj: StoredObject) -> bool:
        raw = self.stored(obj)
        if self.operator == Op.OPERATOR_IS_NULL:
            return (len(raw) == 0) == bool(self.operand)
        if self.operand is None:
            raise InvalidInput(f"filter on {self.path!r} has no value")
        values = self.normalize_stored(raw)
        if self.is_text:
            return self._text_matches(values)
        operands = [self.convert(v) for v in _as_list(self.operand)]
        if self.operator == Op.OPERATOR_CONTAINS_ANY:
            return any(v in values for v in operands)
        if self.operator == Op.OPERATOR_CONTAINS_ALL:
            return all(v in values for v in operands)
        if self.operator == Op.OPERATOR_CONTAINS_NONE:
            return not any(v in values for v in operands)
        if self.operator == Op.OPERATOR_LIKE:
            return any(fnmatch.fnmatchcase(str(v), str(operands[0])) for v in values)
        compare = _COMPARISONS.get(self.operator)
        if compare is None:
            raise Unsupported(f"filter operator {Op.Name(self.operator)} is not supported")
        operand = operands[0]
        if self.operator == Op.OPERATOR_NOT_EQUAL:
            return not any(v == operand for v in values)
        return any(compare(v, operand) for v in values if v is not None)

    def _text_matches(self, values: list[Any]) -> bool:
        stored_tokens = {t for v in values for t in self.tokens(str(v))}
        operands = [str(v) for v in _as_list(self.operand)]

        def contains(text: str) -> bool:
            wanted = self.tokens(text)
            return bool(wanted) and all(t in stored_tokens for t in wanted)

        op = self.operator
        if op == Op.OPERATOR_EQUAL:
            return contains(operands[0])
        if op == Op.OPERATOR_NOT_EQUAL:
            return not contains(operands[0])
        if op == Op.OPERATOR_CONTAINS_ANY:
            return any(contains(v) for v in operands)
        if op == Op.OPERATOR_CONTAINS_ALL:
            return all(contains(v) for v in operands)
        if op == Op.OPERATOR_CONTAINS_NONE:
            return not any(contains(v) for v in operands)
        if op == Op.OPERATOR_LIKE:
            assert self.prop is not None
            pattern = operands[0]
            if self.prop.tokenization in ("word", "lowercase", None):
                pattern = pattern.lower()
            return any(fnmatch.fnmatchcase(t, pattern) for t in stored_tokens)
        compare = _COMPARISONS.get(op)
        if compare is None:
            raise Unsupported(f"filter operator {Op.Name(op)} is not supported")
        return any(compare(str(v), operands[0]) for v in values)


_COMPARISONS: dict[int, Callable[[Any, Any], bool]] = {
    Op.OPERATOR_EQUAL: lambda a, b: a == b,
    Op.OPERATOR_GREATER_THAN: lambda a, b: a > b,
    Op.OPERATOR_GREATER_THAN_EQUAL: lambda a, b: a >= b,
    Op.OPERATOR_LESS_THAN: lambda a, b: a < b,
    Op.OPERATOR_LESS_THAN_EQUAL: lambda a, b: a <= b,
}


Predicate = Callable[[StoredObject], bool]


def compile_filter(collection: Collection, node: base_pb2.Filters) -> Predicate:
    """A predicate for `node`; raises InvalidInput/Unsupported up front, not per object."""
    op = node.operator
    if op in (Op.OPERATOR_AND, Op.OPERATOR_OR, Op.OPERATOR_NOT):
        children = [compile_filter(collection, child) for child in node.filters]
        if op == Op.OPERATOR_AND:
            return lambda obj: all(child(obj) for child in children)
        if op == Op.OPERATOR_OR:
            return lambda obj: any(child(obj) for child in children)
        if len(children) != 1:
            raise InvalidInput("a NOT filter takes exactly one operand")
        return lambda obj: not children[0](obj)
    if op == Op.OPERATOR_WITHIN_GEO_RANGE:
        raise Unsupported("geo-range filters are not supported by the Weaviate test server")
    return _Leaf(collection, node).matches
