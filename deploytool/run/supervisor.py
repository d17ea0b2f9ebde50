"""The procfile runner: start every service as its own detached process group, wait until healthy, stop."""

from __future__ import annotations

import os
import re
import signal
import stat
import subprocess
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from deploytool.errors import CheckFailed, UserError
from deploytool.output.fs import create_temp
from deploytool.redact import redact_url
from deploytool.redact import redact_values as redact
from deploytool.render.manifest import ManifestService
from deploytool.run import live
from deploytool.run.base import Event, EventHandler, ServiceStatus
from deploytool.run.environment import (
    ProcessEnv,
    env_file_digest,
    process_env,
    record_up_environ,
    taken_names,
    up_environ,
)
from deploytool.run.manifest import RunManifest, load_manifest
from deploytool.run.procs import gone, owned, refuse_taken_ports, signal_group, start_time, started_epoch
from deploytool.run.state import (
    ProcessRecord,
    RunState,
    own_run_dir,
    read_state,
    refuse_if_running,
    remove_state,
    run_dir,
    run_lock,
    write_state,
)
from deploytool.safeio import check_own_folder, not_regular, open_regular, own_folder, read_tail

LOG_TAIL_LINES = 20
ADDONS = {"postgres": "DATABASE_URL", "redis": "REDIS_URL"}  # what compose runs beside the services
KILL_WAIT_S = 3.0


@dataclass
class _Running:
    service: ManifestService
    process: subprocess.Popen[bytes]
    record: ProcessRecord
    env: ProcessEnv


LOG_WHAT = "writes a service's log"


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> list[str]:
    """The last lines of a service's log ([] when there is none); UserError when a link, a FIFO or a folder is
    there instead (its target, which can be any file this user reads, is never printed)."""
    found = read_tail(path, LOG_WHAT, 64 * 1024)
    if found is None:
        return []
    return found[0].decode("utf-8", errors="replace").splitlines()[-lines:]


def logs_dir(out_dir: Path, create: bool = False) -> Path:
    """`<out>/.run/logs`: deploytool's own folder (mode 0700), never a link or another user's folder planted
    there beforehand, which would send every log (and the secrets a service prints) where it points."""
    folder = run_dir(out_dir) / "logs"
    if create:
        own_run_dir(out_dir)
        return own_folder(folder, "the services' logs")
    for step in (run_dir(out_dir), folder):
        check_own_folder(step, "the services' logs")
    return folder


