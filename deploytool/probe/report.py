"""Probe reports for people (rich table, live progress) and for CI (JSON, JUnit XML)."""

from __future__ import annotations

import io
import json
import os
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from deploytool.errors import UserError
from deploytool.probe.runner import OnResult, ProbeReport, ProbeResult

FORMATS = ("table", "json", "junit")
_STYLE = {"pass": "green", "idle": "cyan", "fail": "bold red", "skip": "yellow"}
_LABEL = {"pass": "PASS", "idle": "IDLE", "fail": "FAIL", "skip": "SKIP"}


def summary(report: ProbeReport) -> dict[str, Any]:
    return {
        "total": len(report.results),
        "passed": report.passed,
        "failed": report.failed,
        "skipped": report.skipped,
        "idle": report.idle,
        "elapsed_s": report.elapsed,
    }


def result_dict(r: ProbeResult) -> dict[str, Any]:
    return {
        "id": r.id,
        "kind": r.kind,
        "service": r.service,
        "tenant": r.tenant,
        "via": r.via,
        "url": r.url,
        "status": r.status,
        "http_status": r.http_status,
        "attempts": r.attempts,
        "elapsed_s": r.elapsed,
        "reason": r.reason,
    }


def report_dict(report: ProbeReport) -> dict[str, Any]:
    """The JSON document: fixed key order, results in manifest order."""
    return {
        "environment": report.environment,
        "ok": report.ok,
        "summary": summary(report),
        "failed_tenants": report.failed_tenants,
        "results": [result_dict(r) for r in report.results],
    }


def summary_line(report: ProbeReport) -> str:
    head = "OK" if report.ok else "FAILED"
    idle = f", {report.idle} idle" if report.idle else ""
    text = (
        f"{head}: {report.passed} passed{idle}, {report.failed} failed, {report.skipped} skipped"
        f" in {report.elapsed:.1f}s"
    )
    if report.failed_tenants:
        text += f"; failed tenants: {', '.join(report.failed_tenants)}"
    if not report.ok and report.passed == 0 and report.failed == 0:
        text += "; no target was probed"
    return text


def _detail(r: ProbeResult) -> str:
    if r.status == "skip" or r.url is None:
        return r.reason
    if r.status in ("fail", "idle"):
        return f"GET {r.url} -> {r.reason}"
    return f"GET {r.url}"


def format_table(report: ProbeReport, *, color: bool = False, width: int = 140) -> str:
    table = Table(box=box.SIMPLE_HEAD, title=f"deploytool probe {report.environment}".rstrip(), title_justify="left")
    for name, kw in (
        ("result", {}),
        ("target", {"no_wrap": True}),
        ("service", {}),
        ("tenant", {}),
        ("http", {"justify": "right"}),
        ("tries", {"justify": "right"}),
        ("time", {"justify": "right"}),
        ("detail", {"overflow": "fold"}),
    ):
        table.add_column(name, **kw)
    for r in report.results:
        table.add_row(
            Text(_LABEL[r.status], style=_STYLE[r.status]),
            r.id,
            r.service,
            r.tenant or "",
            "" if r.http_status is None else str(r.http_status),
            str(r.attempts),
            f"{r.elapsed:.2f}s",
            _detail(r),
        )
    buf = io.StringIO()
    console = Console(
        file=buf,
        width=width,
        force_terminal=color,
        no_color=not color,
        color_system="standard" if color else None,
        highlight=False,
        emoji=False,
    )
    console.print(table)
    console.print(Text(summary_line(report), style="bold green" if report.ok else "bold red"))
    return "\n".join(line.rstrip() for line in buf.getvalue().splitlines()) + "\n"


def format_json(report: ProbeReport) -> str:
    return json.dumps(report_dict(report), indent=2, ensure_ascii=False) + "\n"


def format_junit(report: ProbeReport) -> str:
    """JUnit XML: one testsuite `deploytool probe ENV`, a testcase per target (classname = service)."""
    name = f"deploytool probe {report.environment}".rstrip()
    counts = {
        "tests": str(len(report.results)),
        "failures": str(report.failed),
        "errors": "0",
        "skipped": str(report.skipped),
        "time": f"{report.elapsed:.3f}",
    }
    root = ET.Element("testsuites", {"name": name, **counts})
    suite = ET.SubElement(root, "testsuite", {"name": name, **counts})
    for r in report.results:
        case = ET.SubElement(suite, "testcase", {"classname": r.service, "name": r.id, "time": f"{r.elapsed:.3f}"})
        tried = (
            f"GET {r.url}\nHTTP status: {r.http_status if r.http_status is not None else '-'}\n"
            f"attempts: {r.attempts}\nresult: {r.reason}"
        )
        if r.status == "fail":
            failure = ET.SubElement(case, "failure", {"message": r.reason, "type": "ProbeFailed"})
            failure.text = tried
        elif r.status == "skip":
            ET.SubElement(case, "skipped", {"message": r.reason})
        else:
            # An idle target passes (no <failure>); the property and the output say it was idle.
            props = ET.SubElement(case, "properties")
            ET.SubElement(props, "property", {"name": "probe.status", "value": r.status})
            ET.SubElement(case, "system-out").text = f"IDLE: {tried}" if r.status == "idle" else tried
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def format_report(report: ProbeReport, fmt: str = "table", *, color: bool = False, width: int = 140) -> str:
    """`table` (rich; ANSI colours only with color=True), `json` or `junit`. UserError on another name."""
    if fmt == "table":
        return format_table(report, color=color, width=width)
    if fmt == "json":
        return format_json(report)
    if fmt == "junit":
        return format_junit(report)
    raise UserError(f"--format: expected one of {', '.join(FORMATS)}, got {fmt!r}")


@contextmanager
def live_progress(total: int, stream: IO[str] | None = None) -> Iterator[OnResult | None]:
    """A progress bar on `stream` (default stderr) fed by the yielded `on_result` callback, only when the
    stream is a terminal; otherwise yields None and prints nothing. Failures are printed as they happen."""
    out = stream if stream is not None else sys.stderr
    if not (hasattr(out, "isatty") and out.isatty()):
        yield None
        return
    console = Console(file=out)
    with Progress(
        TextColumn("probing"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[failed]} failed"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("probe", total=total, failed=0)
        failed = 0

        def on_result(r: ProbeResult) -> None:
            nonlocal failed
            if r.status == "fail":
                failed += 1
                progress.console.print(Text(f"FAIL {r.id}: {r.reason}", style="red"))
            progress.update(task, advance=1, failed=failed)

        yield on_result


def check_output_path(path: Path) -> None:
    """UserError unless a report can be written at `path`, checked before probing (a typo must not cost a
    whole probe run): not a folder, and its folder there or made now."""
    if path.is_dir():
        raise UserError(f"--output: {path} is a folder; name a file")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"--output: cannot create the folder of {path}: {exc.strerror or exc}") from None
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise UserError(f"--output: cannot write in {path.parent} (no permission)")


def write_report(path: Path, text: str) -> None:
    """Write the report to `path` (its folders created); UserError naming the path when that fails."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UserError(f"--output: cannot write {path}: {exc.strerror or exc}") from None
