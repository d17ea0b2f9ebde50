"""Careful file primitives for the output folder: read only regular files, create temp files exclusively.

An output folder is a place others can write to (a shared checkout, a CI cache). Whatever sits at a path
deploytool writes must never steer it: a FIFO there would hang a read forever, a symbolic link at a
temporary name would send a secret elsewhere with the link target's mode.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from deploytool.errors import UserError
from deploytool.safeio import read_text

# Every temporary file deploytool creates ends with this (git-ignored: `*.deploytool-tmp`).
TMP_SUFFIX = ".deploytool-tmp"


def read_regular(path: Path, what: str = "writes a file", follow: bool = False, lenient: bool = False) -> str | None:
    """The text of the regular file at `path`, None when there is none; UserError for anything else there
    (`deploytool.safeio.read_text`: no link followed unless `follow`, a FIFO refused, bounded)."""
    return read_text(path, what, follow=follow, lenient=lenient)


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


def write_atomic(path: Path, data: str | bytes, mode: int = 0o644) -> None:
    """Put `data` at `path` as a whole: a new file beside it (`create_temp`), renamed over the old name. A link,
    a FIFO or a hard link to another file planted at `path` is replaced, never written through. UserError when
    the folder cannot take it (a folder at `path` included)."""
    temp: Path | None = None
    try:
        fd, temp = create_temp(path, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(temp, path)
    except BaseException as exc:
        if temp is not None:
            temp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise UserError(f"{path}: cannot write: {exc.strerror}") from None
        raise
