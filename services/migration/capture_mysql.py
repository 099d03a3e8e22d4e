"""Introspect a live MySQL or MariaDB database (information_schema) into the schema form.

The database is the one the connection config names; its tables are keyed
``database.table``. Columns keep their native ``COLUMN_TYPE`` (``int(10) unsigned``,
``tinyint(1)``, ``enum('s','m')``, ``decimal(12,4)`` ...) with ``charset`` and ``collation``;
``auto_increment`` is identity ``BY DEFAULT``; generated columns keep their expression.
MariaDB's JSON (a ``longtext`` with a ``json_valid`` check) is captured as ``json``, and its
``NULL`` default text as no default. The definition records ``"engine": "mysql"``
(docs/schema-definition.md#mysql-and-mariadb).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

from services.migration.schema_model import SCHEMA_FORMAT_VERSION
from shared.connection_configs import Destination
from shared.destinations import DestinationPolicy, DestinationUnreachable
from shared.mysql import MYSQL_ERRORS, connect_mysql, execute, fetch_all

log = logging.getLogger(__name__)

_COLUMNS = """
SELECT TABLE_NAME, COLUMN_NAME, COLUMN_DEFAULT, IS_NULLABLE, COLUMN_TYPE, DATA_TYPE,
       CHARACTER_SET_NAME, COLLATION_NAME, EXTRA, GENERATION_EXPRESSION
FROM information_schema.COLUMNS
WHERE TABLE_SCHEMA = %s
  AND TABLE_NAME IN (SELECT TABLE_NAME FROM information_schema.TABLES
                     WHERE TABLE_SCHEMA = %s AND TABLE_TYPE = 'BASE TABLE')
ORDER BY TABLE_NAME, ORDINAL_POSITION
"""

_TABLES = """
SELECT TABLE_NAME FROM information_schema.TABLES
WHERE TABLE_SCHEMA = %s AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME
"""

_INDEXES = """
SELECT TABLE_NAME, INDEX_NAME, NON_UNIQUE, COLUMN_NAME, SUB_PART, INDEX_TYPE, COLLATION
FROM information_schema.STATISTICS
WHERE TABLE_SCHEMA = %s
ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX
"""

_FOREIGN_KEYS = """
SELECT k.TABLE_NAME, k.CONSTRAINT_NAME, k.COLUMN_NAME, k.REFERENCED_TABLE_SCHEMA,
       k.REFERENCED_TABLE_NAME, k.REFERENCED_COLUMN_NAME, r.DELETE_RULE, r.UPDATE_RULE
FROM information_schema.KEY_COLUMN_USAGE k
JOIN information_schema.REFERENTIAL_CONSTRAINTS r
  ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME
 AND r.TABLE_NAME = k.TABLE_NAME
WHERE k.TABLE_SCHEMA = %s AND k.REFERENCED_TABLE_NAME IS NOT NULL
ORDER BY k.TABLE_NAME, k.CONSTRAINT_NAME, k.ORDINAL_POSITION
"""

# MariaDB checks a JSON column with `json_valid(`col`)`; MySQL 8 has information_schema
# CHECK_CONSTRAINTS too but a real JSON type, so the query finds nothing there.
_JSON_CHECKS = """
SELECT TABLE_NAME, CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS
WHERE CONSTRAINT_SCHEMA = %s
"""
_JSON_VALID = re.compile(r"^json_valid\(`((?:[^`]|``)+)`\)$", re.IGNORECASE)
_TEXT_TYPES = frozenset(
    {"char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set"}
)


async def server_version(conn: Any) -> str:
    """``major.minor`` of the server (``10.11`` for MariaDB 10.11.19)."""
    rows = await fetch_all(conn, "SELECT VERSION()")
    match = re.match(r"(\d+)\.(\d+)", str(rows[0][0]))
    return f"{match[1]}.{match[2]}" if match else str(rows[0][0])


async def capture_mysql_schema(conn: Any, database: str) -> dict[str, Any]:
    """The definition of `database` on the MySQL/MariaDB server behind `conn`.

    Reads run in one read-only, consistent-snapshot transaction.
    """
    await execute(conn, "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    await execute(conn, "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
    try:
        table_rows = await fetch_all(conn, _TABLES, (database,))
        column_rows = await fetch_all(conn, _COLUMNS, (database, database))
        index_rows = await fetch_all(conn, _INDEXES, (database,))
        foreign_rows = await fetch_all(conn, _FOREIGN_KEYS, (database,))
        check_rows = await fetch_all(conn, _JSON_CHECKS, (database,))
    finally:
        await execute(conn, "COMMIT")
    json_columns = {
        (table, match[1].replace("``", "`"))
        for table, clause in check_rows
        if (match := _JSON_VALID.match(str(clause).strip())) is not None
    }
    tables: dict[str, dict[str, Any]] = {
        name: {
            "columns": {},
            "primary_key": None,
            "unique_constraints": [],
            "foreign_keys": [],
            "indexes": [],
        }
        for (name,) in table_rows
    }
    for row in column_rows:
        columns = tables[row[0]]["columns"]
        columns[row[1]] = _column_of(row, len(columns) + 1, (row[0], row[1]) in json_columns)
    _add_indexes(tables, index_rows)
    _add_foreign_keys(tables, foreign_rows, database)
    return {
        "version": SCHEMA_FORMAT_VERSION,
        "engine": "mysql",
        "tables": {f"{database}.{name}": table for name, table in tables.items()},
    }


def _column_of(row: Sequence[Any], position: int, is_json: bool) -> dict[str, Any]:
    _, _, default, nullable, column_type, data_type, charset, collation, extra, expression = row
    extra = (extra or "").lower()
    generated = None
    if "generated" in extra and expression:
        generated = {"expression": expression, "stored": "stored" in extra}
    data_type = (data_type or "").lower()
    if is_json:
        column_type, charset, collation = "json", None, None
    return {
        "position": position,
        "type": column_type,
        "nullable": nullable == "YES",
        "default": None if generated else _default_of(default, data_type, extra),
        "identity": "BY DEFAULT" if "auto_increment" in extra else None,
        "generated": generated,
        "charset": charset if data_type in _TEXT_TYPES else None,
        "collation": collation if data_type in _TEXT_TYPES else None,
    }


def _default_of(default: Any, data_type: str, extra: str) -> str | None:
    """The default's expression text; MariaDB writes `NULL` for none and quotes literals."""
    if default is None or default == "NULL":
        return None
    text = str(default)
    quoted = text.startswith("'") or "default_generated" in extra or "(" in text
    if data_type in _TEXT_TYPES and not quoted:
        # MySQL 8 writes string literals unquoted; MariaDB quotes them.
        return "'" + text.replace("'", "''") + "'"
    return text


