"""The JSON form of a database schema definition: its shape, names, paths and type spelling.

A definition (docs/schema-definition.md has the full reference) is an object::

    {"version": 1,
     "tables": {
       "public.users": {                                   # schema-qualified table name
         "columns": {                                      # keyed by column name
           "id":    {"position": 1, "type": "bigint", "nullable": false, "default": null,
                     "identity": "ALWAYS", "generated": null},
           "email": {"position": 2, "type": "text", "nullable": false,
                     "default": "''::text"}},
         "primary_key": {"name": "users_pkey", "columns": ["id"]},          # or null
         "unique_constraints": [{"name": "users_email_key", "columns": ["email"]}],
         "foreign_keys": [{"name": "users_org_fk", "columns": ["org_id"],
                           "referenced_table": "public.orgs", "referenced_columns": ["id"],
                           "on_delete": "CASCADE", "on_update": "NO ACTION"}],
         "indexes": [{"name": "users_lower_email_idx",
                      "keys": [{"expression": "lower(email)", "descending": false,
                                "nulls_first": false}],
                      "include": [], "unique": false, "method": "btree",
                      "predicate": "(email IS NOT NULL)"}]}}}

Column attributes: ``position`` (required, integer >= 1, unique in the table), ``type``
(required; PostgreSQL ``format_type`` spelling, common aliases such as ``int4``,
``varchar(20)`` or ``timestamptz`` are normalized), ``nullable`` (default true), ``default``
(expression text or null), ``identity`` (null, ``ALWAYS`` or ``BY DEFAULT``), ``generated``
(null or ``{"expression": ..., "stored": true}``). Every constraint and index has a ``name``.
Index ``keys`` are columns (``{"column": "email"}`` or just ``"email"``) or expressions
(``{"expression": "lower(email)"}``) with ``descending`` (default false) and ``nulls_first``
(default: same as ``descending``, PostgreSQL's default). Referential actions are ``NO ACTION``
(default), ``RESTRICT``, ``CASCADE``, ``SET NULL``, ``SET DEFAULT``. Unknown keys are errors.
Indexes that back a primary key or unique constraint are not listed as indexes.

The canonical form fills every default, renumbers column positions densely (1..n in position
order), and sorts constraints and indexes by name; column lists inside constraints and index
keys keep their order (it is meaningful). The fingerprint is the hex SHA-256 of the RFC 8785
canonical JSON of the canonical form, so it does not depend on key or constraint order.

Paths (in violations and differences) are slash-separated, e.g.
``tables/public.users/columns/email/nullable``; ``~`` and ``/`` inside a name are written
``~0`` and ``~1`` (as in JSON Pointer).

Validation is `schema_checks.py`; the canonical form and fingerprint are `schema_canonical.py`.
"""

from __future__ import annotations

import math
import re
from typing import Any

SCHEMA_FORMAT_VERSION = 1
# The engine a definition describes; PostgreSQL when absent (docs/schema-definition.md).
ENGINES = ("postgresql", "mysql")
REFERENTIAL_ACTIONS = frozenset({"NO ACTION", "RESTRICT", "CASCADE", "SET NULL", "SET DEFAULT"})
IDENTITY_KINDS = frozenset({"ALWAYS", "BY DEFAULT"})


def path_segment(name: str) -> str:
    """``name`` escaped for use as one segment of a slash-separated path."""
    return name.replace("~", "~0").replace("/", "~1")


def split_table_name(qualified: str) -> tuple[str, str]:
    """``("public", "users")`` for ``"public.users"`` (split at the first dot)."""
    schema, _, table = qualified.partition(".")
    return schema, table


def as_integer(value: Any) -> int | None:
    """The integer a JSON number stands for; None for a bool, a fraction, NaN or infinity."""
    # Definitions travel as google.protobuf.Struct, where every number is a double.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and (not math.isfinite(value) or not value.is_integer()):
        return None
    return int(value)


# ---------------------------------------------------------------------------------------------
# Type spelling

_TYPE_ALIASES = {
    "int": "integer",
    "int4": "integer",
    "int2": "smallint",
    "int8": "bigint",
    "float8": "double precision",
    "float4": "real",
    "bool": "boolean",
    "varchar": "character varying",
    "varbit": "bit varying",
    "decimal": "numeric",
}
_ARRAY_SUFFIX = re.compile(r"(\s*\[\d*\])+$")
_TIME_ZONE = re.compile(r"^(?P<base>timestamp|time)(?: (?P<zone>with|without) time zone)?$")


def normalize_type(spelling: str) -> str:
    """The ``format_type`` spelling of a PostgreSQL type written in a common alias form."""
    text = " ".join(spelling.split())
    if '"' in text:
        return text  # a quoted (case-sensitive) user type: leave it exactly as written
    core = text.lower()
    array_match = _ARRAY_SUFFIX.search(core)
    array = "[]" if array_match else ""
    if array_match:
        core = core[: array_match.start()]
    mod = ""
    if "(" in core:
        head, _, tail = core.partition("(")
        inner, _, rest = tail.partition(")")
        mod = f"({inner.replace(' ', '')})"
        core = f"{head} {rest}"
    base = " ".join(core.split())
    zoned = {"timestamptz": "timestamp with time zone", "timetz": "time with time zone"}
    base = zoned.get(base, base)
    time_match = _TIME_ZONE.match(base)
    if time_match is not None:
        zone = time_match["zone"] or "without"
        return f"{time_match['base']}{mod} {zone} time zone{array}"
    return f"{_TYPE_ALIASES.get(base, base)}{mod}{array}"


def normalize_mysql_type(spelling: str) -> str:
    """A MySQL ``COLUMN_TYPE`` in one spelling: lower case outside quotes, single spaces."""
    parts = re.split(r"('(?:[^'\\]|\\.|'')*')", " ".join(spelling.split()))
    return "".join(p if p.startswith("'") else p.lower() for p in parts)
