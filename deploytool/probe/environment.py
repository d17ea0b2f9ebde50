"""Probe a rendered environment: manifest from the output folder, keys from the environment or the secrets file."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from deploytool.output.secrets import secret_values
from deploytool.plan.model import Role
from deploytool.probe.runner import OnResult, ProbeReport, ProbeResult, Status, run_probe
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
    report = run_probe(
        targets,
        keys,
        timeout=timeout,
        interval=interval,
        concurrency=concurrency,
        on_result=on_result,
        environment=manifest.environment,
    )
    workers = worker_results(manifest, out_dir, environ)
    for result in workers:
        if on_result is not None:
            on_result(result)
    return replace(report, results=[*report.results, *workers]) if workers else report


def worker_results(manifest: Manifest, out_dir: Path, environ: Mapping[str, str]) -> list[ProbeResult]:
    """One result per worker: it has no URL to ask, so where the environment runs here its runner says whether
    it runs and, with a `health_command`, is healthy (a dead worker fails the probe). Elsewhere: skipped."""
    workers = [svc for svc in manifest.services if svc.role is Role.worker]
    if not workers:
        return []
    from deploytool import run
    from deploytool.run.environment import as_up_had_it

    started = time.monotonic()
    current = run.running_runner(out_dir)
    statuses = {}
    if current is not None:
        statuses = {s.name: s for s in current.status(out_dir, as_up_had_it(out_dir, environ).environ)}
    results = []
    for svc in workers:
        status = statuses.get(svc.name)
        if status is None:
            verdict: Status = "skip"
            reason = "not running here: a worker has no URL to probe (its platform's health check watches it)"
        else:
            verdict = "pass" if status.state in ("healthy", "running") else "fail"
            reason = f"{current.name if current else ''} runner: {status.state}" + (
                f" ({status.detail})" if status.detail else ""
            )
        elapsed = round(time.monotonic() - started, 3)
        results.append(
            ProbeResult(f"worker:{svc.name}", "worker", svc.name, None, None, None, verdict, None, 1, elapsed, reason)
        )
    return results
