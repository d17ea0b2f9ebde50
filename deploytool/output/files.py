"""Atomic, idempotent writes and the `--check` comparison.

Writing happens in two phases: every new file is first written beside its target under a temporary
name, and only then are they renamed over the old ones (a rename is atomic). An interruption before
the second phase leaves every previous file exactly as it was. (No fsync per file: the guarantee is
against an interrupted process, and a thousand fsyncs cost seconds.)
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from pathlib import Path

from deploytool.errors import UserError
from deploytool.output.manifest import read_manifest
from deploytool.render.artifacts import Artifact

TMP_SUFFIX = ".deploytool-tmp"


@dataclass(frozen=True)
class FileChange:
    path: str
    status: str  # created | updated | unchanged | removed | missing | differs | stale
    diff: str = ""


def _previous_artifacts(root: Path, manifest_rel: str | None) -> set[str]:
    if manifest_rel is None or not (root / manifest_rel).is_file():
        return set()
    try:
        artifacts = read_manifest((root / manifest_rel).parent).get("artifacts")
    except UserError:
        return set()  # an unreadable old manifest only means no stale files can be named
    return set(artifacts) if isinstance(artifacts, dict) else set()


def _stale(root: Path, artifacts: list[Artifact], manifest_rel: str | None) -> list[str]:
    """Files the previous render wrote that this one no longer produces (a removed tenant's env file)."""
    current = {a.path for a in artifacts}
    return sorted(p for p in _previous_artifacts(root, manifest_rel) - current if (root / p).is_file())


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        return None


def write_files(root: Path, artifacts: list[Artifact], manifest_rel: str | None = None) -> list[FileChange]:
    changes: list[FileChange] = []
    staged: list[tuple[Path, Path]] = []
    stale = _stale(root, artifacts, manifest_rel)
    folders: set[Path] = set()
    try:
        for artifact in artifacts:
            target = root / artifact.path
            old = _read(target)
            if old == artifact.content:
                changes.append(FileChange(artifact.path, "unchanged"))
                continue
            if target.parent not in folders:
                target.parent.mkdir(parents=True, exist_ok=True)
                folders.add(target.parent)
            temp = target.with_name(target.name + TMP_SUFFIX)
            staged.append((temp, target))  # before writing, so an interruption cleans this one too
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, artifact.mode)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                os.fchmod(handle.fileno(), artifact.mode)  # exact mode, whatever the umask
                handle.write(artifact.content)
            changes.append(FileChange(artifact.path, "created" if old is None else "updated"))
    except BaseException:
        for temp, _ in staged:
            temp.unlink(missing_ok=True)
        raise
    # The manifest is renamed last so a reader never sees a manifest newer than its files.
    staged.sort(key=lambda pair: pair[1].name == "deploytool-manifest.json")
    for temp, target in staged:
        os.replace(temp, target)
    for path in stale:
        (root / path).unlink()
        changes.append(FileChange(path, "removed"))
    return changes


def check_files(root: Path, artifacts: list[Artifact], manifest_rel: str | None = None) -> list[FileChange]:
    """Compare rendered artifacts with the disk; nothing is written."""
    changes: list[FileChange] = []
    for artifact in artifacts:
        target = root / artifact.path
        if not target.is_file():
            changes.append(FileChange(artifact.path, "missing"))
            continue
        old = target.read_text()
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
    changes += [FileChange(path, "stale") for path in _stale(root, artifacts, manifest_rel)]
    return changes