def _add_indexes(tables: dict[str, dict[str, Any]], rows: Sequence[Sequence[Any]]) -> None:
    grouped: dict[tuple[str, str], list[Sequence[Any]]] = {}
    for row in rows:
        if row[0] in tables:
            grouped.setdefault((row[0], row[1]), []).append(row)
    for (table_name, index_name), parts in grouped.items():
        table = tables[table_name]
        columns = [str(p[3]) for p in parts]
        if index_name == "PRIMARY":
            table["primary_key"] = {"name": "PRIMARY", "columns": columns}
        elif not int(parts[0][2]) and all(p[4] is None for p in parts):
            table["unique_constraints"].append({"name": index_name, "columns": columns})
        else:
            keys = []
            for _, _, _, column, sub_part, _, collation in parts:
                descending = collation == "D"
                key: dict[str, Any] = {"descending": descending, "nulls_first": not descending}
                if sub_part is None:
                    key["column"] = column
                else:
                    key["expression"] = f"`{column}`({int(sub_part)})"
                keys.append(key)
            table["indexes"].append(
                {
                    "name": index_name,
                    "keys": keys,
                    "unique": not int(parts[0][2]),
                    "method": str(parts[0][5] or "btree").lower(),
                }
            )


def _add_foreign_keys(
    tables: dict[str, dict[str, Any]], rows: Sequence[Sequence[Any]], database: str
) -> None:
    grouped: dict[tuple[str, str], list[Sequence[Any]]] = {}
    for row in rows:
        if row[0] in tables:
            grouped.setdefault((row[0], row[1]), []).append(row)
    for (table_name, name), parts in grouped.items():
        first = parts[0]
        tables[table_name]["foreign_keys"].append(
            {
                "name": name,
                "columns": [p[2] for p in parts],
                "referenced_table": f"{first[3] or database}.{first[4]}",
                "referenced_columns": [p[5] for p in parts],
                "on_delete": first[6],
                "on_update": first[7],
            }
        )


async def capture_live_mysql(
    destinations: DestinationPolicy,
    destination: Destination,
    *,
    connect_timeout: float,
    statement_timeout_ms: int,
) -> tuple[dict[str, Any], str]:
    """The definition and server version of a MySQL/MariaDB destination.

    DestinationNotAllowed, or DestinationUnreachable for every failure after the policy
    allowed it (the details are logged here).
    """
    conn = await connect_mysql(
        destinations,
        destination,
        timeout=connect_timeout,
        session=("SET SESSION TRANSACTION READ ONLY",),
    )
    try:
        version = await server_version(conn)
        await _statement_timeout(conn, statement_timeout_ms)
        definition = await capture_mysql_schema(conn, destination.database)
    except MYSQL_ERRORS as exc:
        log.warning("capturing %s failed: %s: %s", destination.describe(), type(exc).__name__, exc)
        raise DestinationUnreachable("the capture failed") from None
    finally:
        conn.close()
    return definition, version


async def _statement_timeout(conn: Any, milliseconds: int) -> None:
    rows = await fetch_all(conn, "SELECT VERSION()")
    if "mariadb" in str(rows[0][0]).lower():
        await execute(conn, f"SET SESSION max_statement_time = {milliseconds / 1000:.3f}")
    else:
        await execute(conn, f"SET SESSION max_execution_time = {int(milliseconds)}")
