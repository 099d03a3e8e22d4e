"""The audit entry's dedicated RFC 8785 encoder is byte-identical to the `rfc8785` library.

Random entries (unicode with escapes, non-BMP characters and lone surrogates; integers at
the edges of the double-safe range; details with awkward doubles) go through both; the
bytes must be equal, or both must refuse the entry.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import rfc8785
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.org.audit import canonical
from services.org.audit.chain import as_doubles, time_text

# About 7 in 10 compare bytes (the rest: both refuse, for a surrogate, NaN/inf or an
# integer past 2**53): 14,000 examples make more than 10,000 byte comparisons.
EXAMPLES = 14_000

_EDGE_TEXT = [
    "",
    '"',
    "\\",
    "\x00",
    "\x1f",
    "\x7f",
    "\b\f\n\r\t",
    "\u2028\u2029",
    "\ufeff",
    "\U0001f600",
    "\U0010ffff",
    "\ud800",
    "\udfff",
    "é\u0301",
    "</script>",
]
# Any code point, surrogates included (which both must refuse), or the awkward ones above.
_TEXT = st.one_of(
    st.text(),
    st.text(st.characters(codec=None, exclude_categories=())),
    st.lists(st.sampled_from([*_EDGE_TEXT, "a", "Z", "0"])).map("".join),
    st.sampled_from(_EDGE_TEXT),
)
# Mostly text without surrogates, so most examples compare bytes rather than errors.
_FIELD = st.one_of(
    st.text(),
    st.text(st.characters(min_codepoint=0x10000)),
    st.lists(st.sampled_from([*_EDGE_TEXT[:11], "x"])).map("".join),
)
_EDGE_NUMBERS = [
    0.0,
    -0.0,
    1e21,
    1e20,
    1e-7,
    1e-6,
    5e-324,
    1.7976931348623157e308,
    2**53,
    2**53 + 1,
    -(2**63),
    0.1 + 0.2,
    123456789012345680000.0,
    math.nan,
    math.inf,
]
_NUMBER = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),  # NaN and ±inf: in the edge list
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from(_EDGE_NUMBERS),
)
_JSON = st.recursive(
    st.none() | st.booleans() | _NUMBER | _FIELD,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_FIELD, inner, max_size=4),
    max_leaves=12,
)
_SEQ = st.one_of(
    st.integers(min_value=1, max_value=2**53 - 1),
    st.sampled_from([1, 2**53 - 1, 2**53, 2**63 - 1]),
)


@st.composite
def _entries(draw: st.DrawFn) -> dict[str, Any]:
    entry = {
        "version": draw(st.sampled_from([1, 2])),
        "entry_id": draw(_FIELD),
        "org_id": draw(_FIELD),
        "seq": draw(_SEQ),
        "event_id": draw(_FIELD),
        "user_id": draw(st.none() | _FIELD),
        "actor": draw(_FIELD),
        "action": draw(_FIELD),
        "resource_type": draw(_FIELD),
        "resource_id": draw(_FIELD),
        "ip_address": draw(_FIELD),
        "service": draw(_FIELD),
        "details": as_doubles(draw(st.dictionaries(_FIELD, _JSON, max_size=5))),
        "occurred_at": draw(_FIELD),
        "created_at": draw(_FIELD),
        "prev_hash": draw(_FIELD),
    }
    if draw(st.integers(0, 9)) == 0:  # one entry in ten: one field holds any text at all
        field = draw(st.sampled_from(sorted(set(entry) - {"version", "seq", "details"})))
        entry[field] = draw(_TEXT)
    return entry


def _library(entry: dict[str, Any]) -> bytes:
    names = {"version": "v", "entry_id": "id"}
    return rfc8785.dumps({names.get(key, key): value for key, value in entry.items()})


def _outcome(encode: Any, entry: dict[str, Any]) -> bytes | str:
    try:
        return bytes(encode(entry))
    except (rfc8785.CanonicalizationError, UnicodeEncodeError):
        # rfc8785 sorts keys by their UTF-16 form, which a lone surrogate in a key of
        # `details` fails with UnicodeEncodeError; ours hands `details` to it, so the same.
        return "refused"


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(_entries())
def test_entry_bytes_equal_the_library_s(entry: dict[str, Any]) -> None:
    ours = _outcome(lambda e: canonical.entry_document(**e), entry)
    assert ours == _outcome(_library, entry)


def test_a_typical_entry_is_encoded_without_refusal() -> None:
    entry = {
        "version": 1,
        "entry_id": "5f0c0a4e-0000-4000-8000-000000000001",
        "org_id": "5f0c0a4e-0000-4000-8000-000000000002",
        "seq": 42,
        "event_id": "5f0c0a4e-0000-4000-8000-000000000003",
        "user_id": None,
        "actor": "users/Zoë \U0001f600",
        "action": "migration.create",
        "resource_type": "migration",
        "resource_id": 'organizations/x/migrations/"quoted"\n',
        "ip_address": "::1",
        "service": "migration",
        "details": {"display_name": "bench", "n": 1.0, "nested": [True, None, -0.0]},
        "occurred_at": "2026-01-01T00:00:00.000000Z",
        "created_at": "2026-01-01T00:00:00.000001Z",
        "prev_hash": "0" * 64,
    }
    assert canonical.entry_document(**entry) == _library(entry)


@settings(max_examples=500, deadline=None)
@given(st.datetimes(timezones=st.timezones()))
def test_time_text_is_the_strftime_text_it_replaced(value: datetime) -> None:
    # Stored chains were hashed with the strftime form: every instant keeps its text.
    expected = value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert time_text(value) == expected
