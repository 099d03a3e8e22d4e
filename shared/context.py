"""What the code serving a call knows of it: the RPC's method, the request id, the deadline.

The shared interceptor sets them when a call enters (`begin_call`); each call runs in its
own task, so each sees its own values. Outside a call (job workers, relays) the method is
empty and the request id too, unless the work runs inside `request_id_scope(...)`, and there
is no deadline. Outgoing calls (shared/client.py) send the request id on and never wait
longer than the caller's remaining time.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Iterator

# The metadata key that carries a request's id from service to service.
REQUEST_ID_HEADER = "x-request-id"

_method: contextvars.ContextVar[str] = contextvars.ContextVar("sensei_method", default="")
_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("sensei_request_id", default="")
# When the caller stops waiting, on the monotonic clock; None: the caller set no deadline.
_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "sensei_deadline", default=None
)


def begin_call(method: str, request_id: str, time_remaining: float | None = None) -> None:
    """Marks the running task as serving `method` for request `request_id` (the interceptor),
    whose caller waits `time_remaining` more seconds (None: no deadline)."""
    _method.set(method)
    _request_id.set(request_id)
    _deadline.set(None if time_remaining is None else time.monotonic() + time_remaining)


def remaining_time() -> float | None:
    """Seconds until the caller of the call being served stops waiting; None: no deadline."""
    deadline = _deadline.get()
    return None if deadline is None else max(0.0, deadline - time.monotonic())


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
