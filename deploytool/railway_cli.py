"""`deploytool railway plan|apply ENV`: hand ENV's own Railway file to Railway's CLI, only while linked to ENV.

Railway's CLI (5.43) has no `--environment` option on `railway config plan|apply`: it evaluates the file
and diffs it with the environment it is *linked* to (`railway link` / `railway environment NAME`,
`RAILWAY_PROJECT_ID` + `RAILWAY_ENVIRONMENT_ID`, or a project token `RAILWAY_TOKEN` scoped to one
environment). Each deploytool environment has its own file, so applying it while linked to another
environment would push one environment's layout onto another. Before anything is evaluated, this module
asks the CLI which environment it is linked to and refuses a mismatch.

The link is read from `railway environment list --json`: its `isLinked` flag comes from the same
resolution (`Configs::get_linked_project`) that `railway config plan|apply` use, so every way of linking
above is honoured. `railway status --json` is not used: without `--environment` it prints the project
with every environment and does not say which one is linked.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from deploytool.errors import UserError
from deploytool.redact import is_secret_name, redact_values

Action = Literal["plan", "apply"]
CLI_NAME = "railway"
INSTALL_HINT = "install it with `npm install -g @railway/cli` (it needs `python3` with railway-sdk on PATH)"
LINK_TIMEOUT = 60.0  # seconds for `railway environment list --json`
TESTED_CLI_VERSION = "5.43.1"  # the Railway CLI whose `environment list --json` and `config plan|apply` are used
# What `railway environment list --json` prints (5.43.1; further keys such as isEphemeral are ignored)
ENVIRONMENT_LIST_SHAPE = '{"environments": [{"id": "...", "name": "...", "isLinked": true|false}, ...]}'


@dataclass(frozen=True)
class LinkedEnvironment:
    id: str
    name: str


def find_cli(environ: Mapping[str, str]) -> str:
    """The `railway` executable on the PATH of `environ`, or a UserError saying how to get it."""
    found = shutil.which(CLI_NAME, path=environ.get("PATH", os.defpath))
    if found is None:
        raise UserError(f"the Railway CLI (`{CLI_NAME}`) is not on PATH; {INSTALL_HINT}")
    return found


def _mask(text: str, environ: Mapping[str, str]) -> str:
    """The CLI's own words, without the value of any secret-named variable (RAILWAY_TOKEN, …)."""
    return redact_values(text, [value for name, value in environ.items() if is_secret_name(name)])


