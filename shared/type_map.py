"""The MySQL → PostgreSQL type map: the faithful translation of each MySQL type, and whether
a PostgreSQL type can hold every value of a MySQL one.

docs/schema-definition.md#mysql-to-postgresql-type-map is the table this module implements;
`translate` gives its middle column, `cannot_hold` says why a target type is not acceptable
(None when it is). Types are the canonical spellings: MySQL ``COLUMN_TYPE`` lower case
(schema_model.normalize_mysql_type) and PostgreSQL ``format_type`` (normalize_type).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_MYSQL = re.compile(r"^(?P<base>[a-z]+)(?:\((?P<args>[^)]*)\))?(?P<rest>.*)$", re.DOTALL)
_PG = re.compile(r"^(?P<base>[a-z ]+?)(?:\((?P<args>[^)]*)\))?(?P<rest>( with(out)? time zone)?)$")

# Value ranges of MySQL's integer types: (signed low, signed high, unsigned high).
_MYSQL_INTEGERS = {
    "tinyint": (-(2**7), 2**7 - 1, 2**8 - 1),
    "smallint": (-(2**15), 2**15 - 1, 2**16 - 1),
    "mediumint": (-(2**23), 2**23 - 1, 2**24 - 1),
    "int": (-(2**31), 2**31 - 1, 2**32 - 1),
    "integer": (-(2**31), 2**31 - 1, 2**32 - 1),
    "bigint": (-(2**63), 2**63 - 1, 2**64 - 1),
}
_PG_INTEGERS = {
    "smallint": (-(2**15), 2**15 - 1),
    "integer": (-(2**31), 2**31 - 1),
    "bigint": (-(2**63), 2**63 - 1),
}
_TEXT_LENGTHS = {"tinytext": 255, "text": 65_535, "mediumtext": 16_777_215, "longtext": 2**32 - 1}
_BINARY = frozenset({"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob"})


@dataclass(frozen=True)
class MySQLType:
    """A parsed MySQL column type."""

    base: str
    args: tuple[str, ...] = ()
    unsigned: bool = False

    @property
    def is_boolean(self) -> bool:
        """``tinyint(1)``: MySQL's boolean."""
        return self.base == "tinyint" and self.args == ("1",)

    def number(self, index: int, default: int) -> int:
        """The `index`-th numeric argument (precision, scale, length), or `default`."""
        try:
            return int(self.args[index])
        except (IndexError, ValueError):
            return default

    @property
    def labels(self) -> list[str]:
        """The values of an enum or set."""
        return [a.strip()[1:-1].replace("''", "'") for a in _split_labels(",".join(self.args))]


@dataclass(frozen=True)
class PostgresType:
    """A parsed PostgreSQL type (format_type spelling)."""

    base: str
    args: tuple[str, ...] = ()
    zone: bool = False

    def number(self, index: int, default: int) -> int:
        """The `index`-th modifier, or `default`."""
        try:
            return int(self.args[index])
        except (IndexError, ValueError):
            return default


def _split_labels(text: str) -> list[str]:
    return re.findall(r"'(?:[^']|'')*'", text)


def parse_mysql(text: str) -> MySQLType:
    """`text` (a COLUMN_TYPE) parsed; unknown shapes keep their whole text as the base."""
    match = _MYSQL.match(text.strip().lower() if "'" not in text else text.strip())
    if match is None:
        return MySQLType(text)
    args = match["args"] or ""
    base = match["base"].lower()
    parts = (
        tuple(_split_labels(args))
        if base in ("enum", "set")
        else tuple(a.strip() for a in args.split(",") if a.strip())
    )
    return MySQLType(base, parts, "unsigned" in match["rest"].lower())


def parse_postgres(text: str) -> PostgresType:
    """`text` (format_type spelling) parsed; other shapes keep their whole text as the base."""
    match = _PG.match(text)
    if match is None:
        return PostgresType(text)
    args = tuple(a.strip() for a in (match["args"] or "").split(",") if a.strip())
    return PostgresType(match["base"].strip(), args, match["rest"].strip() == "with time zone")


def translate(mysql_type: str) -> str:
    """The PostgreSQL type a faithful translation gives a MySQL column type."""
    t = parse_mysql(mysql_type)
    if t.is_boolean:
        return "boolean"
    if t.base in _MYSQL_INTEGERS:
        low, high, unsigned_high = _MYSQL_INTEGERS[t.base]
        top = unsigned_high if t.unsigned else high
        for name, (pg_low, pg_high) in _PG_INTEGERS.items():
            if pg_low <= low and top <= pg_high:
                return name
        return "numeric(20,0)"
    simple = {
        "float": "real",
        "double": "double precision",
        "real": "double precision",
        "date": "date",
        "year": "smallint",
        "json": "jsonb",
        "enum": "text",
        "set": "text",
    }
    if t.base in simple:
        return simple[t.base]
    if t.base in ("decimal", "numeric"):
        return f"numeric({t.number(0, 10)},{t.number(1, 0)})"
    if t.base == "char":
        return f"character({t.number(0, 1)})"
    if t.base == "varchar":
        return f"character varying({t.number(0, 1)})"
    if t.base in _TEXT_LENGTHS:
        return "text"
    if t.base in _BINARY:
        return "bytea"
    if t.base == "datetime":
        return f"timestamp({t.number(0, 0)}) without time zone"
    if t.base == "timestamp":
        return f"timestamp({t.number(0, 0)}) with time zone"
    if t.base == "time":
        return f"time({t.number(0, 0)}) without time zone"
    if t.base == "bit":
        return f"bit({t.number(0, 1)})"
    return "text"


