"""The canonical text of a value for CHECKSUM across engines (MySQL/MariaDB → PostgreSQL).

Each side renders every value as text in its own SQL so that equal data after a faithful
translation (docs/schema-definition.md#mysql-to-postgresql-type-map) gives equal text; the
rule is chosen by the source (MySQL) column's type, and each engine's expression reads its
own column. docs/architecture.md#checks states the rules:

- NULL is ``N``; every other value is ``<bytes>:<text>`` (its UTF-8 length first), and a
  row is its values joined by ``|``, so no value can imitate another or a NULL;
- booleans and ``tinyint(1)``: ``1`` / ``0`` (a tinyint(1) holding 2 stays ``2``: changed);
- integers (and ``year``): decimal digits;
- decimals: at the source column's scale (``1.50`` for decimal(5,2)); a target value with
  more digits than that scale prints them all, so it never equals;
- floats: the shortest text that reads back as the same double (a MySQL ``float`` is widened
  to double on both sides, exactly), written ``<digits>e<exponent>`` with the digits
  after an implied ``0.``; ``-0.0`` is ``0`` (MySQL does not keep the sign of zero);
- date ``YYYY-MM-DD``; datetime and timestamp ``YYYY-MM-DD HH:MM:SS.ffffff`` in UTC
  (microseconds always); time ``HH:MM:SS.ffffff``; MySQL's zero dates (``0000-00-00``) have
  no PostgreSQL value and print as such, so a row holding one is always reported changed;
- text, char, enum (its label) and set (its labels joined by ``,``): the characters as
  UTF-8, case, accents and trailing spaces kept, whatever the collation;
- binary and blobs: lower-case hex; bit(n): n binary digits;
- JSON: keys sorted, no whitespace, numbers as ``<d>.<ddd>E<exp>`` (MariaDB's
  ``JSON_NORMALIZE``; PostgreSQL renders jsonb the same way down to nesting depth 4).
"""

from __future__ import annotations

import re

# A MySQL COLUMN_TYPE: its base name and numeric arguments (`decimal(12,4)`, `bit(8)`). Parsed
# here rather than with the migration service's type map: services share no code.
_MYSQL_TYPE = re.compile(r"^\s*([a-z]+)\s*(?:\(([^)]*)\))?", re.IGNORECASE)

# Categories of the canonical rules, by MySQL base type.
_INTEGER = frozenset({"tinyint", "smallint", "mediumint", "int", "integer", "bigint", "year"})
_DECIMAL = frozenset({"decimal", "numeric"})
_FLOAT = frozenset({"float", "double", "real"})
_BINARY = frozenset({"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob"})
_DATETIME = frozenset({"datetime", "timestamp"})


def category(mysql_type: str) -> str:
    """The canonical rule a MySQL column type follows."""
    base = _base(mysql_type)
    for name, members in (
        ("integer", _INTEGER),
        ("decimal", _DECIMAL),
        ("float", _FLOAT),
        ("binary", _BINARY),
        ("datetime", _DATETIME),
    ):
        if base in members:
            return name
    if base in ("date", "time", "bit", "json"):
        return base
    return "text"


def decimal_scale(mysql_type: str) -> int:
    """The scale of a MySQL decimal type (0 without one)."""
    return _number(mysql_type, 1, 0)


def bit_width(mysql_type: str) -> int:
    """The width of a MySQL bit type."""
    return _number(mysql_type, 0, 1)


def _base(mysql_type: str) -> str:
    match = _MYSQL_TYPE.match(mysql_type)
    return match[1].lower() if match else mysql_type.strip().lower()


def _number(mysql_type: str, index: int, default: int) -> int:
    """The `index`-th numeric argument of the type, or `default`."""
    match = _MYSQL_TYPE.match(mysql_type)
    args = [a.strip() for a in (match[2] or "").split(",")] if match else []
    try:
        return int(args[index])
    except (IndexError, ValueError):
        return default


# --- MySQL -------------------------------------------------------------------------------------


def mysql_value(column: str, mysql_type: str) -> str:
    """The canonical text of a MySQL column (quoted name), NULL for NULL."""
    kind = category(mysql_type)
    if kind in ("integer", "decimal"):
        return f"CAST({column} AS CHAR)"
    if kind == "float":
        return _mysql_float(f"CAST(CAST({column} AS DOUBLE) AS CHAR)")
    if kind == "binary":
        return f"LOWER(HEX({column}))"
    if kind == "bit":
        return f"LPAD(BIN({column}), {bit_width(mysql_type)}, '0')"
    if kind == "date":
        return f"DATE_FORMAT({column}, '%Y-%m-%d')"
    if kind == "datetime":
        return f"DATE_FORMAT({column}, '%Y-%m-%d %H:%i:%s.%f')"
    if kind == "time":
        return f"TIME_FORMAT({column}, '%H:%i:%s.%f')"
    if kind == "json":
        return f"JSON_NORMALIZE({column})"
    return f"CONVERT({column} USING utf8mb4)"


def mysql_row(values: list[str]) -> str:
    """A row's canonical text from its values' canonical texts."""
    parts = [f"IFNULL(CONCAT(OCTET_LENGTH({v}), ':', {v}), 'N')" for v in values]
    return f"CONCAT_WS('|', {', '.join(parts)})" if parts else "''"


