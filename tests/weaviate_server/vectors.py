"""Vector wire formats (little-endian float32 bytes) and Weaviate's distance metrics."""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Sequence

from weaviate.proto.v1 import base_pb2

from .errors import InvalidInput
from .store import Vector


def unpack_single(data: bytes) -> list[float]:
    if len(data) % 4:
        raise InvalidInput("vector bytes are not a whole number of float32 values")
    return list(struct.unpack(f"<{len(data) // 4}f", data))


def unpack_multi(data: bytes) -> list[list[float]]:
    """Multi-vector bytes: a uint16 dimension, then the float32 values row by row."""
    (dims,) = struct.unpack("<H", data[:2])
    flat = unpack_single(data[2:])
    if dims == 0 or len(flat) % dims:
        raise InvalidInput("malformed multi-vector bytes")
    return [flat[i : i + dims] for i in range(0, len(flat), dims)]


def pack_single(vector: Sequence[float]) -> bytes:
    return struct.pack(f"<{len(vector)}f", *vector)


def pack_multi(vectors: Sequence[Sequence[float]]) -> bytes:
    flat = [x for row in vectors for x in row]
    return struct.pack("<H", len(vectors[0])) + pack_single(flat)


def unpack_vectors(message: base_pb2.Vectors) -> Vector:
    if message.type == base_pb2.Vectors.VECTOR_TYPE_MULTI_FP32:
        return unpack_multi(message.vector_bytes)
    return unpack_single(message.vector_bytes)


def pack_vectors(name: str, vector: Vector) -> base_pb2.Vectors:
    if vector and isinstance(vector[0], list):
        return base_pb2.Vectors(
            name=name,
            vector_bytes=pack_multi(vector),  # type: ignore[arg-type]
            type=base_pb2.Vectors.VECTOR_TYPE_MULTI_FP32,
        )
    return base_pb2.Vectors(
        name=name,
        vector_bytes=pack_single(vector),  # type: ignore[arg-type]
        type=base_pb2.Vectors.VECTOR_TYPE_SINGLE_FP32,
    )


def _to_f32(x: float) -> float:
    return float(struct.unpack("<f", struct.pack("<f", x))[0])


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    if norm == 0:
        return 1.0
    return 1.0 - sum(x * y for x, y in zip(a, b, strict=True)) / norm


def _dot(a: Sequence[float], b: Sequence[float]) -> float:
    return -sum(x * y for x, y in zip(a, b, strict=True))


def _l2_squared(a: Sequence[float], b: Sequence[float]) -> float:
    return sum((x - y) ** 2 for x, y in zip(a, b, strict=True))


def _manhattan(a: Sequence[float], b: Sequence[float]) -> float:
    return sum(abs(x - y) for x, y in zip(a, b, strict=True))


def _hamming(a: Sequence[float], b: Sequence[float]) -> float:
    return float(sum(1 for x, y in zip(a, b, strict=True) if x != y))


_METRICS: dict[str, Callable[[Sequence[float], Sequence[float]], float]] = {
    "cosine": _cosine,
    "dot": _dot,
    "l2-squared": _l2_squared,
    "manhattan": _manhattan,
    "hamming": _hamming,
}


def _rows(vector: Vector) -> list[list[float]]:
    """A vector as a list of rows: one row, or the rows of a multi-vector."""
    if vector and isinstance(vector[0], list):
        return [list(row) for row in vector]  # type: ignore[union-attr]
    return [list(vector)]  # type: ignore[arg-type]


def distance(metric: str, query: Vector, stored: Vector) -> float:
    """Weaviate's distance between two vectors (multi-vectors: late interaction, MaxSim)."""
    measure = _METRICS[metric]
    queries, stored_rows = _rows(query), _rows(stored)
    for q in queries:
        for s in stored_rows:
            if len(q) != len(s):
                raise InvalidInput(f"vector lengths don't match: {len(q)} vs {len(s)}")
    if len(queries) == 1 and len(stored_rows) == 1:
        return _to_f32(measure(queries[0], stored_rows[0]))
    total = 0.0
    for q in queries:
        total += min(measure(q, s) for s in stored_rows)
    return _to_f32(total)


def certainty(metric: str, dist: float) -> float:
    """Certainty exists only for cosine: 1 - distance / 2."""
    if metric != "cosine":
        raise InvalidInput(
            "can't compute and return certainty when vector index is not configured "
            "with cosine distance"
        )
    return 1.0 - dist / 2.0