def check_log_path(path: Path) -> None:
    """UserError unless a regular file or nothing is at `path`: `up` replaces an old log with a new file, and
    what it did not write there (a link, a FIFO, a folder) it neither follows nor removes."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISREG(mode):
        raise not_regular(path, LOG_WHAT, mode)


def open_log(path: Path, append: bool) -> int:
    """A descriptor to write a service's log at `path` (mode 0600: a service may print its own secrets, or a
    DATABASE_URL with a password). A new file renamed over the name for a fresh log; `append` (a restart keeps
    the log of the run it replaces) opens the regular file there, never through a link."""
    if append:
        fd = open_regular(path, LOG_WHAT, os.O_WRONLY | os.O_APPEND, create=0o600)
        assert fd is not None  # created when missing
        os.fchmod(fd, 0o600)
        return fd
    check_log_path(path)
    try:
        fd, temp = create_temp(path, 0o600)
    except OSError as exc:
        raise UserError(f"{path.parent}: cannot write the log there: {exc.strerror}") from None
    try:
        os.replace(temp, path)  # replaces a link or a planted file itself, never what it points to
    except OSError as exc:
        os.close(fd)
        temp.unlink(missing_ok=True)
        raise UserError(f"{path}: cannot write the log there: {exc.strerror}") from None
    return fd


# ---- ownership: only ever signal a process group that `up` created ----------------------------------


def _owned(record: ProcessRecord) -> bool:
    return owned(record.pid, record.pgid, record.start_time)


def _gone(record: ProcessRecord) -> bool:
    return gone(record.pid, record.pgid, record.start_time)


def _wait_gone(records: list[ProcessRecord], timeout_s: float) -> list[ProcessRecord]:
    remaining = records

    def all_gone() -> bool:
        nonlocal remaining
        remaining = [r for r in remaining if not _gone(r)]
        return not remaining

    live.wait_until(all_gone, timeout_s, interval_s=0.05)
    return remaining


def _stop(
    records: Iterable[ProcessRecord], grace_s: float, on_event: EventHandler | None
) -> tuple[list[str], list[str]]:
    """SIGTERM each owned group, SIGKILL what is left after `grace_s`. Returns (stopped, could not stop)."""
    targets = [r for r in records if _owned(r)]
    for record in targets:
        _emit(on_event, record.name, "stopping")
        signal_group(record.pgid, signal.SIGTERM)
    remaining = _wait_gone(targets, grace_s)
    for record in remaining:
        signal_group(record.pgid, signal.SIGKILL)
    remaining = _wait_gone(remaining, KILL_WAIT_S)
    failed = {r.name for r in remaining}
    stopped = [r.name for r in targets if r.name not in failed]
    for name in stopped:
        _emit(on_event, name, "stopped")
    return stopped, sorted(failed)


def _emit(on_event: EventHandler | None, service: str, kind: str, detail: str = "") -> None:
    if on_event is not None:
        on_event(Event(service, kind, detail))


# ---- up ----------------------------------------------------------------------------------------------


def _start(manifest: RunManifest, svc: ManifestService, env: ProcessEnv, append: bool = False) -> _Running:
    log_rel = f".run/logs/{svc.name}.log"
    log_path = logs_dir(manifest.out_dir, create=True) / f"{svc.name}.log"
    fd = open_log(log_path, append)
    try:
        with open(fd, "wb") as log:
            process = subprocess.Popen(
                ["sh", "-c", EXIT_NOTE, "sh", svc.command or "false"],
                cwd=manifest.root,
                env=env.values,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own session and process group: `down` stops its children too
            )
    except OSError as exc:
        raise UserError(f"service {svc.name}: cannot start `sh -c` in {manifest.root}: {exc.strerror}") from None
    record = ProcessRecord(
        name=svc.name,
        pid=process.pid,
        pgid=process.pid,
        start_time=start_time(process.pid) or "",
        command=svc.command or "",
        log=log_rel,
        env_digest=env_file_digest(svc, manifest.out_dir),
    )
    return _Running(svc, process, record, env)


# The service runs in a shell of its own under the group's leader, which notes its exit code as the last line of
# the log (`ps` reads it once the process is gone: no later deploytool command is its parent) and exits with it.
EXIT_NOTE = 'sh -c "$1"; code=$?; echo "deploytool: exited with code $code"; exit $code'
EXIT_LINE = re.compile(r"^deploytool: exited with code (\d+)$")


def _exit_text(code: int) -> str:
    if code < 0 or code > 128:  # killed by the system, or a signal the leader's shell reports as 128 + N
        number = -code if code < 0 else code - 128
        try:
            return f"was killed by {signal.Signals(number).name}"
        except ValueError:
            return f"was killed by signal {number}" if code < 0 else f"exited with code {code}"
    return f"exited with code {code}"


def last_exit_code(path: Path) -> int | None:
    """The exit code the service's last run noted at the end of its log; None while it runs or when not told."""
    tail = log_tail(path, 1)
    found = EXIT_LINE.match(tail[-1]) if tail else None
    return int(found.group(1)) if found else None


def _failure_block(manifest: RunManifest, run: _Running, what: str, secrets: tuple[str, ...]) -> str:
    log_path = manifest.out_dir / run.record.log
    tail = log_tail(log_path)
    lines = [f"{run.service.name} {what} (command: {run.service.command}; log: {log_path})"]
    lines += [f"    | {line}" for line in tail] or ["    (the log is empty)"]
    return redact_url(redact("\n".join(lines), secrets))


