"""The two `Runner` implementations and the registry `up`/`down`/`ps`/`logs` choose from by name."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path

from deploytool.errors import UserError
from deploytool.output.secrets import read_secrets
from deploytool.redact import redact_url, redact_values
from deploytool.run import compose, supervisor
from deploytool.run.base import EventHandler, Runner, ServiceStatus
from deploytool.run.manifest import load_manifest
from deploytool.run.state import read_state, run_dir, state_path


def _masked(out_dir: Path, environ: Mapping[str, str], text: str) -> str:
    stored = read_secrets(out_dir)
    values = [*stored.values(), *(environ[name] for name in stored if name in environ)]
    return redact_url(redact_values(text, values))


class ProcfileRunner:
    """Every service as a process group here (the `local` target's Procfile)."""

    name = "procfile"

    def up(
        self, out_dir: Path, environ: Mapping[str, str], deadline_s: float, on_event: EventHandler | None
    ) -> list[ServiceStatus]:
        return supervisor.up(out_dir, environ, deadline_s=deadline_s, on_event=on_event)

    def down(self, out_dir: Path, environ: Mapping[str, str], volumes: bool) -> list[str]:
        stopped = supervisor.down(out_dir, environ)
        if volumes:
            # the procfile runner's "volumes": session folders it created under .run/data
            data = run_dir(out_dir) / "data"
            if data.is_dir():
                shutil.rmtree(data)
        return stopped

    def status(self, out_dir: Path, environ: Mapping[str, str]) -> list[ServiceStatus]:
        return supervisor.status(out_dir)

    def logs(self, out_dir: Path, environ: Mapping[str, str], service: str | None, lines: int) -> Iterator[str]:
        manifest = load_manifest(out_dir)
        names = [s.name for s in manifest.services]
        if service is not None and service not in names:
            raise UserError(f"service {service!r}: not in this environment (known: {', '.join(names)})")
        for name in [service] if service else names:
            path = run_dir(out_dir) / "logs" / f"{name}.log"
            for line in supervisor.log_tail(path, lines):
                yield _masked(out_dir, environ, f"{name} | {line}")


class ComposeRunner:
    """`docker compose` on the rendered docker-compose.yml (the `compose` target)."""

    name = "compose"

    def up(
        self, out_dir: Path, environ: Mapping[str, str], deadline_s: float, on_event: EventHandler | None
    ) -> list[ServiceStatus]:
        compose.compose_up(out_dir, environ, wait_timeout_s=deadline_s)
        return supervisor.status(out_dir)

    def down(self, out_dir: Path, environ: Mapping[str, str], volumes: bool) -> list[str]:
        return compose.compose_down(out_dir, environ, volumes=volumes)

    def status(self, out_dir: Path, environ: Mapping[str, str]) -> list[ServiceStatus]:
        return supervisor.status(out_dir)

    def logs(self, out_dir: Path, environ: Mapping[str, str], service: str | None, lines: int) -> Iterator[str]:
        docker = compose.docker_cli(environ)
        args = ["logs", "--no-color", "--tail", str(lines)] + ([service] if service else [])
        result = subprocess.run(
            compose.compose_command(out_dir, docker, *args),
            cwd=out_dir,
            env=dict(environ),
            capture_output=True,
            text=True,
            check=False,
        )
        for line in (result.stdout + result.stderr).splitlines():
            yield _masked(out_dir, environ, line)


RUNNERS: dict[str, Runner] = {r.name: r for r in (ProcfileRunner(), ComposeRunner())}


def runner(name: str) -> Runner:
    try:
        return RUNNERS[name]
    except KeyError:
        raise UserError(f"--runner: expected one of {', '.join(sorted(RUNNERS))}, got {name!r}") from None


def running_runner(out_dir: Path) -> Runner | None:
    """The runner that started what runs in `out_dir` now, from its run state (None: nothing runs)."""
    if not state_path(out_dir).is_file():
        return None
    state = read_state(out_dir)
    return None if state is None else runner(state.runner)


def down(out_dir: Path, environ: Mapping[str, str] | None = None, volumes: bool = False) -> list[str]:
    """Stop whatever `up` started in `out_dir`, with the runner that started it; [] when nothing runs."""
    current = running_runner(Path(out_dir))
    if current is None:
        return []
    return current.down(Path(out_dir), environ if environ is not None else os.environ, volumes)
