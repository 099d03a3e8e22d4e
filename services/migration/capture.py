"""Introspect a live PostgreSQL database (pg_catalog) into the schema definition JSON form.

The result follows services/migration/schema_model.py (docs/schema-definition.md): ordinary
and partitioned tables of every non-system schema (or of the schemas asked for), except
tables that belong to an extension; columns with ``format_type`` types, nullability,
defaults (``pg_get_expr``), identity and generation; primary keys, unique constraints and
foreign keys from ``pg_constraint``; every other index from ``pg_index``. Works on
PostgreSQL 15 and later (tested on 15 and 18).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from services.migration.schema_model import SCHEMA_FORMAT_VERSION

# pg_* covers pg_catalog, pg_toast and the per-session pg_temp_N / pg_toast_temp_N schemas.
_TABLES = """
SELECT c.oid, n.nspname AS schema_name, c.relname AS table_name
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p')
  AND n.nspname <> 'information_schema'
  AND n.nspname !~ '^pg_'
  AND ($1::text[] IS NULL OR n.nspname = ANY($1::text[]))
  AND NOT EXISTS (
    SELECT 1 FROM pg_catalog.pg_depend d
    WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'
  )
ORDER BY n.nspname, c.relname
"""

_COLUMNS = """
SELECT a.attrelid, a.attname, a.attnum,
       pg_catalog.format_type(a.atttypid, a.atttypmod) AS type,
       a.attnotnull, a.attidentity::text AS attidentity, a.attgenerated::text AS attgenerated,
       pg_catalog.pg_get_expr(d.adbin, d.adrelid) AS expression
FROM pg_catalog.pg_attribute a
LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attrelid = ANY($1::oid[]) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum
"""

# Column names are resolved in SQL so foreign keys into tables outside the capture still work.
_CONSTRAINTS = """
SELECT con.conrelid, con.conname, con.contype::text AS contype,
       ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord)
             JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
             ORDER BY k.ord) AS columns,
       fn.nspname AS referenced_schema, fc.relname AS referenced_table,
       ARRAY(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY AS k(attnum, ord)
             JOIN pg_catalog.pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum
             ORDER BY k.ord) AS referenced_columns,
       con.confdeltype::text AS on_delete, con.confupdtype::text AS on_update
FROM pg_catalog.pg_constraint con
LEFT JOIN pg_catalog.pg_class fc ON fc.oid = con.confrelid
LEFT JOIN pg_catalog.pg_namespace fn ON fn.oid = fc.relnamespace
WHERE con.conrelid = ANY($1::oid[]) AND con.contype IN ('p', 'u', 'f')
ORDER BY con.conrelid, con.conname
"""

# Indexes that back a primary key or unique constraint are described by the constraint.
_INDEXES = """
SELECT i.indrelid, ic.relname AS index_name, i.indisunique, am.amname,
       pg_catalog.pg_get_expr(i.indpred, i.indrelid) AS predicate,
       i.indnkeyatts,
       ARRAY(
         SELECT CASE WHEN i.indkey[k.n - 1] = 0 THEN NULL ELSE a.attname END
         FROM generate_series(1, i.indnatts) AS k(n)
         LEFT JOIN pg_catalog.pg_attribute a
           ON a.attrelid = i.indrelid AND a.attnum = i.indkey[k.n - 1]
         ORDER BY k.n
       ) AS column_names,
       ARRAY(
         SELECT pg_catalog.pg_get_indexdef(i.indexrelid, k.n, false)
         FROM generate_series(1, i.indnatts) AS k(n) ORDER BY k.n
       ) AS key_texts,
       ARRAY(
         SELECT i.indoption[k.n - 1]::int
         FROM generate_series(1, i.indnkeyatts) AS k(n) ORDER BY k.n
       ) AS options
FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
JOIN pg_catalog.pg_am am ON am.oid = ic.relam
WHERE i.indrelid = ANY($1::oid[])
  AND NOT EXISTS (
    SELECT 1 FROM pg_catalog.pg_constraint con
    WHERE con.conindid = i.indexrelid AND con.conrelid = i.indrelid AND con.contype IN ('p', 'u')
  )