def _mysql_float(text: str) -> str:
    mantissa = f"SUBSTRING_INDEX({text}, 'e', 1)"
    exponent = f"IF(LOCATE('e', {text}) > 0, CAST(SUBSTRING_INDEX({text}, 'e', -1) AS SIGNED), 0)"
    unsigned = f"TRIM(LEADING '-' FROM {mantissa})"
    whole = f"SUBSTRING_INDEX({unsigned}, '.', 1)"
    fraction = f"IF(LOCATE('.', {unsigned}) > 0, SUBSTRING_INDEX({unsigned}, '.', -1), '')"
    digits = f"CONCAT({whole}, {fraction})"
    stripped = f"TRIM(LEADING '0' FROM {digits})"
    significant = f"TRIM(TRAILING '0' FROM {stripped})"
    power = (
        f"({exponent} + CHAR_LENGTH({whole}) - (CHAR_LENGTH({digits}) - CHAR_LENGTH({stripped})))"
    )
    sign = f"IF(LEFT({text}, 1) = '-', '-', '')"
    return (
        f"IF({text} IS NULL, NULL, IF({significant} = '', '0',"
        f" CONCAT({sign}, {significant}, 'e', {power})))"
    )


# --- PostgreSQL --------------------------------------------------------------------------------


def postgres_value(column: str, mysql_type: str, postgres_type: str) -> str:
    """The canonical text of a PostgreSQL column that holds a MySQL column's values."""
    kind = category(mysql_type)
    if kind == "integer":
        if postgres_type == "boolean":
            return f"CASE WHEN {column} THEN '1' ELSE '0' END"
        return f"{column}::text"
    if kind == "decimal":
        scale = decimal_scale(mysql_type)
        return (
            f"CASE WHEN {column} = round({column}, {scale})"
            f" THEN round({column}, {scale})::text ELSE {column}::text END"
        )
    if kind == "float":
        return _postgres_float(f"{column}::float8::text")
    if kind == "binary":
        return f"encode({column}, 'hex')"
    if kind == "bit":
        return f"{column}::text"
    if kind == "date":
        return f"to_char({column}, 'YYYY-MM-DD')"
    if kind == "datetime":
        return f"to_char({column}, 'YYYY-MM-DD HH24:MI:SS.US')"
    if kind == "time":
        return f"to_char({column}::interval, 'HH24:MI:SS.US')"
    if kind == "json":
        return _postgres_json(f"{column}::jsonb", depth=4)
    return f"{column}::text"


def postgres_row(values: list[str]) -> str:
    """A row's canonical text from its values' canonical texts."""
    parts = [f"coalesce(octet_length({v})::text || ':' || {v}, 'N')" for v in values]
    return f"concat_ws('|', {', '.join(parts)})" if parts else "''"


def _postgres_float(text: str) -> str:
    mantissa = f"split_part({text}, 'e', 1)"
    exponent = (
        f"(CASE WHEN strpos({text}, 'e') > 0 THEN split_part({text}, 'e', 2)::int ELSE 0 END)"
    )
    unsigned = f"ltrim({mantissa}, '-')"
    whole = f"split_part({unsigned}, '.', 1)"
    fraction = f"split_part({unsigned}, '.', 2)"
    digits = f"({whole} || {fraction})"
    stripped = f"ltrim({digits}, '0')"
    significant = f"rtrim({stripped}, '0')"
    power = f"({exponent} + length({whole}) - (length({digits}) - length({stripped})))"
    sign = f"(CASE WHEN left({text}, 1) = '-' THEN '-' ELSE '' END)"
    return (
        f"(CASE WHEN {text} IS NULL THEN NULL WHEN {significant} = '' THEN '0'"
        f" ELSE {sign} || {significant} || 'e' || {power}::text END)"
    )


def _postgres_number(text: str) -> str:
    """A JSON number's text as JSON_NORMALIZE writes it: ``<d>.<ddd>E<exp>``."""
    unsigned = f"ltrim({text}, '-')"
    whole = f"split_part({unsigned}, '.', 1)"
    fraction = f"split_part({unsigned}, '.', 2)"
    digits = f"({whole} || {fraction})"
    stripped = f"ltrim({digits}, '0')"
    significant = f"rtrim({stripped}, '0')"
    power = f"(length({whole}) - (length({digits}) - length({stripped})) - 1)"
    sign = f"(CASE WHEN left({text}, 1) = '-' THEN '-' ELSE '' END)"
    head = f"left({significant}, 1)"
    tail = f"coalesce(nullif(substr({significant}, 2), ''), '0')"
    return (
        f"(CASE WHEN {significant} = '' THEN '0.0E0'"
        f" ELSE {sign} || {head} || '.' || {tail} || 'E' || {power}::text END)"
    )


def _postgres_json(value: str, depth: int) -> str:
    """JSON_NORMALIZE's text of a jsonb value, nested objects and arrays to `depth` levels."""
    if depth == 0:
        return f"{value}::text"
    inner = _postgres_json("v", depth - 1)
    return (
        f"(CASE jsonb_typeof({value})"
        f" WHEN 'object' THEN '{{' || coalesce((SELECT string_agg("
        f"to_jsonb(k)::text || ':' || {inner}, ',' ORDER BY k COLLATE \"C\")"
        f" FROM jsonb_each({value}) AS e(k, v)), '') || '}}'"
        f" WHEN 'array' THEN '[' || coalesce((SELECT string_agg({inner}, ',' ORDER BY o)"
        f" FROM jsonb_array_elements({value}) WITH ORDINALITY AS a(v, o)), '') || ']'"
        f" WHEN 'number' THEN {_postgres_number(f'({value})::text')}"
        f" ELSE ({value})::text END)"
    )
