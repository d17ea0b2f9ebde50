"""Read back the manifest `render` wrote into an output folder (for up, probe and stale-file detection)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from deploytool.errors import UserError
from deploytool.render.manifest import MANIFEST


def read_manifest(out_dir: Path) -> dict[str, Any]:
    """The manifest in `out_dir`; UserError when it is missing or not a JSON object."""
    path = out_dir / MANIFEST
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(
            f"{path}: not found; run `deploytool render ENV` first (or pass its folder with --out)"
        ) from None
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: not readable JSON ({exc}); render the output folder again") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a JSON object; render the output folder again")
    return data
