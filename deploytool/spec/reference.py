"""The spec reference (docs/spec.md), generated from the spec's records so it cannot drift from them."""

from __future__ import annotations

from typing import Any, get_args, get_origin

from deploytool.spec.model import Spec
from deploytool.typed import FieldInfo, Record, dump, fields_of, is_record, type_name

HEADER = """# deploytool.yaml reference

Generated from deploytool's spec model by `deploytool schema --format markdown`; do not edit by hand
(a test compares this file with the model). `environments/<env>.yaml` overlays are deep-merged over
`deploytool.yaml`: mappings merge, a list or scalar replaces, `null` removes a key (back to its default).
Unknown keys are errors. Names in `<angle brackets>` are yours.
"""


def _records(annotation: Any) -> list[type[Record]]:
    found: list[type[Record]] = []
    if is_record(annotation):
        found.append(annotation)
    for arg in get_args(annotation):
        found += _records(arg)
    return found


def _default(info: FieldInfo) -> str:
    if info.required:
        return "**required**"
    value = info.default_value()
    if isinstance(value, Record):
        return "(defaults below)"
    value = dump(value)
    if value is None:
        return "`null`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`" if isinstance(value, str) else f"`{value!r}`"


def _section(path: str, model: type[Record], out: list[str], seen: set[str]) -> None:
    out += ["", f"## `{path}`", ""]
    if model.__doc__:
        out += [" ".join(model.__doc__.split()), ""]
    out += ["| key | type | default | meaning |", "|---|---|---|---|"]
    children: list[tuple[str, type[Record]]] = []
    for info in fields_of(model):
        description = " ".join(info.doc.split()).replace("|", "\\|")
        out.append(f"| `{info.key}` | {type_name(info.annotation)} | {_default(info)} | {description} |")
        for child in _records(info.annotation):
            inner = get_args(info.annotation)
            origin = get_origin(inner[0]) if inner else None
            suffix = ".<name>" if get_origin(info.annotation) is dict or origin is dict else ""
            children.append((f"{path}.{info.key}{suffix}" if path else f"{info.key}{suffix}", child))
    for child_path, child in children:
        if child.__name__ not in seen:
            seen.add(child.__name__)
            _section(child_path, child, out, seen)


def spec_reference() -> str:
    out = [HEADER.rstrip("\n")]
    _section("", Spec, out, {Spec.__name__})
    text = "\n".join(out).replace("## ``", "## top level")
    return text + "\n"
