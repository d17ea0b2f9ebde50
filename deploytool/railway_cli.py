"""`deploytool railway plan|apply ENV`: hand the project's one Railway file to Railway's CLI, only while it is
linked to ENV's Railway environment, and only as the committed spec renders it.

`railway config plan|apply` evaluates the nearest `.railway/railway.py` (walking up from its working folder)
for every environment of the project and plans the one it is *linked* to (`railway link` / `railway
environment NAME`, `RAILWAY_PROJECT_ID` + `RAILWAY_ENVIRONMENT_ID`, or a project token `RAILWAY_TOKEN`
scoped to one environment). The current CLI also takes `--environment name|id` instead
(src/commands/config/runner.rs at 6971a03); 5.43.1 did not, so deploytool does not pass it. deploytool runs it
from the spec's folder, where the file is, after asking the CLI which environment it is linked to and
refusing a mismatch. Pinned plans (`plan --out FILE`, then `apply --plan FILE`) pass straight through: the
CLI ties them to that folder's `.railway/`.

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
from typing import TYPE_CHECKING, Literal

from deploytool.errors import UserError
from deploytool.redact import is_secret_name, redact_values

if TYPE_CHECKING:
    from deploytool.pipeline import Rendered

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
    *,
    json_output: bool = False,
    yes: bool = False,
    confirm_destructive: bool = False,
    detailed_exit_code: bool = False,
    plan_out: Path | None = None,
    pinned_plan: Path | None = None,
) -> list[str]:
    """`railway config plan|apply` with the flags the CLI accepts for that action, run from the spec's folder
    (the CLI finds `.railway/railway.py` there, and pins plans to that folder's `.railway/`).

    `--yes`, `--confirm-destructive` and `--plan` exist for apply only, `--detailed-exit-code` and `--out`
    for plan only (the CLI refuses them elsewhere). `--show-values` is never passed: secrets stay redacted."""
    command = [cli, "config", action]
    if json_output:
        command.append("--json")
    if action == "apply":
        if yes:
            command.append("--yes")
        if confirm_destructive:
            command.append("--confirm-destructive")
        if pinned_plan is not None:
            command += ["--plan", str(pinned_plan)]
    else:
        if detailed_exit_code:
            command.append("--detailed-exit-code")
        if plan_out is not None:
            command += ["--out", str(plan_out)]
    return command


def run_streaming(command: Sequence[str], environ: Mapping[str, str], cwd: Path) -> int:
    """Run the CLI in `cwd` with this terminal (its output streams; apply may prompt); its exit code."""
    try:
        return subprocess.run(list(command), env=dict(environ), cwd=cwd, check=False).returncode
    except OSError as exc:
        raise UserError(f"cannot run the Railway CLI ({command[0]}): {exc.strerror or exc}") from None


def ci_says_yes(environ: Mapping[str, str]) -> bool:
    """CI=true (GitHub Actions and most CI set it): nobody can answer the apply prompt."""
    return environ.get("CI", "").strip().lower() == "true"


def refuse_local_overrides(spec_path: Path, env_name: str, sets: Sequence[str]) -> None:
    """Railway gets the committed spec alone: a local overlay or a `--set` would deploy what nobody reviewed."""
    from deploytool.spec.load import display, local_overlay_path

    local = local_overlay_path(spec_path, env_name)
    named = [f"--set {text.partition('=')[0].strip()}" for text in sets]
    if local.exists():
        named.insert(0, display(local))
    if named:
        raise UserError(
            f"{env_name}: {', '.join(named)} would change what reaches Railway; `deploytool railway` deploys the "
            f"committed spec alone. Move {display(local)} away (or drop --set) and run it again; nothing was "
            "planned or applied"
        )


def prepare(spec_path: Path, env_name: str, out: Path | None, sets: Sequence[str] = ()) -> tuple[Path, str, list[str]]:
    """`prepare_rendered` without the rendered environment."""
    folder, railway_env, warnings, _ = prepare_rendered(spec_path, env_name, out, sets)
    return folder, railway_env, warnings


def prepare_rendered(
    spec_path: Path, env_name: str, out: Path | None, sets: Sequence[str] = ()
) -> tuple[Path, str, list[str], Rendered]:
    """Render ENV from the committed spec in memory and insist the disk already holds exactly that.

    Returns the folder to run the CLI in (the spec's, which holds `.railway/railway.py`), the Railway
    environment ENV describes, and the warnings to show. The CLI evaluates the file on disk, so a stale file
    is refused (exit 1) rather than rendered here: what is applied is what was reviewed and committed."""
    from deploytool import pipeline
    from deploytool.errors import CheckFailed
    from deploytool.targets.railway import RAILWAY_FILE, RailwayTarget

    refuse_local_overrides(spec_path, env_name, sets)
    rendered = pipeline.render_environment(spec_path, env_name, out, local=False)
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
    assert (rendered.loaded.root / RAILWAY_FILE).is_file()  # check() above found it up to date
    return rendered.loaded.root, rendered.plan.railway.environment, warnings, rendered
