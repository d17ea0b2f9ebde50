"""`deploytool probe`: check a live deployment, /health of every service and every tenant's QR endpoint.

    manifest = load_manifest(out_dir)                    # what `render` wrote
    targets = build_targets(manifest, urls)              # urls: {"web": "https://..."} from --url
    report = run_probe(targets, keys, timeout=30, interval=1, concurrency=16, on_result=None,
                       environment=manifest["environment"])
    print(format_report(report, "table" | "json" | "junit"))
    exit code: 0 if report.ok else 1 (CheckFailed)

or in one call: `probe_environment(manifest, out_dir, urls, environ, timeout, concurrency, interval)`.
"""

from deploytool.output.manifest import read_manifest as load_manifest
from deploytool.probe.checks import Verdict, judge
from deploytool.probe.environment import probe_environment
from deploytool.probe.report import FORMATS, format_report, live_progress, report_dict, summary_line
from deploytool.probe.runner import ProbeReport, ProbeResult, run_probe
from deploytool.probe.targets import PRIVATE_SKIP, ProbeTarget, build_targets, parse_url_options

__all__ = [
    "FORMATS",
    "PRIVATE_SKIP",
    "ProbeReport",
    "ProbeResult",
    "ProbeTarget",
    "Verdict",
    "build_targets",
    "format_report",
    "judge",
    "live_progress",
    "load_manifest",
    "parse_url_options",
    "probe_environment",
    "report_dict",
    "run_probe",
    "summary_line",
]