def _wait_healthy(
    manifest: RunManifest,
    running: list[_Running],
    secrets: tuple[str, ...],
    deadline_s: float,
    start_grace_s: float,
    interval_s: float,
    on_event: EventHandler | None,
) -> list[ServiceStatus]:
    started = time.monotonic()
    healthy: dict[str, ServiceStatus] = {}
    last: dict[str, str] = {run.service.name: "no answer yet" for run in running}
    poll_timeout = min(2.0, max(0.5, interval_s * 4))
    with live.client() as client:

        def all_healthy() -> bool:
            exited = [run for run in running if run.process.poll() is not None]
            if exited:
                blocks = [
                    _failure_block(
                        manifest, run, f"{_exit_text(run.process.returncode)} before all services were healthy", secrets
                    )
                    for run in exited
                ]
                for run in exited:
                    _emit(on_event, run.service.name, "failed", _exit_text(run.process.returncode))
                raise CheckFailed("deploytool up failed: " + "\n".join(blocks))
            for run in running:
                svc = run.service
                if svc.name in healthy:
                    continue
                url = svc.health_url
                check = svc.process.health_command if svc.process else None
                if check is not None:  # a worker: its health command, with its environment
                    health = live.check_command(check, manifest.root, run.env.values)
                    ok, last[svc.name] = health.ok, health.detail
                elif url is None:
                    ok = time.monotonic() - started >= start_grace_s
                    last[svc.name] = "no health path; alive after the start grace period" if ok else "starting"
                else:
                    health = live.check_health(client, url, poll_timeout)
                    ok, last[svc.name] = health.ok, f"GET {url} -> {health.detail}"
                if ok:
                    healthy[svc.name] = ServiceStatus(
                        svc.name,
                        # `ps`'s word too: without a health path or command, alive is all we know
                        "healthy" if url or check else "running",
                        svc.local_url or "-",
                        url,
                        run.process.pid,
                        manifest.out_dir / run.record.log,
                    )
                    _emit(on_event, svc.name, "healthy", svc.local_url or "-")
            return len(healthy) == len(running)

        if live.wait_until(all_healthy, deadline_s, interval_s):
            return [healthy[run.service.name] for run in running]
    waiting = [run for run in running if run.service.name not in healthy]
    for run in waiting:
        _emit(on_event, run.service.name, "failed", last[run.service.name])
    blocks = [
        _failure_block(manifest, run, f"was not healthy within {deadline_s:g}s: last {last[run.service.name]}", secrets)
        for run in waiting
    ]
    raise CheckFailed("deploytool up failed: " + "\n".join(blocks))


def _unchanged(out_dir: Path, svc: ManifestService, record: ProcessRecord, taken: dict[str, str | None]) -> bool:
    """True when the process `up` started for `svc` still runs what `svc` says now: the same command, the same
    env file, the same values from the shell (DATABASE_URL, REDIS_URL) as the running `up` took."""
    recorded = up_environ(out_dir) or {}
    same_shell = all(recorded.get(name) == taken.get(name) for name in svc.passthrough)
    return (
        _owned(record)
        and record.command == (svc.command or "")
        and same_shell
        and (record.env_digest == env_file_digest(svc, out_dir))
    )


