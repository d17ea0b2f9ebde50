"""The one way deploytool opens a file it did not just create: spec files, overlays, locks, the manifest, run
state, logs, `.gitignore`.

Those paths sit in folders others can write to (a shared checkout, a CI cache, an output folder). Whatever
was planted there must never steer deploytool: a symbolic link would make it read (and print) or truncate a
file elsewhere, a FIFO would hang it forever, a folder or a device would fail deep inside a parser, a huge
file would fill memory. So every open here is without following a link at the last step (`O_NOFOLLOW`),
without blocking (`O_NONBLOCK`: a FIFO is refused, not waited on), checked to be a regular file on the open
descriptor itself (`fstat`: no window between check and use) and read up to a bound. Folders deploytool
keeps its own files in (`.run/`, `.run/logs/`) must be real folders of this user. Writes go through the atomic
writer (`deploytool.output.fs.write_atomic`): a new file renamed over the old name, never through a link.

A top-level module like `errors`: every stage reads files, from `spec/` on.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
from pathlib import Path
from typing import Any

from deploytool.errors import UserError

# Larger than any file deploytool writes or reads (a 100,000-tenant manifest is a few tens of MB); a bigger file
# at one of its paths is not one of its files.
MAX_READ_BYTES = 256 * 1024 * 1024


def kind_of(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "a file"
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


def not_regular(path: Path, what: str, mode: int | None = None) -> UserError:
    if mode is None:
        try:
            mode = os.lstat(path).st_mode
        except OSError:
            mode = 0
    return UserError(
        f"{path}: is {kind_of(mode)} where deploytool {what}; only a regular file (or none) may be there: move it"
    )


def open_regular(
    path: Path, what: str, flags: int = os.O_RDONLY, follow: bool = False, create: int | None = None
) -> int | None:
    """An open descriptor of the regular file at `path` (blocking mode restored), None when nothing is there.

    `create`: the mode to create it with when missing (then never None). A link at the last step (unless
    `follow`), a FIFO, a socket, a device or a folder is a UserError naming what is there."""
    flags |= os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW)
    if create is not None:
        flags |= os.O_CREAT
    try:
        fd = os.open(path, flags, create if create is not None else 0o600)
    except (FileNotFoundError, NotADirectoryError):
        if create is not None:
            raise UserError(f"{path}: cannot create it: its folder is missing") from None
        return None
    except OSError as exc:
        # ELOOP: a link (O_NOFOLLOW); ENXIO: a FIFO without a reader opened for writing, or a socket;
        # EISDIR: a folder opened for writing
        if exc.errno in (errno.ELOOP, errno.ENXIO, errno.EOPNOTSUPP, errno.EISDIR):
            raise not_regular(path, what) from None
        raise UserError(f"{path}: cannot open: {exc.strerror}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise not_regular(path, what, mode)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_bytes(path: Path, what: str, follow: bool = False, limit: int = MAX_READ_BYTES) -> bytes | None:
    """The bytes of the regular file at `path` (at most `limit`, else a UserError), None when there is none."""
    fd = open_regular(path, what, follow=follow)
    if fd is None:
        return None
    try:
        data = _read_bounded(fd, limit)
    except OSError as exc:
        raise UserError(f"{path}: cannot read: {exc.strerror}") from None
    finally:
        os.close(fd)
    if len(data) > limit:
        raise UserError(f"{path}: larger than {limit:,} bytes; deploytool never writes a file that large there")
    return data


def _read_bounded(fd: int, limit: int) -> bytes:
    """Up to `limit` + 1 bytes of `fd`, each read sized by what fstat says is left: reading a small file never
    allocates a buffer of `limit` bytes (a read of limit + 1 bytes maps 256 MB for a 1 kB env file, ~50 us)."""
    size = os.fstat(fd).st_size
    parts: list[bytes] = []
    total = 0
    while total <= limit:
        chunk = os.read(fd, min(limit + 1 - total, max(size - total, 0) + 65536))  # the rest, or what it grew by
        if not chunk:
            break
        parts.append(chunk)
        total += len(chunk)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def read_text(
    path: Path, what: str, follow: bool = False, lenient: bool = False, limit: int = MAX_READ_BYTES
) -> str | None:
    """`read_bytes` decoded as UTF-8; text that is not UTF-8 is a UserError, or with `lenient` reads as ""."""
    data = read_bytes(path, what, follow=follow, limit=limit)
    if data is None:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if lenient:
            return ""
        raise UserError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def read_tail(path: Path, what: str, size: int) -> tuple[bytes, int] | None:
    """The last `size` bytes of the regular file at `path` and its length, None when there is none."""
    fd = open_regular(path, what)
    if fd is None:
        return None
    with os.fdopen(fd, "rb") as handle:
        end = os.fstat(fd).st_size
        handle.seek(max(0, end - size))
        return handle.read(size), end


def read_from(path: Path, what: str, offset: int, limit: int = MAX_READ_BYTES) -> tuple[bytes, int] | None:
    """What the regular file at `path` holds from `offset` (from 0 when it is shorter now) and its length."""
    fd = open_regular(path, what)
    if fd is None:
        return None
    with os.fdopen(fd, "rb") as handle:
        end = os.fstat(fd).st_size
        handle.seek(offset if offset <= end else 0)
        return handle.read(limit), end


def own_folder(path: Path, what: str) -> Path:
    """`path` as a real folder of this user, created (mode 0700) when missing; UserError when a link, a file
    or another user's folder is there (deploytool would write its files wherever that leads, or into a
    folder another user reads)."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        # made at the same moment by another deploytool: checked below like any folder found
        with contextlib.suppress(FileExistsError):
            os.mkdir(path, 0o700)
        info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode):
        raise UserError(
            f"{path}: is {kind_of(info.st_mode)} where deploytool keeps {what}; only its own folder may be there: "
            "move it"
        )
    if info.st_uid != os.geteuid():
        raise UserError(
            f"{path}: belongs to another user (uid {info.st_uid}), not to this one; deploytool keeps {what} only in "
            "a folder of its own: move it"
        )
    return path


def check_own_folder(path: Path, what: str) -> bool:
    """True when `path` is a folder of this user, False when nothing is there; UserError for anything else."""
    if not os.path.lexists(path):
        return False
    own_folder(path, what)
    return True


def load_json(text: str | bytes, where: str) -> Any:
    """JSON as deploytool's own files hold it: a key written twice in one object (Python's json would keep the
    last silently, so a hand edit could hide one entry behind another) and NaN or Infinity are UserErrors."""

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        found = dict(items)
        if len(found) != len(items):
            seen: set[str] = set()
            for key, _ in items:
                if key in seen:
                    raise UserError(f"{where}: key {key!r} is written twice in one object; keep one")
                seen.add(key)
        return found

    def constant(name: str) -> Any:
        raise UserError(f"{where}: {name} is not a JSON number")

    try:
        return json.loads(text, object_pairs_hook=pairs, parse_constant=constant)
    except RecursionError:
        raise UserError(f"{where}: nested too deeply to be one of deploytool's files") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise UserError(f"{where}: not valid JSON ({exc})") from None


def whole_number(value: Any) -> Any:
    """A pydantic BeforeValidator for an int field read from a file: `true` and `1.0` are no numbers there
    (pydantic takes both for an int, and `true` for `Literal[1]` even in strict mode). None passes (optional)."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise ValueError(f"expected a whole number, got {json.dumps(value)[:40]}")
    return value
