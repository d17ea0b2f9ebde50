"""The spec reference (docs/spec.md), generated from the pydantic model so it cannot drift from it."""

from __future__ import annotations

import enum
import types
import typing
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from deploytool.spec.model import Spec, Target

HEADER = """# deploytool.yaml reference

Generated from deploytool's spec model by `deploytool schema --format markdown`; do not edit by hand
(a test compares this file with the model). `environments/<env>.yaml` overlays are deep-merged over
`deploytool.yaml`: mappings merge, a list or scalar replaces, `null` removes a key (back to its default).
Unknown keys are errors. Names in `<angle brackets>` are yours.
"""


def _type_name(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin is typing.Annotated:
        return _type_name(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        parts = [_type_name(a) for a in get_args(annotation) if a is not type(None)]
        nullable = type(None) in get_args(annotation)
        return " or ".join(parts) + (" or null" if nullable else "")
    if origin is typing.Literal:
        return " \\| ".join(f"`{v}`" for v in get_args(annotation))
    if origin is list:
        return f"list of {_type_name(get_args(annotation)[0])}"
    if origin is dict:
        key, value = get_args(annotation)
        return f"mapping {_type_name(key)} → {_type_name(value)}"
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum | Target):
        return " \\| ".join(f"`{m.value}`" for m in annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "mapping (below)"
    return {str: "string", int: "integer", bool: "boolean"}.get(annotation, getattr(annotation, "__name__", "?"))


def _models(annotation: Any) -> list[type[BaseModel]]:
    found: list[type[BaseModel]] = []
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        found.append(annotation)
    for arg in get_args(annotation):
        found += _models(arg)
    return found


def _default(field: Any) -> str:
    if field.is_required():
        return "**required**"
    value = field.get_default(call_default_factory=True)
    if value is PydanticUndefined:
        return ""
    if isinstance(value, enum.Enum | Target):
        value = value.value
    if isinstance(value, list):
        value = [v.value if isinstance(v, enum.Enum | Target) else v for v in value]
    if isinstance(value, BaseModel):
        return "(defaults below)"
    if value is None:
        return "`null`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`" if isinstance(value, str) else f"`{value!r}`"


def _section(path: str, model: type[BaseModel], out: list[str], seen: set[str]) -> None:
    out += ["", f"## `{path}`", ""]
    if model.__doc__:
        out += [" ".join(model.__doc__.split()), ""]
    out += ["| key | type | default | meaning |", "|---|---|---|---|"]
    children: list[tuple[str, type[BaseModel]]] = []
    for name, field in model.model_fields.items():
        key = field.alias or name
        description = " ".join((field.description or "").split()).replace("|", "\\|")
        out.append(f"| `{key}` | {_type_name(field.annotation)} | {_default(field)} | {description} |")
        for child in _models(field.annotation):
            origin = get_origin(typing.get_args(field.annotation)[0]) if get_args(field.annotation) else None
            suffix = ".<name>" if get_origin(field.annotation) is dict or origin is dict else ""
            children.append((f"{path}.{key}{suffix}" if path else f"{key}{suffix}", child))
    for child_path, child in children:
        if child.__name__ not in seen:
            seen.add(child.__name__)
            _section(child_path, child, out, seen)


def spec_reference() -> str:
    out = [HEADER.rstrip("\n")]
    _section("", Spec, out, {Spec.__name__})
    text = "\n".join(out).replace("## ``", "## top level")
    return text + "\n"
