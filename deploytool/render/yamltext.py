"""YAML text of generated documents (the compose file): PyYAML's safe dumper, on libyaml when present.

Sorted keys, block style and a fixed width make the text a function of the data alone, so `render --check`
compares like with like. Never anchors and aliases: a value the renderer shares between two services (the
same healthcheck timing, say) is written out in each, as a person would read and edit it, and PyYAML skips
tracking every object it has seen (a tenth of dumping a 1,000-service file). The representer is entered
directly for plain types; tests/deploytool/test_render.py holds the text equal to PyYAML's own dumper.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from typing import Any

import yaml

_BASE: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml's emitter where it is installed


class _Dumper(_BASE):  # type: ignore[misc]
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
            return self.represent_dict(data)
        if kind is list:
            return self.represent_list(data)
        return super().represent_data(data)


def dump_yaml(document: Any) -> str:
    # PyYAML allocates a node object per value (70,000 for 1,000 services), none of them in a cycle, so the
    # cyclic collector would walk them a hundred times over and free nothing: reference counting frees them
    # all. Pausing it is a sixth of a big dump.
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
