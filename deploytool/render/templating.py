"""Jinja environment over the top-level `templates/` folder (shipped inside the wheel)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import jinja2

_PACKAGE = Path(__file__).resolve().parent.parent


def templates_dir() -> Path:
    # Wheel: templates are packaged as deploytool/templates. Source checkout / editable: ../templates.
    for candidate in (_PACKAGE / "templates", _PACKAGE.parent / "templates"):
        if candidate.is_dir():
            return candidate
    raise RuntimeError("deploytool templates folder is missing from the installation")


@cache
def environment() -> jinja2.Environment:
    import jinja2  # only the targets that use a template pay for it

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["pyrepr"] = pyrepr
    return env


def pyrepr(value: object) -> str:
    """Python source for a literal, double-quoted like the rest of the file; dict keys sorted."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{pyrepr(k)}: {pyrepr(v)}" for k, v in sorted(value.items())) + "}"
    if isinstance(value, tuple):
        inner = ", ".join(pyrepr(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, list):
        return "[" + ", ".join(pyrepr(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value)  # every JSON string literal is a valid Python string literal
    return repr(value)


def render_template(name: str, **values: object) -> str:
    return environment().get_template(name).render(**values)