def cannot_hold(mysql_type: str, postgres_type: str) -> str | None:
    """Why `postgres_type` cannot hold every value of `mysql_type`; None when it can."""
    source, target = parse_mysql(mysql_type), parse_postgres(postgres_type)
    reason = _reason(source, target)
    return f"{postgres_type} {reason} {mysql_type}" if reason else None


def _integer_range(t: MySQLType) -> tuple[int, int]:
    low, high, unsigned_high = _MYSQL_INTEGERS[t.base]
    return (0, unsigned_high) if t.unsigned else (low, high)


def _reason(s: MySQLType, t: PostgresType) -> str | None:
    if s.is_boolean and t.base == "boolean":
        return None
    if s.base in _MYSQL_INTEGERS or s.base == "year":
        low, high = _integer_range(s) if s.base != "year" else (1901, 2155)
        return _integer_reason(low, high, t)
    if s.base in ("decimal", "numeric"):
        precision, scale = s.number(0, 10), s.number(1, 0)
        if t.base == "numeric":
            if not t.args:
                return None
            t_precision, t_scale = t.number(0, 1000), t.number(1, 0)
            if t_scale >= scale and t_precision - t_scale >= precision - scale:
                return None
            return "cannot hold every value of"
        if scale == 0:
            return _integer_reason(-(10**precision) + 1, 10**precision - 1, t)
        return "is not a decimal type for"
    if s.base == "float":
        return None if t.base in ("real", "double precision") else "is not a float type for"
    if s.base in ("double", "real"):
        return None if t.base == "double precision" else "cannot hold every double of"
    if s.base in ("char", "varchar", "enum", "set") or s.base in _TEXT_LENGTHS:
        return _text_reason(s, t)
    if s.base in _BINARY:
        return None if t.base == "bytea" else "is not a binary type for"
    if s.base == "json":
        return None if t.base in ("jsonb", "json") else "is not a JSON type for"
    if s.base == "date":
        return None if t.base == "date" else "is not a date type for"
    if s.base in ("datetime", "timestamp"):
        if t.base != "timestamp":
            return "is not a timestamp type for"
        if s.base == "timestamp" and not t.zone:
            return "has no time zone (MySQL timestamp is an instant) for"
        return None if t.number(0, 6) >= s.number(0, 0) else "has fewer fractional digits than"
    if s.base == "time":
        if t.base == "interval":
            return None
        if t.base != "time":
            return "is not a time type for"
        return None if t.number(0, 6) >= s.number(0, 0) else "has fewer fractional digits than"
    if s.base == "bit":
        if t.base in ("bit", "bit varying") and t.number(0, 1) >= s.number(0, 1):
            return None
        return "cannot hold the bits of"
    return None if translate(_spell(s)) == _spell_pg(t) else "does not translate"


def _integer_reason(low: int, high: int, t: PostgresType) -> str | None:
    if t.base in _PG_INTEGERS:
        pg_low, pg_high = _PG_INTEGERS[t.base]
        return None if pg_low <= low and high <= pg_high else "cannot hold every value of"
    if t.base == "numeric":
        if not t.args:
            return None
        digits = t.number(0, 1000) - t.number(1, 0)
        return None if max(abs(low), high) < 10**digits else "cannot hold every value of"
    return "is not an integer type for"


def _text_reason(s: MySQLType, t: PostgresType) -> str | None:
    if t.base == "text":
        return None
    if s.base in ("enum", "set"):
        labels = s.labels
        needed = (
            max((len(label) for label in labels), default=0)
            if s.base == "enum"
            else sum(len(label) for label in labels) + max(len(labels) - 1, 0)
        )
        if s.base == "enum" and t.base not in ("character varying", "character"):
            return None  # a PostgreSQL enum type (or domain) named for it: accepted
    else:
        needed = _TEXT_LENGTHS.get(s.base) or s.number(0, 1)
    if t.base not in ("character varying", "character"):
        return "is not a text type for"
    if not t.args and t.base == "character varying":
        return None
    return None if t.number(0, 1) >= needed else "is too short for"


def _spell(t: MySQLType) -> str:
    return t.base + (f"({','.join(t.args)})" if t.args else "") + (" unsigned" * t.unsigned)


def _spell_pg(t: PostgresType) -> str:
    zone = " with time zone" if t.zone else ""
    return t.base + (f"({','.join(t.args)})" if t.args else "") + zone
