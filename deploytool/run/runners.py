"""The two `Runner` implementations and the registry `up`/`down`/`ps`/`logs` choose from by name."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from deploytool.errors import UserError
from deploytool.output.secrets import read_secrets
from deploytool.redact import redact_url, redact_values
from deploytool.run import compose, supervisor
from deploytool.run.base import Environ, EventHandler, Runner, ServiceStatus
from deploytool.run.manifest import load_manifest
from deploytool.run.state import read_state, run_dir
from deploytool.safeio import read_from, read_tail

FOLLOW_INTERVAL_S = 0.25
FOLLOW_CHUNK = 1024 * 1024  # read per log and pass: a fast writer cannot make one read hold all it wrote


def _log_size(path: Path) -> int:
    found = read_tail(path, supervisor.LOG_WHAT, 0)
    return 0 if found is None else found[1]


def _masked(out_dir: Path, environ: Mapping[str, str], text: str) -> str:
    stored = read_secrets(out_dir)
    values = [*stored.values(), *(environ[name] for name in stored if name in environ)]
    return redact_url(redact_values(text, values))


class ProcfileRunner:
    """Every service as a process group here (the `local` target's Procfile)."""

    name = "procfile"

    def up(
        self, out_dir: Path, environ: Environ, deadline_s: float, on_event: EventHandler | None, recreate: bool = False
    ) -> list[ServiceStatus]:
        return supervisor.up(out_dir, environ, deadline_s, on_event, force_recreate=recreate)

    def down(self, out_dir: Path, environ: Mapping[str, str], volumes: bool, rmi_local: bool = False) -> list[str]:
        stopped = supervisor.down(out_dir, environ)  # `rmi_local`: it builds no image
        if volumes:
            # the procfile runner's "volumes": session folders it created under .run/data
            data = run_dir(out_dir) / "data"
            if data.is_dir() and not data.is_symlink():  # never what a planted link points to
                shutil.rmtree(data)
        return stopped

    def status(self, out_dir: Path, environ: Mapping[str, str]) -> list[ServiceStatus]:
        return supervisor.status(out_dir, environ=environ)

    def restart(
        self, out_dir: Path, environ: Mapping[str, str], service: str, deadline_s: float, on_event: EventHandler | None
    ) -> ServiceStatus:
        return supervisor.restart(out_dir, environ, service, deadline_s, on_event)

    def logs(
        self, out_dir: Path, environ: Mapping[str, str], service: str | None, lines: int, follow: bool
    ) -> Iterator[str]:
        manifest = load_manifest(out_dir)
        names = [s.name for s in manifest.services]
        if service is not None and service not in names:
            raise UserError(f"service {service!r}: not in this environment (known: {', '.join(names)})")
        chosen = [service] if service else names
        folder = supervisor.logs_dir(out_dir)  # a link or another user's folder there: refused, never read
        paths = {name: folder / f"{name}.log" for name in chosen}
        # sizes first: a line written while the tail is being printed must come out when following
        offsets = {name: _log_size(path) for name, path in paths.items()}
        tails = {name: supervisor.log_tail(path, lines) for name, path in paths.items()}
        for name, tail in tails.items():
            for line in tail:
                yield _masked(out_dir, environ, f"{name} | {line}")
        if not follow:
            return
        pending = dict.fromkeys(paths, b"")
        while True:  # like `tail -f` over every log; Ctrl-C ends it (the CLI maps that to exit 130)
            for name, path in paths.items():
                found = read_from(path, supervisor.LOG_WHAT, offsets[name], limit=FOLLOW_CHUNK)
                if found is None:
                    continue
                data, end = found
                offsets[name] = (offsets[name] if offsets[name] <= end else 0) + len(data)  # shorter: a new log
                *complete, pending[name] = (pending[name] + data).split(b"\n")
                for raw in complete:
                    yield _masked(out_dir, environ, f"{name} | {raw.decode('utf-8', errors='replace')}")
            time.sleep(FOLLOW_INTERVAL_S)

    def run_command(self, out_dir: Path, environ: Mapping[str, str], service: str, argv: Sequence[str]) -> int:
        from deploytool.run.oneoff import run_here

        return run_here(out_dir, environ, service, argv)


class ComposeRunner:
    """`docker compose` on the rendered docker-compose.yml (the `compose` target)."""

    name = "compose"

    def up(
        self, out_dir: Path, environ: Environ, deadline_s: float, on_event: EventHandler | None, recreate: bool = False
    ) -> list[ServiceStatus]:
        def progress(line: str) -> None:  # build steps and readiness as they happen: a build is never silent
            print(line, file=sys.stderr, flush=True)

        compose.compose_up(out_dir, environ, wait_timeout_s=deadline_s, progress=progress, force_recreate=recreate)
        return compose.compose_status(out_dir, environ)

    def down(self, out_dir: Path, environ: Mapping[str, str], volumes: bool, rmi_local: bool = False) -> list[str]:
        return compose.compose_down(out_dir, environ, volumes=volumes, rmi_local=rmi_local)

    def status(self, out_dir: Path, environ: Mapping[str, str]) -> list[ServiceStatus]:
        return compose.compose_status(out_dir, environ)  # what the engine has, not what `up` once started

    def restart(
        self, out_dir: Path, environ: Mapping[str, str], service: str, deadline_s: float, on_event: EventHandler | None
    ) -> ServiceStatus:
        names = [s.name for s in load_manifest(out_dir).services] + compose.addon_services(out_dir)  # postgres too
        if service not in names:
            raise UserError(f"service {service!r}: not in this environment (known: {', '.join(names)})")
        compose.compose_restart(out_dir, environ, service, wait_timeout_s=deadline_s)
        return next(s for s in compose.compose_status(out_dir, environ) if s.name == service)

    def logs(
        self, out_dir: Path, environ: Mapping[str, str], service: str | None, lines: int, follow: bool
    ) -> Iterator[str]:
        docker = compose.docker_cli(environ)
        args = ["logs", "--no-color", "--tail", str(lines), *(["--follow"] if follow else [])]
        command = compose.compose_command(out_dir, docker, *args, *([service] if service else []), environ=environ)
        with subprocess.Popen(
            command, cwd=out_dir, env=dict(environ), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        ) as process:
            assert process.stdout is not None
            for line in process.stdout:
                yield _masked(out_dir, environ, line.rstrip("\n"))

    def run_command(self, out_dir: Path, environ: Mapping[str, str], service: str, argv: Sequence[str]) -> int:
        from deploytool.run.oneoff import run_in_compose

        return run_in_compose(out_dir, environ, service, argv, tty=sys.stdin.isatty() and sys.stdout.isatty())


RUNNERS: dict[str, Runner] = {r.name: r for r in (ProcfileRunner(), ComposeRunner())}


def runner(name: str) -> Runner:
    try:
        return RUNNERS[name]
    except KeyError:
        raise UserError(f"--runner: expected one of {', '.join(sorted(RUNNERS))}, got {name!r}") from None


def running_runner(out_dir: Path) -> Runner | None:
    """The runner that started what runs in `out_dir` now, from its run state (None: nothing runs)."""
    state = read_state(out_dir)
    return None if state is None else runner(state.runner)


def down(
    out_dir: Path, environ: Mapping[str, str] | None = None, volumes: bool = False, rmi_local: bool = False
) -> list[str]:
    """Stop whatever `up` started in `out_dir`, with the runner that started it; [] when nothing runs.

    `rmi_local` also removes the images this folder's Compose project built, even once nothing runs."""
    out_dir = Path(out_dir)
    environ = environ if environ is not None else os.environ
    current = running_runner(out_dir)
    if current is None:
        if rmi_local and compose.used_here(out_dir):  # stopped earlier: its built images may still be there
            compose.compose_down(out_dir, environ, rmi_local=True)
        return []
    return current.down(out_dir, environ, volumes, rmi_local)


RUNNING_STATES = ("healthy", "running", "starting")


@dataclass(frozen=True)
class PsRow:
    """One line of `deploytool ps` (and one object of its --format json)."""

    service: str
    runner: str | None  # None: nothing runs
    state: str
    exit_code: int | None
    uptime_s: int | None
    port: int | None
    tenants: list[str]
    addon: bool

    @property
    def up(self) -> bool:
        return self.state in RUNNING_STATES


def ps_rows(out_dir: Path, environ: Mapping[str, str]) -> list[PsRow]:
    """Every service of the folder, then the add-ons its runner runs, as the runner sees them now."""
    from deploytool.output import read_manifest

    manifest = read_manifest(out_dir)
    current = running_runner(out_dir)
    found = current.status(out_dir, environ) if current else []
    statuses = {s.name: s for s in found}
    services = {svc.name: svc for svc in manifest.services}
    now = time.time()
    rows = []
    for name in [svc.name for svc in manifest.services] + [s.name for s in found if s.addon]:
        status, svc = statuses.get(name), services.get(name)
        started = status.started_at if status else None
        rows.append(
            PsRow(
                service=name,
                runner=current.name if current else None,
                state=status.state if status else "stopped",
                exit_code=status.exit_code if status else None,
                uptime_s=max(0, round(now - started)) if started is not None else None,
                port=svc.port if svc else None,
                tenants=list(svc.tenants) if svc else [],
                addon=status.addon if status else False,
            )
        )
    return rows
