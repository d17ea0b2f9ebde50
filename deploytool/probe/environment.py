"""Probe a rendered environment: manifest from the output folder, keys from the environment or the secrets file."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from deploytool.output.secrets import secret_values
from deploytool.probe.runner import OnResult, ProbeReport, run_probe
from deploytool.probe.targets import as_manifest, build_targets
from deploytool.render.manifest import Manifest


def probe_environment(
    manifest: Manifest | Mapping[str, Any],
    out_dir: Path,
    urls: Mapping[str, str],
    environ: Mapping[str, str],
    timeout: float = 30.0,
    concurrency: int = 16,
    interval: float = 1.0,
    on_result: OnResult | None = None,
) -> ProbeReport:
    """build_targets + keys (`environ` first, then `<out_dir>/.secrets.env`) + run_probe."""
    manifest = as_manifest(manifest)
    targets = build_targets(manifest, urls)
    names = sorted({t.auth for t in targets if t.auth and t.url is not None})
    keys = secret_values(names, out_dir, environ)
    return run_probe(
        targets,
        keys,
        timeout=timeout,
        interval=interval,
        concurrency=concurrency,
        on_result=on_result,
        environment=manifest.environment,
    )
