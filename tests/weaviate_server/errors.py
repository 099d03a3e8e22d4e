"""Errors of the in-memory store; the REST and gRPC front ends map them to statuses."""


class StoreError(Exception):
    """A request the store refuses; the message is what Weaviate would say, roughly."""


class InvalidInput(StoreError):
    """Malformed or inconsistent input (REST 422, gRPC INVALID_ARGUMENT)."""


class NotFound(StoreError):
    """Unknown collection or object (REST 404, gRPC NOT_FOUND)."""


class AlreadyExists(StoreError):
    """Duplicate collection or object id (REST 422, gRPC ALREADY_EXISTS)."""


class Unsupported(StoreError):
    """A Weaviate feature this test server lacks (REST 501, gRPC UNIMPLEMENTED)."""