def up(
    out_dir: Path,
    environ: Mapping[str, str],
    deadline_s: float = 60.0,
    on_event: EventHandler | None = None,
    *,
    force_recreate: bool = False,
    start_grace_s: float = 1.0,
    interval_s: float = 0.3,
    stop_grace_s: float = 5.0,
) -> list[ServiceStatus]:
    """Start every service of the rendered folder `out_dir`; return once each one is healthy.

    On an environment that runs already, like `docker compose up -d`: a service whose process is gone starts,
    one whose command, env file or values from the shell changed restarts, the others are left alone (all of
    them restart with `force_recreate`); a process of a service the folder no longer has is stopped. The
    processes keep running after this returns (`down` stops them). On failure what this call started is stopped
    again and CheckFailed names the service, what happened and the end of its log.
    """
    out_dir = Path(out_dir)
    manifest = load_manifest(out_dir)
    manifest.require_processes()
    with run_lock(out_dir):
        state = read_state(out_dir)
        if state is None or state.runner != "procfile":
            refuse_if_running(out_dir, "procfile", manifest.down_hint)
            state = None
        if not manifest.root.is_dir():
            raise UserError(f"{out_dir}: project root {manifest.root} (manifest field root) is not a folder")
        taken = {name: environ.get(name) for name in taken_names(manifest.services)}
        records = {r.name: r for r in state.processes} if state else {}
        kept = {
            svc.name: records[svc.name]
            for svc in manifest.services
            if not force_recreate and svc.name in records and _unchanged(out_dir, svc, records[svc.name], taken)
        }
        to_start = [svc for svc in manifest.services if svc.name not in kept]
        envs = {svc.name: process_env(svc, out_dir, environ) for svc in to_start}
        secrets = tuple(value for env in envs.values() for value in env.secret_values)
        folder = logs_dir(out_dir, create=True)
        for svc in to_start:  # before anything starts
            check_log_path(folder / f"{svc.name}.log")
        _stop([r for r in records.values() if r.name not in kept], stop_grace_s, on_event)  # changed, or gone
        refuse_taken_ports(manifest.environment, ((s.name, s.local_url, s.port) for s in to_start))
        running: list[_Running] = []

        def save() -> None:
            started = {r.record.name: r.record for r in running}
            ordered = [({**kept, **started}).get(s.name) for s in manifest.services]
            write_state(out_dir, RunState("procfile", manifest.environment, tuple(r for r in ordered if r)))

        try:
            record_up_environ(out_dir, manifest.services, environ)  # `restart` starts a service with the same
            save()
            for svc in to_start:
                run = _start(manifest, svc, envs[svc.name])
                running.append(run)
                save()
                _emit(on_event, svc.name, "started", f"pid {run.process.pid}")
            fresh = _wait_healthy(manifest, running, secrets, deadline_s, start_grace_s, interval_s, on_event)
        except BaseException:
            _stop([r.record for r in running], stop_grace_s, on_event)
            for run in running:
                run.process.poll()
            running.clear()
            if kept:
                save()  # what ran before and was left alone still runs
            else:
                remove_state(out_dir)
            raise
        looked = {s.name: s for s in status(out_dir)} if kept else {}
        for name in kept:
            _emit(on_event, name, "healthy", "unchanged")
        by_name = {s.name: s for s in fresh}
        return [by_name.get(svc.name) or looked[svc.name] for svc in manifest.services]


def restart(
    out_dir: Path,
    environ: Mapping[str, str],
    name: str,
    deadline_s: float = 60.0,
    on_event: EventHandler | None = None,
    *,
    stop_grace_s: float = 10.0,
) -> ServiceStatus:
    """Stop one service `up` started (if it still runs) and start it again; return once it is healthy."""
    out_dir = Path(out_dir)
    manifest = load_manifest(out_dir)
    manifest.require_processes()
    svc = next((s for s in manifest.services if s.name == name), None)
    if svc is None:
        known = ", ".join(s.name for s in manifest.services)
        if name in ADDONS:  # the procfile runner runs no add-on: it takes its URL from the environment
            raise UserError(
                f"service {name!r}: an add-on the procfile runner does not run ({ADDONS[name]} comes from the "
                f"environment; restart it where it runs); known: {known}"
            )
        raise UserError(f"service {name!r}: not in this environment (known: {known})")
    with run_lock(out_dir):
        state = read_state(out_dir)
        if state is None or state.runner != "procfile":
            raise UserError(f"{out_dir}: not running with the procfile runner; start it with `deploytool up`")
        records = {r.name: r for r in state.processes}
        check_log_path(logs_dir(out_dir, create=True) / f"{name}.log")  # before the running one is stopped
        if name in records:
            _stop([records[name]], stop_grace_s, on_event)
        env = process_env(svc, out_dir, environ)
        run = _start(manifest, svc, env, append=True)
        records[name] = run.record
        write_state(
            out_dir,
            RunState(
                "procfile", state.environment, tuple(records[s.name] for s in manifest.services if s.name in records)
            ),
        )
        _emit(on_event, name, "started", f"pid {run.process.pid}")
        try:
            return _wait_healthy(manifest, [run], env.secret_values, deadline_s, 1.0, 0.3, on_event)[0]
        except BaseException:
            _stop([run.record], stop_grace_s, on_event)
            run.process.poll()
            del records[name]
            write_state(out_dir, RunState("procfile", state.environment, tuple(records.values())))
            raise


