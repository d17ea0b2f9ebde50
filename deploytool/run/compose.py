"""`--runner compose`: hand the rendered docker-compose.yml to Docker Compose v2, where a Docker engine runs.

`up` builds our images from their Dockerfiles, starts everything and waits until every service is healthy;
`down` removes the project's containers and networks (its volumes, the WhatsApp sessions and the database,
only when asked). Every path given to Compose is absolute, so any working directory and any `--out` work.

`DEPLOYTOOL_COMPOSE_OVERRIDE` (paths, separated by the OS path separator) adds compose files after the
generated one; tests and CI use it for `build.network: host` where containers have no NAT. Generated
artifacts never refer to it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from contextlib import nullcontext
from pathlib import Path

from deploytool.errors import CheckFailed, UserError
from deploytool.output.secrets import SECRETS_FILE, read_secrets
from deploytool.redact import redact_values as redact
from deploytool.run import engine
from deploytool.run.manifest import load_manifest
from deploytool.run.state import RunState, read_state, refuse_if_running, remove_state, run_lock, write_state

COMPOSE_FILE = "docker-compose.yml"
OVERRIDE_VAR = "DEPLOYTOOL_COMPOSE_OVERRIDE"
LOG_LINES = 20
NO_ENGINE_HINT = "the default runner (`deploytool up ENV`, i.e. --runner procfile) needs no Docker"


def docker_cli(environ: Mapping[str, str]) -> str:
    docker = shutil.which("docker", path=environ.get("PATH"))
    if docker is None:
        raise UserError(f"--runner compose: the docker CLI is not installed (not on PATH); {NO_ENGINE_HINT}")
    return docker


def require_engine(docker: str, environ: Mapping[str, str]) -> None:
    """An engine must answer behind DOCKER_HOST (asked through the Docker SDK, as Compose would)."""
    problem = engine.engine_problem(environ)
    if problem is not None:
        raise UserError(
            f"--runner compose: no Docker engine is running ({problem}); start Docker "
            f"(on a root test machine: `scripts/engine`), or use {NO_ENGINE_HINT}"
        )


def require_compose(docker: str, environ: Mapping[str, str]) -> None:
    try:
        result = subprocess.run(
            [docker, "compose", "version"], env=dict(environ), capture_output=True, timeout=10, check=False
        )
        ok = result.returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    if not ok:
        raise UserError(f"--runner compose: Docker Compose v2 (`docker compose`) is not installed; {NO_ENGINE_HINT}")


def override_files(environ: Mapping[str, str]) -> list[Path]:
    files = [Path(p).resolve() for p in environ.get(OVERRIDE_VAR, "").split(os.pathsep) if p.strip()]
    for path in files:
        if not path.is_file():
            raise UserError(f"{OVERRIDE_VAR}: {path}: not found")
    return files


def compose_command(out_dir: Path, docker: str, *args: str, environ: Mapping[str, str] | None = None) -> list[str]:
    """Absolute paths only: Compose resolves a relative --env-file against its own project folder."""
    out_dir = out_dir.resolve()
    command = [docker, "compose"]
    if (out_dir / SECRETS_FILE).is_file():
        command += ["--env-file", str(out_dir / SECRETS_FILE)]
    command += ["-f", str(out_dir / COMPOSE_FILE)]
    for path in override_files(environ or {}):
        command += ["-f", str(path)]
    return [*command, *args]


def project_name(out_dir: Path) -> str:
    """The `name:` of the rendered compose file (deploytool always writes one): the Compose project."""
    import yaml

    try:
        data = yaml.safe_load((out_dir / COMPOSE_FILE).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise UserError(f"{out_dir / COMPOSE_FILE}: cannot read it ({exc}); render the output folder again") from None
    name = data.get("name") if isinstance(data, dict) else None
    if not isinstance(name, str) or not name:
        raise UserError(f"{out_dir / COMPOSE_FILE}: no project `name:`; render the output folder again")
    return name


def _secrets(out_dir: Path, environ: Mapping[str, str]) -> list[str]:
    stored = read_secrets(out_dir)
    return [*stored.values(), *(environ[name] for name in stored if name in environ)]


def diagnose(out_dir: Path, environ: Mapping[str, str]) -> str:
    """Each container that is not running and healthy, with its last log lines (secrets masked)."""
    try:
        states = engine.project_containers(environ, project_name(out_dir))
    except Exception as exc:  # a diagnosis must never hide the original failure
        return f"\n  (could not list the containers: {type(exc).__name__})"
    lines = []
    for state in states:
        if state.ok:
            continue
        health = f", {state.health}" if state.health else ""
        lines.append(
            f"\n  container {state.name} (service {state.service}): {state.status}{health}, "
            f"exit code {state.exit_code}, restarted {state.restart_count}x; last log lines:"
        )
        lines += [f"\n    | {line}" for line in engine.last_log_lines(environ, state.name, LOG_LINES)]
    return redact("".join(lines), _secrets(out_dir, environ))


def _run_compose(
    out_dir: Path, command: list[str], environ: Mapping[str, str], capture_output: bool, what: str
) -> None:
    result = subprocess.run(
        command, cwd=out_dir, env=dict(environ), capture_output=capture_output, text=True, check=False
    )
    if result.returncode != 0:
        said = ""
        if capture_output:
            lines = (result.stdout + result.stderr).splitlines()[-20:]
            said = "\n" + "\n".join(f"    | {line}" for line in lines)
        said += diagnose(out_dir, environ)
        message = f"`docker compose {what}` failed with exit code {result.returncode}{said}"
        raise CheckFailed(redact(message, _secrets(out_dir, environ)))


def _check_ready(out_dir: Path, environ: Mapping[str, str]) -> str:
    if not (out_dir / COMPOSE_FILE).is_file():
        raise UserError(
            f"{out_dir / COMPOSE_FILE}: not found; render the compose target first (`deploytool render ENV`)"
        )
    docker = docker_cli(environ)
    require_engine(docker, environ)
    require_compose(docker, environ)
    return docker


def compose_up(
    out_dir: Path,
    environ: Mapping[str, str],
    *,
    capture_output: bool = False,
    build: bool = True,
    wait_timeout_s: float = 300.0,
) -> list[str]:
    """`docker compose … up -d --build --wait`: returns the service names once Compose reports them healthy."""
    out_dir = Path(out_dir).resolve()
    manifest = load_manifest(out_dir)
    docker = _check_ready(out_dir, environ)
    with run_lock(out_dir):
        refuse_if_running(out_dir, "compose", manifest.down_hint)  # `compose up` again is fine: it converges
        write_state(out_dir, RunState("compose", manifest.environment))  # so `down` knows, even after a failure
        args = ["up", "-d", "--wait", "--wait-timeout", str(max(1, round(wait_timeout_s)))]
        if build:
            args.append("--build")  # our two images come from their Dockerfiles, rebuilt when the code changed
        try:
            command = compose_command(out_dir, docker, *args, environ=environ)
            _run_compose(out_dir, command, environ, capture_output, "up")
        except CheckFailed as exc:
            raise CheckFailed(f"{exc}\nrun `{manifest.down_hint}` to remove what was created") from None
    return [svc.name for svc in manifest.services]


def compose_down(
    out_dir: Path,
    environ: Mapping[str, str],
    *,
    capture_output: bool = False,
    locked: bool = False,
    volumes: bool = False,
) -> list[str]:
    """`docker compose … down`: removes containers and networks; named volumes (WhatsApp sessions, the database)
    only with `volumes=True`."""
    out_dir = Path(out_dir).resolve()
    manifest = load_manifest(out_dir)
    docker = _check_ready(out_dir, environ)
    args = ["down", "--remove-orphans", *(["--volumes"] if volumes else [])]
    with nullcontext() if locked else run_lock(out_dir):
        command = compose_command(out_dir, docker, *args, environ=environ)
        _run_compose(out_dir, command, environ, capture_output, "down")
        state = read_state(out_dir)
        if state is not None and state.runner == "compose":
            remove_state(out_dir)
    return [svc.name for svc in manifest.services]
