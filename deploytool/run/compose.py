"""`--runner compose`: hand the rendered docker-compose.yml to Docker Compose v2, where a Docker engine runs."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping
from contextlib import nullcontext
from pathlib import Path

from deploytool.errors import CheckFailed, UserError
from deploytool.output.secrets import SECRETS_FILE, read_secrets
from deploytool.redact import redact_values as redact
from deploytool.run.manifest import load_manifest
from deploytool.run.state import RunState, read_state, refuse_if_running, remove_state, run_lock, write_state

COMPOSE_FILE = "docker-compose.yml"
ENGINE_TIMEOUT_S = 5.0
NO_ENGINE_HINT = "the default runner (`deploytool up ENV`, i.e. --runner procfile) needs no Docker"


def docker_cli(environ: Mapping[str, str]) -> str:
    docker = shutil.which("docker", path=environ.get("PATH"))
    if docker is None:
        raise UserError(f"--runner compose: the docker CLI is not installed (not on PATH); {NO_ENGINE_HINT}")
    return docker


def require_engine(docker: str, environ: Mapping[str, str]) -> None:
    """`docker info` answers only when a Docker engine runs behind the CLI."""
    try:
        result = subprocess.run(
            [docker, "info", "--format", "{{.ServerVersion}}"],
            env=dict(environ),
            capture_output=True,
            text=True,
            timeout=ENGINE_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        reason = f"`docker info` did not answer within {ENGINE_TIMEOUT_S:g}s"
    except OSError as exc:
        reason = f"`docker info` could not run: {exc.strerror}"
    else:
        if result.returncode == 0 and result.stdout.strip():
            return
        said = [line.strip() for line in (result.stderr + result.stdout).splitlines() if line.strip()]
        reason = f"`docker info`: {said[-1]}" if said else f"`docker info` exited with code {result.returncode}"
    raise UserError(f"--runner compose: no Docker engine is running ({reason}); start Docker, or use {NO_ENGINE_HINT}")


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


def compose_command(out_dir: Path, docker: str, *args: str) -> list[str]:
    command = [docker, "compose"]
    if (out_dir / SECRETS_FILE).is_file():
        command += ["--env-file", str(out_dir / SECRETS_FILE)]
    return [*command, "-f", str(out_dir / COMPOSE_FILE), *args]


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
        stored = read_secrets(out_dir)
        secrets = [*stored.values(), *(environ[name] for name in stored if name in environ)]
        raise CheckFailed(redact(f"`docker compose {what}` failed with exit code {result.returncode}{said}", secrets))


def _check_ready(out_dir: Path, environ: Mapping[str, str]) -> str:
    if not (out_dir / COMPOSE_FILE).is_file():
        raise UserError(
            f"{out_dir / COMPOSE_FILE}: not found; render the compose target first (`deploytool render ENV`)"
        )
    docker = docker_cli(environ)
    require_engine(docker, environ)
    require_compose(docker, environ)
    return docker


def compose_up(out_dir: Path, environ: Mapping[str, str], *, capture_output: bool = False) -> list[str]:
    """`docker compose … up -d --wait`: returns the service names once Compose reports them healthy."""
    out_dir = Path(out_dir)
    manifest = load_manifest(out_dir)
    docker = _check_ready(out_dir, environ)
    with run_lock(out_dir):
        refuse_if_running(out_dir, "compose", manifest.down_hint)  # `compose up` again is fine: it converges
        write_state(out_dir, RunState("compose", manifest.environment))  # so `down` knows, even after a failure
        try:
            _run_compose(out_dir, compose_command(out_dir, docker, "up", "-d", "--wait"), environ, capture_output, "up")
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
    """`docker compose … down`: removes the containers (named volumes, the WhatsApp sessions, are kept)."""
    out_dir = Path(out_dir)
    manifest = load_manifest(out_dir)
    docker = _check_ready(out_dir, environ)
    with nullcontext() if locked else run_lock(out_dir):
        _run_compose(
            out_dir,
            compose_command(out_dir, docker, "down", *(["--volumes"] if volumes else [])),
            environ,
            capture_output,
            "down",
        )
        state = read_state(out_dir)
        if state is not None and state.runner == "compose":
            remove_state(out_dir)
    return [svc.name for svc in manifest.services]
