"""Atomic, idempotent writes and the `--check` comparison.

Writing happens in two phases: every new file is first written beside its target under a temporary
name; then they are renamed over the old ones with SIGINT/SIGTERM held back, keeping a hard link to
each old file, so the set switches as a whole: an error in the middle puts every old file back. Either
way no temporary file is left. (No fsync per file: the guarantee is against an interrupted process, and
a thousand fsyncs cost seconds.)
"""

from __future__ import annotations

import contextlib
import difflib
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from deploytool.errors import UserError
from deploytool.output.manifest import previous_manifest
from deploytool.render.artifacts import Artifact
from deploytool.render.manifest import MANIFEST

TMP_SUFFIX = ".deploytool-tmp"
OLD_SUFFIX = ".deploytool-old"

FileStatus = Literal["created", "updated", "unchanged", "removed", "missing", "differs", "stale"]


@dataclass(frozen=True)
class FileChange:
    path: str
    status: FileStatus
    diff: str = ""


def _within(path: Path, folder: Path) -> bool:
    """True when `path` (symlinks resolved) lies inside `folder`: nothing outside it is ever removed."""
    try:
        path.resolve().relative_to(folder.resolve())
    except (ValueError, OSError):
        return False
    return True


def _stale(root: Path, out: Path, artifacts: list[Artifact]) -> list[str]:
    """Files the previous render wrote that this one no longer produces (a removed tenant's env file).

    Only entries of a valid manifest count, and only inside the output folder or the spec's lock file."""
    previous = previous_manifest(out)
    if previous is None:
        return []
    current = {a.path for a in artifacts}
    out_rel = os.path.relpath(out, root)
    candidates = [Path(out_rel, p).as_posix() for p in previous.artifacts] + list(previous.spec_artifacts)
    stale = []
    for rel in sorted(set(candidates) - current):
        path = root / rel
        folder = out if rel in {Path(out_rel, p).as_posix() for p in previous.artifacts} else root
        if path.is_file() and not path.is_symlink() and _within(path, folder):
            stale.append(rel)
    return stale


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        return None
    except IsADirectoryError:
        raise UserError(f"{path}: is a folder where deploytool writes a file; move it away") from None
    except UnicodeDecodeError:
        return ""  # not ours: it is replaced like any differing file


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Hold SIGINT/SIGTERM back while files switch over, so a Ctrl-C lands before or after, never between."""
    held = {signal.SIGINT, signal.SIGTERM}
    try:
        old = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    except (AttributeError, OSError, ValueError):  # not the main thread / no pthread_sigmask
        yield
        return
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _prepare_folder(folder: Path, made: set[Path]) -> None:
    if folder in made:
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise UserError(f"{folder}: a file is in the way of the output folder") from None
    except NotADirectoryError:
        raise UserError(f"{folder}: a parent of the output folder is a file") from None
    except OSError as exc:
        raise UserError(f"{folder}: cannot create the output folder: {exc.strerror}") from None
    made.add(folder)


def _switch(staged: list[tuple[Path, Path]]) -> None:
    """Rename every temp file over its target; on any error put every old file back, then re-raise."""
    done: list[tuple[Path, Path | None]] = []  # (target, hard link to its old content or None if it was new)
    try:
        for temp, target in staged:
            backup: Path | None = None
            if target.exists():
                backup = target.with_name(target.name + OLD_SUFFIX)
                backup.unlink(missing_ok=True)
                os.link(target, backup)
            done.append((target, backup))  # before the rename: an interrupt right here still rolls back
            os.replace(temp, target)
    except BaseException:
        for target, backup in reversed(done):
            if backup is None:
                target.unlink(missing_ok=True)
            elif target.exists() and os.path.samefile(backup, target):
                backup.unlink()  # not replaced yet (rename() of two links to one file would do nothing)
            else:
                os.replace(backup, target)
        for temp, _ in staged:
            temp.unlink(missing_ok=True)
        raise
    for _, backup in done:
        if backup is not None:
            backup.unlink(missing_ok=True)


def write_files(root: Path, out: Path, artifacts: list[Artifact]) -> list[FileChange]:
    changes: list[FileChange] = []
    staged: list[tuple[Path, Path]] = []
    stale = _stale(root, out, artifacts)
    folders: set[Path] = set()
    try:
        for artifact in artifacts:
            target = root / artifact.path
            old = _read(target)
            if old == artifact.content:
                changes.append(FileChange(artifact.path, "unchanged"))
                continue
            _prepare_folder(target.parent, folders)
            temp = target.with_name(target.name + TMP_SUFFIX)
            staged.append((temp, target))  # before writing, so an interruption cleans this one too
            try:
                # O_TRUNC also reuses a temp file left by a render killed with SIGKILL (ours by name)
                fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, artifact.mode)
            except OSError as exc:
                raise UserError(f"{target.parent}: cannot write there: {exc.strerror}") from None
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                os.fchmod(handle.fileno(), artifact.mode)  # exact mode, whatever the umask
                handle.write(artifact.content)
            changes.append(FileChange(artifact.path, "created" if old is None else "updated"))
    except BaseException:
        for temp, _ in staged:
            temp.unlink(missing_ok=True)
        raise
    # The manifest is renamed last so a reader never sees a manifest newer than its files.
    staged.sort(key=lambda pair: pair[1].name == MANIFEST)
    with _signals_held():
        _switch(staged)
        for path in stale:
            (root / path).unlink(missing_ok=True)
    changes += [FileChange(path, "removed") for path in stale]
    return changes


def check_files(root: Path, out: Path, artifacts: list[Artifact]) -> list[FileChange]:
    """Compare rendered artifacts with the disk; nothing is written."""
    changes: list[FileChange] = []
    for artifact in artifacts:
        target = root / artifact.path
        old = _read(target) if target.is_file() else None
        if old is None:
            changes.append(FileChange(artifact.path, "missing"))
            continue
        if old == artifact.content:
            changes.append(FileChange(artifact.path, "unchanged"))
            continue
        diff = "".join(
            difflib.unified_diff(
                old.splitlines(keepends=True),
                artifact.content.splitlines(keepends=True),
                fromfile=f"{artifact.path} (on disk)",
                tofile=f"{artifact.path} (rendered)",
                n=1,
            )
        )
        changes.append(FileChange(artifact.path, "differs", diff))
    changes += [FileChange(path, "stale") for path in _stale(root, out, artifacts)]
    return changes