ORDER BY i.indrelid, ic.relname
"""

_ACTIONS = {
    "a": "NO ACTION",
    "r": "RESTRICT",
    "c": "CASCADE",
    "n": "SET NULL",
    "d": "SET DEFAULT",
}
_IDENTITY = {"a": "ALWAYS", "d": "BY DEFAULT"}
# pg_index.indoption bits (catalog/pg_index.h).
_INDOPTION_DESC = 0x0001
_INDOPTION_NULLS_FIRST = 0x0002


async def capture_schema(
    conn: asyncpg.Connection, schemas: Sequence[str] | None = None
) -> dict[str, Any]:
    """The definition of the database behind ``conn``, in the schema definition JSON form.

    ``schemas`` limits the capture to those PostgreSQL schemas; None (or empty) means every
    schema except information_schema and the pg_* system schemas. Reads run in one
    read-only repeatable-read transaction, so the capture is a consistent snapshot.
    """
    wanted = list(schemas) if schemas else None
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        table_rows = await conn.fetch(_TABLES, wanted)
        oids = [row["oid"] for row in table_rows]
        column_rows = await conn.fetch(_COLUMNS, oids)
        constraint_rows = await conn.fetch(_CONSTRAINTS, oids)
        index_rows = await conn.fetch(_INDEXES, oids)

    tables: dict[int, dict[str, Any]] = {
        row["oid"]: {
            "columns": {},
            "primary_key": None,
            "unique_constraints": [],
            "foreign_keys": [],
            "indexes": [],
        }
        for row in table_rows
    }
    for row in column_rows:
        columns = tables[row["attrelid"]]["columns"]
        columns[row["attname"]] = _column_of(row, position=len(columns) + 1)
    for row in constraint_rows:
        _add_constraint(tables[row["conrelid"]], row)
    for row in index_rows:
        tables[row["indrelid"]]["indexes"].append(_index_of(row))
    return {
        "version": SCHEMA_FORMAT_VERSION,
        "tables": {
            f"{row['schema_name']}.{row['table_name']}": tables[row["oid"]] for row in table_rows
        },
    }


def _column_of(row: asyncpg.Record, *, position: int) -> dict[str, Any]:
    # attgenerated is 's' (stored) or, from PostgreSQL 18, 'v' (virtual); '' otherwise.
    generated_kind = row["attgenerated"] or ""
    expression = row["expression"]
    return {
        "position": position,
        "type": row["type"],
        "nullable": not row["attnotnull"],
        "default": expression if not generated_kind else None,
        "identity": _IDENTITY.get(row["attidentity"] or ""),
        "generated": {"expression": expression, "stored": generated_kind == "s"}
        if generated_kind
        else None,
    }


def _add_constraint(table: dict[str, Any], row: asyncpg.Record) -> None:
    name, columns = row["conname"], list(row["columns"])
    if row["contype"] == "p":
        table["primary_key"] = {"name": name, "columns": columns}
    elif row["contype"] == "u":
        table["unique_constraints"].append({"name": name, "columns": columns})
    else:
        table["foreign_keys"].append(
            {
                "name": name,
                "columns": columns,
                "referenced_table": f"{row['referenced_schema']}.{row['referenced_table']}",
                "referenced_columns": list(row["referenced_columns"]),
                "on_delete": _ACTIONS[row["on_delete"]],
                "on_update": _ACTIONS[row["on_update"]],
            }
        )


def _index_of(row: asyncpg.Record) -> dict[str, Any]:
    key_count = row["indnkeyatts"]
    names, texts, options = row["column_names"], row["key_texts"], row["options"]
    keys = []
    for n in range(key_count):
        option = options[n] or 0
        descending = bool(option & _INDOPTION_DESC)
        keys.append(
            {
                "column": names[n],
                "expression": texts[n] if names[n] is None else None,
                "descending": descending,
                "nulls_first": bool(option & _INDOPTION_NULLS_FIRST),
            }
        )
    return {
        "name": row["index_name"],
        "keys": keys,
        "include": [name for name in names[key_count:] if name is not None],
        "unique": row["indisunique"],
        "method": row["amname"],
        "predicate": row["predicate"],
    }
