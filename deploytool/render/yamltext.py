"""YAML text of generated documents (the compose file): PyYAML's safe dumper, on libyaml when present.

Sorted keys, block style and a fixed width make the text a function of the data alone, so `render --check`
compares like with like. No anchors and aliases of their own: PyYAML would alias any two equal objects the
renderer happens to share (the same healthcheck timing, say), and skipping that tracking is a tenth of
dumping a 1,000-service file. What many mappings share on purpose is a `Fragment`: written once, under its
own key, and merged (`<<: *anchor`) into each `Merged` mapping that uses it, as Compose's documentation
writes repeated service settings. The representer is entered directly for plain types;
tests/deploytool/test_render.py holds the text equal to PyYAML's own dumper.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

_BASE: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml's emitter where it is installed
_MAP_TAG = "tag:yaml.org,2002:map"
_MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclass(frozen=True, eq=False)
class Fragment:
    """A mapping written once, where it is a value (a top-level `x-` key, for Compose), anchored there."""

    value: Mapping[str, Any]


@dataclass(frozen=True, eq=False)
class Merged:
    """A mapping written as `<<: *fragment` and its `own` keys: a YAML reader gets `{**fragment, **own}`."""

    fragment: Fragment
    own: Mapping[str, Any]


class _Dumper(_BASE):  # type: ignore[misc]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._fragments: dict[Fragment, Any] = {}  # by identity (eq=False)

    def ignore_aliases(self, data: Any) -> bool:
        return True

    def represent_data(self, data: Any) -> Any:
        # The document is plain dicts, lists and strings: go straight to PyYAML's own representer for each,
        # skipping its per-object lookup through the type's MRO and the alias bookkeeping (a quarter of
        # dumping a 1,000-service file). Anything else takes PyYAML's own path, so the text is the same.
        kind = type(data)
        if kind is str:
            return self.represent_str(data)
        if kind is dict:
            if any(type(value) is Fragment for value in data.values()):
                return self._fragments_first(data)
            return self.represent_dict(data)
        if kind is list:
            return self.represent_list(data)
        if kind is Fragment:
            # One node for every use: libyaml's emitter anchors a node it meets twice and aliases it after.
            node = self._fragments.get(data)
            if node is None:
                node = self._fragments[data] = self.represent_dict(dict(data.value))
            return node
        if kind is Merged:
            merge = yaml.ScalarNode(_MERGE_TAG, "<<")
            own = self.represent_dict(dict(data.own))
            return yaml.MappingNode(_MAP_TAG, [(merge, self.represent_data(data.fragment)), *own.value])
        return super().represent_data(data)

    def _fragments_first(self, data: dict[str, Any]) -> Any:
        # The keys holding fragments go first, so each fragment is written (and anchored) under its own key
        # before its merges, not inside the first mapping that merges it.
        keys = sorted(data, key=lambda key: (type(data[key]) is not Fragment, key))
        return yaml.MappingNode(_MAP_TAG, [(self.represent_data(k), self.represent_data(data[k])) for k in keys])


def dump_yaml(document: Any) -> str:
    # PyYAML allocates a node object per value (70,000 for 1,000 services written in full), none of them in
    # a cycle, so the cyclic collector would walk them a hundred times over and free nothing: reference
    # counting frees them all. Pausing it is a sixth of a big dump.
    with _cycle_collector_paused():
        return yaml.dump(document, Dumper=_Dumper, sort_keys=True, default_flow_style=False, width=120)


@contextlib.contextmanager
def _cycle_collector_paused() -> Iterator[None]:
    if not gc.isenabled():  # paused already (by the caller, or another thread dumping): theirs to resume
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