def linked_environment(cli: str, environ: Mapping[str, str]) -> LinkedEnvironment:
    """The Railway environment `railway config plan|apply` would act on, as the CLI itself resolves it."""
    command = [cli, "environment", "list", "--json"]
    try:
        result = subprocess.run(
            command, env=dict(environ), capture_output=True, text=True, timeout=LINK_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        raise UserError(f"`railway environment list --json` did not answer within {LINK_TIMEOUT:g} s") from None
    except OSError as exc:
        raise UserError(f"cannot run the Railway CLI ({cli}): {exc.strerror or exc}") from None
    if result.returncode != 0:
        said = _mask((result.stderr or result.stdout).strip(), environ)
        lines = said.splitlines()
        detail = f": {lines[-1]}" if lines else ""
        raise UserError(
            f"`railway environment list --json` failed (exit {result.returncode}){detail}. "
            "Log in with `railway login` (or set RAILWAY_TOKEN) and link the project with `railway link`"
        )
    try:
        document = json.loads(result.stdout)
        environments = document["environments"]
        linked = [e for e in environments if isinstance(e, dict) and e.get("isLinked") is True]
    except (ValueError, KeyError, TypeError):
        raise UserError(_unexpected_list(result.stdout, environ)) from None
    if not linked:
        raise UserError(
            "the Railway CLI is linked to no environment; run `railway environment NAME` "
            "(or set RAILWAY_ENVIRONMENT_ID, or use a project token for that environment)"
        )
    return LinkedEnvironment(id=str(linked[0].get("id", "")), name=str(linked[0].get("name", "")))


def _unexpected_list(stdout: str, environ: Mapping[str, str]) -> str:
    first = next((line.strip() for line in stdout.splitlines() if line.strip()), "")
    got = _mask(first, environ)
    shown = f"{got[:120]}…" if len(got) > 120 else got or "(nothing)"
    return (
        f"`railway environment list --json` printed something deploytool cannot read (first line: {shown}); "
        f"expected {ENVIRONMENT_LIST_SHAPE}, as the Railway CLI {TESTED_CLI_VERSION} prints it. "
        f"Check `railway --version` (tested with {TESTED_CLI_VERSION}; `npm install -g @railway/cli` updates it)"
    )


def require_link(expected: str, linked: LinkedEnvironment, env_name: str) -> None:
    if linked.name != expected:
        raise UserError(
            f"{env_name}: the Railway CLI is linked to environment {linked.name!r}, but "
            f"environments/{env_name}.yaml is Railway environment {expected!r}; nothing was planned or applied. "
            f"Run `railway environment {expected}` (or use the RAILWAY_TOKEN or RAILWAY_ENVIRONMENT_ID of {expected!r})"
        )


def config_command(
    cli: str,
    action: Action,
    file: Path,
    *,
    json_output: bool = False,
    yes: bool = False,
    confirm_destructive: bool = False,
    detailed_exit_code: bool = False,
) -> list[str]:
    """`railway config plan|apply --file FILE` with the flags the CLI accepts for that action.

    `--yes` and `--confirm-destructive` exist for apply only, `--detailed-exit-code` for plan only (the
    CLI refuses them elsewhere). `--show-values` is never passed: secrets stay redacted in the plan."""
    command = [cli, "config", action, "--file", str(file)]
    if json_output:
        command.append("--json")
    if action == "apply":
        if yes:
            command.append("--yes")
        if confirm_destructive:
            command.append("--confirm-destructive")
    elif detailed_exit_code:
        command.append("--detailed-exit-code")
    return command


def run_streaming(command: Sequence[str], environ: Mapping[str, str]) -> int:
    """Run the CLI with this terminal (its output streams; apply may prompt) and return its exit code."""
    try:
        return subprocess.run(list(command), env=dict(environ), check=False).returncode
    except OSError as exc:
        raise UserError(f"cannot run the Railway CLI ({command[0]}): {exc.strerror or exc}") from None


def ci_says_yes(environ: Mapping[str, str]) -> bool:
    """CI=true (GitHub Actions and most CI set it): nobody can answer the apply prompt."""
    return environ.get("CI", "").strip().lower() == "true"


def prepare(spec_path: Path, env_name: str, out: Path | None) -> tuple[Path, str, list[str]]:
    """Render ENV in memory and insist the disk already holds exactly that (`render --check`).

    Returns the Railway file to hand to the CLI, the Railway environment name it describes, and the
    warnings to show. The CLI evaluates the file on disk, so a stale file is refused (exit 1) rather
    than rendered here: what is applied is what was reviewed and committed."""
    from deploytool import pipeline
    from deploytool.errors import CheckFailed
    from deploytool.targets.railway import RAILWAY_FILE, RailwayTarget

    rendered = pipeline.render_environment(spec_path, env_name, out)
    if RailwayTarget.target not in rendered.plan.targets:
        have = ", ".join(t.value for t in rendered.plan.targets) or "none"
        raise UserError(
            f"{env_name}: targets are {have}; `deploytool railway` needs the railway target "
            f"(add it to `targets` in environments/{env_name}.yaml)"
        )
    findings = pipeline.findings_of(rendered, deep=False)
    failed = pipeline.errors(findings)
    if failed:
        raise CheckFailed("\n".join([*(str(f) for f in failed), f"{env_name}: checks failed; nothing was planned"]))
    stale = [c for c in pipeline.check(rendered) if c.status != "unchanged"]
    if stale:
        listed = "\n".join(f"{c.status}: {c.path}" for c in stale)
        raise CheckFailed(
            f"{listed}\n{env_name}: {len(stale)} file(s) out of date, so the Railway CLI would read a stale "
            f"file; run `deploytool render {env_name}`, review the diff and commit it (nothing was planned)"
        )
    warnings = [str(f) for f in findings if f.severity != "error"]
    return rendered.ctx.out / RAILWAY_FILE, rendered.plan.railway.environment, warnings
