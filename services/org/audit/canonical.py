"""RFC 8785 (JCS) bytes of an audit entry's hashed document, without the general encoder.

The document's keys and value types are fixed (strings, two integers, an optional string,
and `details`), so its canonical form is a template: keys in RFC 8785 order (all ASCII, so
UTF-16 order is byte order), strings escaped as RFC 8785 §3.2.2.2 says (exactly what
`json.encoder.encode_basestring`, the C encoder, does: `"`, `\\`, the two-letter escapes,
other controls as lower-case `\\u00xx`, everything else as is) and UTF-8. Only `details`,
arbitrary JSON, goes through the `rfc8785` library. `tests/org/test_audit_canonical.py`
checks byte equality with `rfc8785.dumps` of the whole document on random entries.
"""

from __future__ import annotations

import json.encoder
from collections.abc import Mapping
from typing import Any

import rfc8785

_INT_MAX = 2**53 - 1  # RFC 8785 numbers are IEEE doubles; rfc8785 refuses larger ints
_string = json.encoder.encode_basestring  # the C implementation where there is one


def _integer(value: int) -> str:
    if not -_INT_MAX <= value <= _INT_MAX:
        raise rfc8785.IntegerDomainError(value)
    return str(value)


def entry_document(
    *,
    version: int,
    entry_id: str,
    org_id: str,
    seq: int,
    event_id: str,
    user_id: str | None,
    actor: str,
    action: str,
    resource_type: str,
    resource_id: str,
    ip_address: str,
    service: str,
    details: Mapping[str, Any],
    occurred_at: str,
    created_at: str,
    prev_hash: str,
) -> bytes:
    """`rfc8785.dumps` of the entry's document (`details` already as doubles)."""
    before = "".join(
        (
            '{"action":',
            _string(action),
            ',"actor":',
            _string(actor),
            ',"created_at":',
            _string(created_at),
            ',"details":',
        )
    )
    after = "".join(
        (
            ',"event_id":',
            _string(event_id),
            ',"id":',
            _string(entry_id),
            ',"ip_address":',
            _string(ip_address),
            ',"occurred_at":',
            _string(occurred_at),
            ',"org_id":',
            _string(org_id),
            ',"prev_hash":',
            _string(prev_hash),
            ',"resource_id":',
            _string(resource_id),
            ',"resource_type":',
            _string(resource_type),
            ',"seq":',
            _integer(seq),
            ',"service":',
            _string(service),
            ',"user_id":',
            "null" if user_id is None else _string(user_id),
            ',"v":',
            _integer(version),
            "}",
        )
    )
    try:
        head, tail = before.encode(), after.encode()
    except UnicodeEncodeError as exc:  # a lone surrogate: as rfc8785 refuses it
        raise rfc8785.CanonicalizationError("input contains non-UTF-8 codepoints") from exc
    return b"".join((head, _details(details), tail))


def _details(details: Mapping[str, Any]) -> bytes:
    # The usual case, a flat object of ASCII keys holding text, booleans, null and
    # integral doubles below 2**53 (their shortest form is the integer itself), without
    # the library; anything else (fractions, nesting, other keys) through it.
    parts = []
    for key in sorted(details):
        if not key.isascii():
            return rfc8785.dumps(details)
        value = details[key]
        if isinstance(value, str):
            text = _string(value)
        elif value is True or value is False or value is None:
            text = "true" if value is True else "false" if value is False else "null"
        elif type(value) is float and value.is_integer() and abs(value) <= _INT_MAX:
            text = str(int(value))
        else:
            return rfc8785.dumps(details)
        parts.append(f"{_string(key)}:{text}")
    try:
        return ("{" + ",".join(parts) + "}").encode()
    except UnicodeEncodeError as exc:
        raise rfc8785.CanonicalizationError("input contains non-UTF-8 codepoints") from exc
