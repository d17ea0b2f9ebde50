"""Rendered files as data: a path relative to the project root and the exact text to write."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from deploytool.plan.model import Plan


@dataclass(frozen=True)
class Artifact:
    path: str  # posix path relative to the project root
    content: str
    mode: int = 0o644
    # The data `content` was dumped from, when a target has it: its checks read this instead of parsing
    # the text back. Not part of the file (equality, hash and manifest ignore it).
    document: Any = field(default=None, compare=False, repr=False)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content.encode()).hexdigest()


@dataclass(frozen=True)
class RenderContext:
    root: Path  # folder of deploytool.yaml
    out: Path  # the environment's output folder
    # Every environment of the spec, planned from the committed files alone (no local overlay, no --set),
    # for a file one project shares (Railway's one IaC file). Called only by a target that needs it.
    peers: Callable[[], Mapping[str, Plan]] | None = field(default=None, compare=False, repr=False)

    @cached_property
    def out_rel(self) -> str:
        """Output folder relative to the root (processes run from the root)."""
        return PurePosixPath(Path(os.path.relpath(self.out.resolve(), self.root.resolve())).as_posix()).as_posix()

    @cached_property
    def out_prefix(self) -> str:
        """What every artifact path inside the output folder starts with."""
        return "" if self.out_rel == "." else self.out_rel + "/"

    def in_out(self, name: str) -> str:
        return (PurePosixPath(self.out_rel) / name).as_posix()

    def source_from_out(self, source: str) -> str:
        """A service's code folder as seen from the output folder (compose build contexts)."""
        return Path(os.path.relpath((self.root / source).resolve(), self.out.resolve())).as_posix()
