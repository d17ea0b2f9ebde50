"""`deploytool run ENV SERVICE -- CMD...`: one command with exactly one service's environment.

Procfile runner: a process here, in the project root the manifest names (as the supervisor starts the
service), with the service's plain variables, passthrough names and secrets (process environment first,
then `.secrets.env`); nothing of that is printed. Compose runner: `docker compose exec` when the service's
container runs, else `docker compose run --rm` (which starts what the service depends on, as Compose does).
The result is the command's exit code (128 + N when a signal N ended it, as shells say).
"""

from __future__ import annotations

import signal
import subprocess
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from deploytool.errors import UserError
from deploytool.render.manifest import ManifestService
from deploytool.run import compose, engine
from deploytool.run.environment import process_env
from deploytool.run.manifest import RunManifest, load_manifest
from deploytool.run.state import RunState, read_state, run_lock, write_state
from deploytool.safeio import read_text
from deploytool.targets.compose import COMPOSE_FILE


def _service(manifest: RunManifest, name: str) -> ManifestService:
    found = next((s for s in manifest.services if s.name == name), None)
    if found is None:
        known = ", ".join(s.name for s in manifest.services)
        raise UserError(f"service {name!r}: not in this environment (known: {known})")
    return found


def _exit_code(code: int) -> int:
    return 128 - code if code < 0 else code


@contextmanager
def _ctrl_c_goes_to_the_command() -> Iterator[None]:
    """Ctrl-C reaches the command (same terminal process group); deploytool waits for its exit code."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _wait(command: Sequence[str], cwd: Path, env: Mapping[str, str], what: str) -> int:
    try:
        process = subprocess.Popen(list(command), cwd=cwd, env=dict(env))
    except FileNotFoundError:
        raise UserError(f"{command[0]}: command not found ({what})") from None
    except OSError as exc:
        raise UserError(f"cannot run {command[0]} ({what}): {exc.strerror or exc}") from None
    with _ctrl_c_goes_to_the_command():
        return _exit_code(process.wait())


def run_here(out_dir: Path, environ: Mapping[str, str], service: str, argv: Sequence[str]) -> int:
    """The command as a process here, with the service's environment, in the project root."""
    manifest = load_manifest(out_dir)
    svc = _service(manifest, service)
    if svc.process is None:
        raise UserError(
            f"service {svc.name}: no process environment in {out_dir}: the environment has no target that runs "
            "as processes (add `local` to `targets`, render again, or use --runner compose)"
        )
    manifest.require_project_root()
    env = process_env(svc, out_dir, environ)
    return _wait(argv, manifest.root, env.values, f"on the PATH of service {svc.name}, in {manifest.root}")


def compose_arguments(service: str, argv: Sequence[str], running: bool, tty: bool) -> list[str]:
    """`exec` into the running container, or a new one removed afterwards; -T without a terminal."""
    no_tty = [] if tty else ["-T"]
    if running:
        return ["exec", *no_tty, service, *argv]
    return ["run", "--rm", *no_tty, service, *argv]


def _depends_on(out_dir: Path, service: str) -> bool:
    import yaml

    try:
        data = yaml.safe_load(compose.compose_text(out_dir))
        return bool(data["services"][service].get("depends_on"))
    except (yaml.YAMLError, KeyError, TypeError, AttributeError):
        return False


def run_in_compose(out_dir: Path, environ: Mapping[str, str], service: str, argv: Sequence[str], tty: bool) -> int:
    out_dir = Path(out_dir).resolve()
    manifest = load_manifest(out_dir)
    _service(manifest, service)
    if read_text(out_dir / COMPOSE_FILE, "writes the compose file") is None:
        raise UserError(f"{out_dir / COMPOSE_FILE}: not found; the environment needs the compose target")
    docker = compose.docker_cli(environ)
    compose.require_engine(docker, environ)
    compose.require_compose(docker, environ)
    containers = engine.project_containers(environ, compose.project_name(out_dir, environ))
    running = any(c.service == service and c.status == "running" for c in containers)
    if not running and _depends_on(out_dir, service):
        with run_lock(out_dir):  # what `run` starts beside it stays up: `deploytool down ENV` removes it
            if read_state(out_dir) is None:
                write_state(out_dir, RunState("compose", manifest.environment))
    args = compose_arguments(service, argv, running, tty)
    command = compose.compose_command(out_dir, docker, *args, environ=environ)
    return _wait(command, out_dir, environ, "docker compose")
