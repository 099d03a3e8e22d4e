"""No code leaves session state on a pooled connection: the pool releases without a reset.

`shared.db.create_pool` turns asyncpg's reset-on-release off (it cost a round trip per
call), which is only safe while session-level state lives on connections of their own.
This reads the source for the statements that create such state and allows each only
where it runs on a dedicated connection.
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# What creates session state, and the files allowed to use it (on dedicated connections).
SESSION_STATE = {
    "session advisory lock": (
        re.compile(r"pg_(try_)?advisory_lock(_shared)?\("),
        {
            "shared/db.py",  # migrate(): the connection start() opens for it
            "services/pattern/store/index_queue.py",  # the indexer's own lock connection
        },
    ),
    "LISTEN": (re.compile(r"""add_listener\(|["']LISTEN\s"""), {"shared/listen.py"}),
    "session SET": (
        re.compile(r"""\(\s*f?["']SET\s+(?!LOCAL\b)"""),  # a statement that starts with SET
        {
            "services/org/__main__.py",  # `bootstrap`: its own connection
            "services/migration/capture_mysql.py",  # callers' MySQL servers, own connections
            "services/verification/checksum_mysql.py",  # the same, for CHECKSUM
            "shared/mysql.py",
        },
    ),
    "session set_config": (re.compile(r"set_config\([^)]*,\s*false\s*\)", re.IGNORECASE), set()),
    "temporary table": (re.compile(r"CREATE\s+TEMP", re.IGNORECASE), set()),
    "holdable cursor": (re.compile(r"WITH\s+HOLD", re.IGNORECASE), set()),
}


def _sources() -> list[Path]:
    return sorted(
        path
        for folder in ("services", "shared")
        for path in (REPO / folder).rglob("*.py")
        if "_pb2" not in path.name
    )


def test_session_state_is_only_created_on_dedicated_connections() -> None:
    found = []
    for path in _sources():
        relative = path.relative_to(REPO).as_posix()
        text = path.read_text()
        for what, (pattern, allowed) in SESSION_STATE.items():
            if relative not in allowed and pattern.search(text):
                found.append(f"{relative}: {what}")
    assert found == []


def test_the_indexer_takes_its_session_lock_on_a_connection_of_its_own() -> None:
    indexer = (REPO / "services/pattern/indexer.py").read_text()
    assert "store.try_lock_indexer(lock_conn)" in indexer
    assert "store.lock_indexer(lock_conn)" in indexer
