"""Read back the manifest `render` wrote into an output folder (for up, down, probe and stale files)."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError

from deploytool.errors import UserError, first_problem
from deploytool.render.manifest import MANIFEST, MANIFEST_VERSION, Manifest, ManifestFiles


def read_manifest(out_dir: Path, hint: str = "render the output folder again") -> Manifest:
    """The manifest in `out_dir`; UserError naming the file and field when it is missing, foreign or bad."""
    path = out_dir / MANIFEST
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(
            f"{path}: not found; run `deploytool render ENV` first (or pass its folder with --out)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read: {exc}") from None
    try:
        return Manifest.model_validate_json(text)
    except ValidationError as exc:
        older = _older_version(text)
        if older is not None:
            raise UserError(
                f"{path}: written by an older deploytool (manifest version {older}; this one reads version "
                f"{MANIFEST_VERSION}, where each process starts from its env file): run `deploytool render ENV` "
                "again (nothing else changes)"
            ) from None
        raise UserError(f"{path}: {first_problem(exc)}; {hint}") from None


def _older_version(text: str) -> int | None:
    """The version of a manifest an older deploytool wrote (an int below ours), else None."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    version = data.get("version") if isinstance(data, dict) else None
    return version if type(version) is int and 1 <= version < MANIFEST_VERSION else None


def previous_manifest(out_dir: Path) -> Manifest | ManifestFiles | None:
    """The manifest a previous render left, for stale-file detection: None when there is none, or when an
    older deploytool wrote it (its entries are then not trusted, so nothing is removed). Anything else that
    does not validate is an error: a hand-edited manifest must never steer what `render` deletes."""
    path = out_dir / MANIFEST
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = None
    if isinstance(data, dict) and data.get("version") in (2, 3):  # its files are still removed when stale
        try:
            return ManifestFiles.model_validate(data)
        except ValidationError as exc:
            raise UserError(f"{path}: {first_problem(exc)}; render the output folder again") from None
    if isinstance(data, dict) and isinstance(data.get("version"), int) and data["version"] < MANIFEST_VERSION:
        return None
    # render itself cannot fix it: it never removes files on the word of a manifest it cannot trust
    return read_manifest(out_dir, hint="it was not written by this deploytool; check it, delete it, then render")
