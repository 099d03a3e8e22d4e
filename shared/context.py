"""What the code serving a call knows of it: the RPC's method and the request id.

The shared interceptor sets both when a call enters (`begin_call`); each call runs in its
own task, so each sees its own values. Outside a call (job workers, relays) the method is
empty and the request id too, unless the work runs inside `request_id_scope(...)`.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

# The metadata key that carries a request's id from service to service.
REQUEST_ID_HEADER = "x-request-id"

_method: contextvars.ContextVar[str] = contextvars.ContextVar("sensei_method", default="")
_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("sensei_request_id", default="")


def begin_call(method: str, request_id: str) -> None:
    """Marks the running task as serving `method` for request `request_id` (the interceptor)."""
    _method.set(method)
    _request_id.set(request_id)


def current_method() -> str:
    """The full path of the RPC being served (`/sensei.org.v1.OrganizationService/
    CreateOrganization`); "" outside a call."""
    return _method.get()


def current_request_id() -> str:
    """The id of the request being served (from `x-request-id` or generated)."""
    return _request_id.get()


@contextlib.contextmanager
def request_id_scope(request_id: str) -> Iterator[None]:
    """Runs a block as part of request `request_id`: its logs and outgoing calls carry it.

    For background work (job workers, relays) that wants one id per unit of work.
    """
    token = _request_id.set(request_id)
    try:
        yield
    finally:
        _request_id.reset(token)
