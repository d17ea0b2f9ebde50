"""YAML text of generated documents, byte-identical to PyYAML's `safe_dump(sort_keys=True,
default_flow_style=False, width=120)`, about 10x faster for what deploytool writes.

PyYAML (even with libyaml) builds a node for every value in Python and resolves every scalar's tag: a
quarter of a 1,000-service render. Generated documents are small trees of a few kinds of values, so
this writes them directly and decides each distinct string's style once, with PyYAML's own rules
(its scalar analysis and implicit resolvers) and folds long lines where PyYAML does. Anything outside
that (non-ASCII or multi-line text, a mapping inside a list, a key that is not a string or holds a
space) goes to PyYAML itself, so the output never depends on which path wrote it
(tests/deploytool/test_yamltext.py).
"""

from __future__ import annotations

import re
from typing import Any

WIDTH = 120
# Strings PyYAML always writes plain unless a resolver reads them as another type: no space, no
# indicator first, no ':' or '#' that could start a mapping value or a comment.
_PLAIN = re.compile(r"(?!\.\.\.)[A-Za-z0-9_./$(][A-Za-z0-9_./$(){}=+@%,:;~^-]*(?<!:)\Z")
_ASCII_LINE = re.compile(r"[\x20-\x7e]*\Z")


class _Fallback(Exception):
    """The document holds something this writer leaves to PyYAML."""


class _Styles:
    """Each distinct string's YAML spelling, decided once per document with PyYAML's rules."""

    def __init__(self) -> None:
        from yaml.emitter import Emitter
        from yaml.resolver import Resolver

        self.cache: dict[str, str] = {}
        self.resolvers = Resolver.yaml_implicit_resolvers
        self.wildcard = Resolver.yaml_implicit_resolvers.get(None, [])
        self.emitter = Emitter.__new__(Emitter)  # only for analyze_scalar, which reads allow_unicode
        self.emitter.allow_unicode = False

    def resolves_to_str(self, text: str) -> bool:
        for _tag, pattern in [*self.resolvers.get(text[0] if text else "", []), *self.wildcard]:
            if pattern.match(text):
                return False
        return True

    def spell(self, text: str, column: int, indent: int) -> str:
        """The spelling of `text` starting at `column`; folded lines continue at `indent`."""
        cached = self.cache.get(text)
        if cached is None:
            cached = self.cache[text] = self._spell(text)
        if column + len(cached) > WIDTH and " " in cached:
            return _fold(cached, column, indent)
        return cached

    def _spell(self, text: str) -> str:
        if not text:
            return "''"
        if not _ASCII_LINE.match(text):
            raise _Fallback
        plain_ok = bool(_PLAIN.match(text)) or self.emitter.analyze_scalar(text).allow_block_plain
        if plain_ok and self.resolves_to_str(text):
            return text
        return "'" + text.replace("'", "''") + "'"


def _fold(spelled: str, column: int, indent: int) -> str:
    """PyYAML's folding of a long plain or single-quoted scalar: a lone space (not part of a run of
    spaces, nor right inside a quote) reached past the width becomes a line break and `indent` spaces."""
    quoted = spelled.startswith("'")
    out: list[str] = []
    start, base, last = 0, column, len(spelled) - 1
    for at, char in enumerate(spelled):
        if char != " " or (at > 0 and spelled[at - 1] == " ") or (at < last and spelled[at + 1] == " "):
            continue
        if quoted and at in (1, last - 1):
            continue
        if base + (at - start) > WIDTH:
            out.append(spelled[start:at])
            out.append("\n" + " " * indent)
            start, base = at + 1, indent
    out.append(spelled[start:])
    return "".join(out)


def _scalar(value: Any, styles: _Styles, column: int, indent: int) -> str:
    if isinstance(value, str):
        return styles.spell(value, column, indent)
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if type(value) is int:
        return str(value)
    raise _Fallback


def _mapping(mapping: dict[Any, Any], indent: int, styles: _Styles, out: list[str]) -> None:
    pad = " " * indent
    for key in sorted(mapping):
        if not isinstance(key, str) or len(key) >= 128:
            raise _Fallback
        value = mapping[key]
        if " " in key:
            raise _Fallback  # a simple key is never folded; keep the rules here simple
        name = styles.spell(key, indent, indent)
        if isinstance(value, dict):
            if value:
                out.append(f"{pad}{name}:\n")
                _mapping(value, indent + 2, styles, out)
            else:
                out.append(f"{pad}{name}: {{}}\n")
        elif isinstance(value, list):
            if value:
                out.append(f"{pad}{name}:\n")
                for item in value:  # PyYAML's indentless sequence inside a mapping
                    if isinstance(item, (dict, list)):
                        raise _Fallback
                    out.append(f"{pad}- {_scalar(item, styles, indent + 2, indent + 2)}\n")
            else:
                out.append(f"{pad}{name}: []\n")
        else:
            out.append(f"{pad}{name}: {_scalar(value, styles, indent + len(name) + 2, indent + 2)}\n")


def pyyaml_dump(document: Any) -> str:
    import yaml

    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml when built with it; same output
    return yaml.dump(document, Dumper=dumper, sort_keys=True, default_flow_style=False, width=WIDTH)


def dump_yaml(document: Any) -> str:
    """`document` (a mapping of mappings, lists and scalars) as PyYAML's safe_dump would write it."""
    if not isinstance(document, dict) or not document:
        return pyyaml_dump(document)
    out: list[str] = []
    try:
        _mapping(document, 0, _Styles(), out)
    except _Fallback:
        return pyyaml_dump(document)
    return "".join(out)
