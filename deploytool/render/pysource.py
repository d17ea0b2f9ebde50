"""Python literals for generated Python source (the Railway file)."""

from __future__ import annotations

import json


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
