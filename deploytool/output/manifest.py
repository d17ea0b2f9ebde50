"""Read back the manifest `render` wrote into an output folder (for up, down, probe and stale files)."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from deploytool.errors import UserError, first_problem
from deploytool.render.manifest import MANIFEST, MANIFEST_VERSION, Manifest, ManifestFiles
from deploytool.safeio import load_json, read_text

MANIFEST_WHAT = "keeps the manifest"


def read_manifest(out_dir: Path, hint: str = "render the output folder again") -> Manifest:
    """The manifest in `out_dir`; UserError naming the file and field when it is missing, foreign or bad."""
    path = out_dir / MANIFEST
    text = read_text(path, MANIFEST_WHAT)
    if text is None:
        raise UserError(f"{path}: not found; run `deploytool render ENV` first (or pass its folder with --out)")
    data = load_json(text, str(path))  # a key written twice is refused, not the last one kept
    try:
        return Manifest.model_validate(data)
    except ValidationError as exc:
        older = _older_version(data)
        if older is not None:
            raise UserError(
                f"{path}: written by an older deploytool (manifest version {older}; this one reads version "
                f"{MANIFEST_VERSION}, where each process starts from its env file): run `deploytool render ENV` "
                "again (nothing else changes)"
            ) from None
        raise UserError(f"{path}: {first_problem(exc)}; {hint}") from None


def _older_version(data: object) -> int | None:
    """The version of a manifest an older deploytool wrote (an int below ours), else None."""
    version = data.get("version") if isinstance(data, dict) else None
    return version if type(version) is int and 1 <= version < MANIFEST_VERSION else None


def previous_manifest(out_dir: Path) -> Manifest | ManifestFiles | None:
    """The manifest a previous render left, for stale-file detection: None when there is none, or when an
    older deploytool wrote it (its entries are then not trusted, so nothing is removed). Anything else that
    does not validate is an error: a hand-edited manifest must never steer what `render` deletes."""
    path = out_dir / MANIFEST
    text = read_text(path, MANIFEST_WHAT, lenient=True)
    if text is None:
        return None
    try:
        data = load_json(text, str(path))
    except UserError as exc:  # render never removes files on the word of a manifest it cannot read
        raise UserError(f"{exc}; it was not written by this deploytool; check it, delete it, then render") from None
    version = data.get("version") if isinstance(data, dict) else None
    if type(version) is not int:  # `true` or `2.0` is no version: read strictly below, and refused
        version = None
    if isinstance(data, dict) and version in (2, 3):  # env files per process: still removed when stale
        try:
            return ManifestFiles.model_validate(data)
        except ValidationError as exc:
            raise UserError(f"{path}: {first_problem(exc)}; render the output folder again") from None
    if version is not None and version < MANIFEST_VERSION:
        return None
    # render itself cannot fix it: it never removes files on the word of a manifest it cannot trust
    return read_manifest(out_dir, hint="it was not written by this deploytool; check it, delete it, then render")
