"""The local secrets file: random values, generated once, git-ignored, mode 0600, never an artifact."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path

from deploytool.errors import UserError
from deploytool.output.fs import create_temp, read_regular
from deploytool.render.envfile import format_env, parse_env

SECRETS_FILE = ".secrets.env"


def read_secrets(out: Path) -> dict[str, str]:
    path = out / SECRETS_FILE
    # a link to a file kept elsewhere is fine; a FIFO (or a link to one) must not hang `render` or `up`
    text = read_regular(path, "keeps the local secrets", follow=True)
    if text is None:
        return {}
    try:
        return parse_env(text)
    except ValueError as exc:
        raise UserError(f"{path}: {exc}") from None


def ensure_secrets_file(out: Path, names: Iterable[str]) -> list[str]:
    """Add a random value for every missing name; existing values are kept. Returns the names added."""
    current = read_secrets(out)
    missing = sorted(set(names) - set(current))
    if not missing:
        return []
    values = {**current, **{name: secrets.token_urlsafe(32) for name in missing}}
    path = out / SECRETS_FILE
    temp: Path | None = None
    try:
        out.mkdir(parents=True, exist_ok=True)
        # a new name, created exclusively with mode 0600 before the values are written: a link planted at
        # a temporary name can never receive them
        fd, temp = create_temp(path, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(format_env(sorted(values.items()), header=["local secret values: never commit this file"]))
        os.replace(temp, path)
    except BaseException as exc:
        if temp is not None:
            temp.unlink(missing_ok=True)
        if not isinstance(exc, OSError):
            raise
        raise UserError(f"{path}: cannot write the local secrets file: {exc.strerror}") from None
    return missing


def secret_values(names: Iterable[str], out: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """Process environment first, then the secrets file."""
    stored = read_secrets(out)
    return {
        name: environ[name] if name in environ else stored[name] for name in names if name in environ or name in stored
    }


def git_ignored(path: Path) -> bool | None:
    """Whether git ignores `path`: None when that cannot be said (no git, or the folder is in no work tree)."""
    git = shutil.which("git")
    if git is None:
        return None
    folder = path.parent
    while not folder.is_dir():  # not written yet: ask from the nearest folder that exists
        folder = folder.parent
    try:
        inside = subprocess.run(
            [git, "rev-parse", "--is-inside-work-tree"], cwd=folder, capture_output=True, text=True, timeout=10
        )
        if inside.returncode != 0 or inside.stdout.strip() != "true":
            return None
        # 0: ignored, 1: not ignored, anything else: git could not say
        result = subprocess.run([git, "check-ignore", "-q", str(path.resolve())], cwd=folder, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return {0: True, 1: False}.get(result.returncode)
