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
import json
import os
import re
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from deploytool.errors import UserError
from deploytool.output.fs import TMP_SUFFIX, create_temp, read_regular
from deploytool.output.manifest import previous_manifest
from deploytool.plan.lock import lock_path
from deploytool.render.artifacts import Artifact
from deploytool.render.manifest import MANIFEST, Manifest, ManifestFiles

__all__ = ["OLD_SUFFIX", "TMP_SUFFIX", "FileChange", "check_files", "write_files"]

OLD_SUFFIX = ".deploytool-old"
_ENVIRONMENT = re.compile(r'^  "environment": "([a-z][a-z0-9_-]*)",$', re.M)

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


def _environment(root: Path, out: Path, artifacts: list[Artifact]) -> str | None:
    """The environment these artifacts are of, from the manifest among them (None: no manifest rendered)."""
    path = Path(os.path.relpath(out, root), MANIFEST).as_posix()
    content = next((a.content for a in artifacts if a.path == path), None)
    if content is None:
        return None
    found = _ENVIRONMENT.search(content, 0, 4096)  # near the top: no need to parse 100,000 tenants' routes
    name = found.group(1) if found else json.loads(content).get("environment")
    return name if isinstance(name, str) else None


def _previous(out: Path, env_name: str | None) -> Manifest | ManifestFiles | None:
    """The previous render's manifest, refusing a folder another environment rendered into: an output folder
    belongs to one environment (its stale files, its shard lock), so nothing of another one is ever removed."""
    previous = previous_manifest(out)
    owner = getattr(previous, "environment", None)
    if env_name is not None and owner is not None and owner != env_name:
        raise UserError(
            f"{out}: holds the artifacts of environment {owner!r} ({MANIFEST}); an output folder belongs to one "
            f"environment: render {env_name!r} into its own folder (--out), or remove this one first"
        )
    return previous


def _stale(root: Path, out: Path, artifacts: list[Artifact]) -> list[str]:
    """Files the previous render wrote that this one no longer produces (a removed tenant's env file).

    Only entries of a valid manifest of the same environment count, and only inside the output folder or
    that environment's own shard lock (never another environment's, whatever the manifest says)."""
    env_name = _environment(root, out, artifacts)
    previous = _previous(out, env_name)
    if previous is None:
        return []
    current = {a.path for a in artifacts}
    out_rel = os.path.relpath(out, root)
    inside = {Path(out_rel, p).as_posix() for p in previous.artifacts}
    own_lock = lock_path(env_name) if env_name is not None else None
    beside = {p for p in previous.spec_artifacts if p == own_lock}
    stale = []
    for rel in sorted((inside | beside) - current):
        path = root / rel
        folder = out if rel in inside else root
        if path.is_file() and not path.is_symlink() and _within(path, folder):
            stale.append(rel)
    return stale


def _read(path: Path) -> str | None:
    """What is at an artifact's path: None when nothing; a FIFO, a link or a device there is refused."""
    return read_regular(path, "writes an artifact", lenient=True)  # not UTF-8: not ours, it is replaced


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
            try:
                # a new name, created exclusively: never an existing file, never through a planted link
                fd, temp = create_temp(target, artifact.mode)
            except OSError as exc:
                raise UserError(f"{target.parent}: cannot write there: {exc.strerror}") from None
            staged.append((temp, target))  # before writing, so an interruption cleans this one too
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
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
        old = _read(target)
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