# ---- down / status -----------------------------------------------------------------------------------


def down(
    out_dir: Path,
    environ: Mapping[str, str] | None = None,
    grace_s: float = 10.0,
    on_event: EventHandler | None = None,
) -> list[str]:
    """Stop what `up` started in `out_dir` (SIGTERM, then SIGKILL after `grace_s`); names of services stopped.

    Nothing running is not an error: the result is empty. Only a folder the procfile runner started.
    """
    out_dir = Path(out_dir)
    if read_state(out_dir) is None:
        return []
    with run_lock(out_dir):
        state = read_state(out_dir)
        if state is None:
            return []
        if state.runner != "procfile":
            raise UserError(f"{out_dir}: was started with --runner {state.runner}, not by the procfile runner")
        stopped, failed = _stop(state.processes, grace_s, on_event)
        if failed:
            write_state(
                out_dir,
                RunState(state.runner, state.environment, tuple(r for r in state.processes if r.name in failed)),
            )
            raise CheckFailed(f"could not stop: {', '.join(failed)} (still alive after SIGKILL; check `ps -ef`)")
        remove_state(out_dir)
        return stopped


def _command_health(manifest: RunManifest, svc: ManifestService, environ: Mapping[str, str]) -> live.Health:
    check = svc.process.health_command if svc.process else None
    assert check is not None
    try:
        env = process_env(svc, manifest.out_dir, environ)
    except UserError as exc:
        return live.Health(False, f"cannot run its health command: {exc}")
    return live.check_command(check, manifest.root, env.values)


def status(out_dir: Path, timeout_s: float = 2.0, environ: Mapping[str, str] | None = None) -> list[ServiceStatus]:
    """One look at every service of the folder: healthy / unhealthy / running / stopped. A worker's health
    command runs with the service's environment from `environ` (default: this process's)."""
    out_dir = Path(out_dir)
    manifest = load_manifest(out_dir)
    state = read_state(out_dir)
    records = {r.name: r for r in state.processes} if state else {}
    compose = state is not None and state.runner != "procfile"  # another runner: no processes of ours to check
    result = []
    with live.client() as client:
        for svc in manifest.services:
            record = records.get(svc.name)
            log = out_dir / record.log if record else None
            if not compose and (record is None or not _owned(record)):
                # the compose runner's words: a service `up` never started has no process to be stopped
                word = "not created" if record is None else "stopped"
                code = last_exit_code(log) if log else None
                detail = "" if code is None else f"exited with code {code}"
                result.append(
                    ServiceStatus(svc.name, word, svc.local_url or "-", svc.health_url, None, log, detail, code)
                )
                continue
            pid = record.pid if record else None
            since = started_epoch(record.start_time) if record else None
            if svc.process is not None and svc.process.health_command is not None and not compose:
                health = _command_health(manifest, svc, os.environ if environ is None else environ)
                word = "healthy" if health.ok else "unhealthy"
                url = svc.local_url or "-"
                result.append(ServiceStatus(svc.name, word, url, None, pid, log, health.detail, None, since))
                continue
            if svc.health_url is None:
                result.append(
                    ServiceStatus(svc.name, "running", svc.local_url or "-", None, pid, log, started_at=since)
                )
                continue
            health = live.check_health(client, svc.health_url, timeout_s)
            state_name = "healthy" if health.ok else "unhealthy"
            result.append(
                ServiceStatus(
                    svc.name, state_name, svc.local_url or "-", svc.health_url, pid, log, health.detail, None, since
                )
            )
    return result
