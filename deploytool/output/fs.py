"""Careful file primitives for the output folder: read only regular files, create temp files exclusively.

An output folder is a place others can write to (a shared checkout, a CI cache). Whatever sits at a path
deploytool writes must never steer it: a FIFO there would hang a read forever, a symbolic link at a
temporary name would send a secret elsewhere with the link target's mode.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path

from deploytool.errors import UserError

# Every temporary file deploytool creates ends with this (git-ignored: `*.deploytool-tmp`).
TMP_SUFFIX = ".deploytool-tmp"


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def not_regular(path: Path, what: str) -> UserError:
    try:
        kind = _kind(os.lstat(path).st_mode)
    except OSError:
        kind = "not a regular file"
    return UserError(f"{path}: is {kind} where deploytool {what}; only a regular file (or none) may be there: move it")


def read_regular(path: Path, what: str = "writes a file", follow: bool = False, lenient: bool = False) -> str | None:
    """The text of the regular file at `path`, None when there is none; UserError for anything else there.

    Opened without blocking (a FIFO is refused, not waited on) and, unless `follow`, without following a
    symbolic link at the last step. Text that is not UTF-8 is a UserError, or with `lenient` reads as ""
    (not ours: it differs)."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENXIO, errno.EOPNOTSUPP):  # a link (NOFOLLOW), a socket
            raise not_regular(path, what) from None
        raise UserError(f"{path}: cannot read: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise not_regular(path, what)
        data = handle.read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if lenient:
            return ""
        raise UserError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def create_temp(target: Path, mode: int) -> tuple[int, Path]:
    """A new temporary file beside `target`, created exclusively (never through a link, never an existing
    file), with `mode` set before any data is written. Returns (open fd for writing, path)."""
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=TMP_SUFFIX)
    try:
        os.fchmod(fd, mode)  # exact mode, whatever the umask (mkstemp creates 0600)
    except BaseException:
        os.close(fd)
        os.unlink(name)
        raise
    return fd, Path(name)
