"""The local runner against real processes: tiny Python HTTP servers started from a hand-made output folder."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from deploytool import run
from deploytool.errors import CheckFailed, UserError
from deploytool.render.envfile import format_env
from deploytool.run import Event
from deploytool.run.compose import compose_down, compose_up
from deploytool.run.procs import start_time
from deploytool.run.supervisor import down, status, up
from tests.conftest import process_alive as alive

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="process checks read /proc (Linux)")

SECRET_KEY = "s3cr3t-from-file-Zq9"
API_KEY_FILE = "api-key-from-file-Xw4"
API_KEY_ENV = "api-key-from-env-Pp7"

SERVER = textwrap.dedent(
    """
    import json, os, signal, subprocess, sys, time
    from http.server import BaseHTTPRequestHandler, HTTPServer

    mode = sys.argv[1]
    marker = sys.argv[2]
    print("booting", mode, flush=True)
    if mode == "crash":
        print("fatal: cannot open the database with key", os.environ.get("SECRET_KEY"), flush=True)
        sys.exit(3)
    if mode == "stubborn":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if mode == "grandchild":
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", marker])
        with open(os.environ["PID_FILE"], "w") as handle:
            json.dump({"server": os.getpid(), "grandchild": child.pid}, handle)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/health":
                code, body = (503, b"sick") if mode == "sick" else (200, b"ok")
            elif self.path == "/env":
                code, body = 200, json.dumps({"env": dict(os.environ), "executable": sys.executable}).encode()
            else:
                code, body = 404, b""
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
    """
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def leftovers(marker: Path) -> list[int]:
    """Live processes whose command line mentions this test's folder (every process these tests start does)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if str(marker).encode() in cmdline and alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def wait_until(check: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


class Folder:
    """A rendered output folder made by hand: manifest, env files, .secrets.env; root = tmp_path."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.out = root / "deploy" / "test"
        self.script = root / "server.py"
        self.script.write_text(SERVER)
        self.services: list[dict[str, Any]] = []
        (self.out / "env" / "local").mkdir(parents=True)
        (root / "environments").mkdir()
        (root / "environments" / "test.yaml").write_text("{}\n")  # the project the manifest's root names
        secrets = self.out / ".secrets.env"
        secrets.write_text(f"# local secret values\nSECRET_KEY={SECRET_KEY}\nWHATSAPP_API_KEY={API_KEY_FILE}\n")
        secrets.chmod(0o600)
        self.environ = {
            "PATH": os.environ.get("PATH", os.defpath),
            "HOME": str(root),
            "LANG": "C.UTF-8",
            "DATABASE_URL": "postgresql://app@127.0.0.1/app",
            "AWS_SECRET_ACCESS_KEY": "caller-only-do-not-pass",
            "WHATSAPP_API_KEY": API_KEY_ENV,
        }

    def add(
        self,
        name: str,
        mode: str = "ok",
        *,
        health_path: str | None = "/health",
        command: str | None = None,
        secrets: tuple[str, ...] = ("SECRET_KEY", "WHATSAPP_API_KEY"),
        passthrough: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
    ) -> int:
        port = free_port()
        plain = {"PORT": str(port), "GREETING": "hello world", **(env or {})}
        env_file = f"env/local/{name}.env"
        (self.out / env_file).write_text(format_env(sorted(plain.items()), header=[f"{name}: generated"]))
        self.services.append(
            {
                "name": name,
                "role": "web",
                "port": port,
                "tenants": [],
                "local_url": f"http://127.0.0.1:{port}",
                "health_path": health_path,
                "process": {
                    "command": command or f"python {self.script} {mode} {self.root}",
                    "env_file": env_file,
                },
                "secrets": list(secrets),
                "passthrough": list(passthrough),
            }
        )
        self.write()
        return port

    def write(self) -> None:
        manifest = {
            "version": 4,
            "project": "acme",
            "environment": "test",
            "stage": "development",
            "topology": "per-port",
            "targets": ["local"],
            "root": "../..",
            "services": self.services,
            "tenants": [],
            "secrets": [],
            "probe_targets": [],
            "artifacts": {},
        }
        (self.out / "deploytool-manifest.json").write_text(json.dumps(manifest, indent=2))

    def get(self, port: int, path: str) -> httpx.Response:
        return httpx.get(f"http://127.0.0.1:{port}{path}", timeout=5, trust_env=False)


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[Folder]:
    made = Folder(tmp_path)
    try:
        yield made
    finally:
        try:
            current = run.running_runner(made.out)
            if current is not None and current.name != "procfile":
                run.down(made.out)
            else:
                down(made.out, grace_s=2)
        finally:
            for pid in leftovers(tmp_path):  # never leave a process behind, even when a test or `down` failed
                os.kill(pid, signal.SIGKILL)


def test_up_returns_once_healthy_with_env_file_secrets_and_passthrough(folder: Folder) -> None:
    web = folder.add("web", passthrough=("DATABASE_URL",))
    wa = folder.add("wa", secrets=("WHATSAPP_API_KEY",))
    folder.add("worker", health_path=None, command=f"exec python -c 'import time; time.sleep(60)' {folder.root}")
    events: list[Event] = []

    statuses = up(folder.out, folder.environ, deadline_s=20, on_event=events.append)

    assert [(s.name, s.state, s.url) for s in statuses] == [
        ("wa", "healthy", f"http://127.0.0.1:{wa}"),
        ("web", "healthy", f"http://127.0.0.1:{web}"),
        ("worker", "running", folder.services[2]["local_url"]),  # no health path: `ps`'s word too
    ]
    assert folder.get(web, "/health").status_code == 200
    assert folder.get(wa, "/health").status_code == 200
    seen = folder.get(web, "/env").json()
    env = seen["env"]
    assert env["PORT"] == str(web) and env["GREETING"] == "hello world"  # the env file
    assert env["SECRET_KEY"] == SECRET_KEY  # .secrets.env
    assert env["WHATSAPP_API_KEY"] == API_KEY_ENV  # the caller's environment wins over .secrets.env
    assert env["DATABASE_URL"] == folder.environ["DATABASE_URL"]  # passthrough
    assert "AWS_SECRET_ACCESS_KEY" not in env  # the caller's other variables stay out
    assert env["HOME"] == folder.environ["HOME"]
    assert env["PATH"].split(os.pathsep)[0] == os.path.dirname(sys.executable)
    assert seen["executable"].startswith(os.path.dirname(sys.executable))  # `python` is deploytool's python
    wa_env = folder.get(wa, "/env").json()["env"]
    assert "DATABASE_URL" not in wa_env and "SECRET_KEY" not in wa_env  # only what the manifest lists for wa
    assert wa_env["PORT"] == str(wa)

    state_text = (folder.out / ".run" / "state.json").read_text()
    state = json.loads(state_text)
    assert sorted(p["name"] for p in state["processes"]) == ["wa", "web", "worker"]
    for process in state["processes"]:
        assert process["start_time"] == start_time(process["pid"]) and process["pgid"] == process["pid"]
    for secret in (SECRET_KEY, API_KEY_FILE, API_KEY_ENV):
        assert secret not in state_text
        assert secret not in repr(events) and secret not in repr(statuses)
    assert {(e.service, e.kind) for e in events} >= {("web", "started"), ("web", "healthy"), ("worker", "healthy")}
    assert [s.state for s in status(folder.out)] == ["healthy", "healthy", "running"]


def test_each_process_starts_from_its_env_file_as_it_reads(folder: Folder) -> None:
    """The env file is what runs: the manifest only names it, and what the file says (in the dialect every
    reader shares: quotes, a line feed, `#`, `$`) is exactly what the process gets."""
    web = folder.add("web")
    env_file = folder.out / "env" / "local" / "web.env"
    assert json.loads((folder.out / "deploytool-manifest.json").read_text())["services"][0]["process"] == {
        "command": folder.services[0]["process"]["command"],
        "env_file": "env/local/web.env",
    }
    env_file.write_text(f"# edited by hand\nPORT={web}\nGREETING='two # words $HOME\nand a line'\nQUOTED=\"it's\"\n")

    up(folder.out, folder.environ, deadline_s=20)

    env = folder.get(web, "/env").json()["env"]
    assert env["GREETING"] == "two # words $HOME\nand a line"
    assert env["QUOTED"] == "it's"


def test_a_service_that_crashes_at_start_fails_up_with_its_log_and_stops_the_others(folder: Folder) -> None:
    good = folder.add("good")
    folder.add("bad", "crash")

    with pytest.raises(CheckFailed) as failure:
        up(folder.out, folder.environ, deadline_s=20)

    message = str(failure.value)
    assert "bad exited with code 3" in message
    assert "booting crash" in message and "fatal: cannot open the database with key ***" in message  # log tail
    assert SECRET_KEY not in message  # the service printed it; the runner does not repeat it
    assert "good exited" not in message
    assert wait_until(lambda: not leftovers(folder.root), 3), leftovers(folder.root)
    assert not (folder.out / ".run" / "state.json").exists()
    with pytest.raises(httpx.ConnectError):
        folder.get(good, "/health")
    assert down(folder.out) == []


def test_a_service_that_never_becomes_healthy_fails_after_the_deadline(folder: Folder) -> None:
    folder.add("sick", "sick")
    started = time.monotonic()

    with pytest.raises(CheckFailed) as failure:
        up(folder.out, folder.environ, deadline_s=1.5)

    assert time.monotonic() - started >= 1.5
    message = str(failure.value)
    assert "sick was not healthy within 1.5s" in message and "-> HTTP 503" in message
    assert "booting sick" in message
    assert not leftovers(folder.root)
    assert not (folder.out / ".run" / "state.json").exists()


def test_down_stops_every_process_of_the_group_including_grandchildren(folder: Folder) -> None:
    pid_file = folder.root / "pids.json"
    # no `exec`: sh stays the leader, python its child, and the sleeper python's child (a grandchild of sh)
    port = folder.add("web", "grandchild", env={"PID_FILE": str(pid_file)})
    up(folder.out, folder.environ, deadline_s=20)
    pids = json.loads(pid_file.read_text())
    leader = json.loads((folder.out / ".run" / "state.json").read_text())["processes"][0]["pid"]
    assert all(alive(pid) for pid in (leader, pids["server"], pids["grandchild"]))

    assert down(folder.out, grace_s=5) == ["web"]

    assert not any(alive(pid) for pid in (leader, pids["server"], pids["grandchild"]))
    assert not leftovers(folder.root)
    assert not (folder.out / ".run" / "state.json").exists()
    with pytest.raises(httpx.ConnectError):
        folder.get(port, "/health")
    assert down(folder.out) == []  # nothing running: not an error


def test_down_kills_a_service_that_ignores_sigterm_after_the_grace_period(folder: Folder) -> None:
    folder.add("stubborn", "stubborn", command=f"exec python {folder.script} stubborn {folder.root}")
    up(folder.out, folder.environ, deadline_s=20)
    started = time.monotonic()

    assert down(folder.out, grace_s=0.5) == ["stubborn"]

    assert time.monotonic() - started >= 0.5
    assert not leftovers(folder.root)


@pytest.mark.parametrize("tampered", [True, False])
def test_down_only_signals_the_process_it_recorded(folder: Folder, tampered: bool) -> None:
    folder.add("web")
    other = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        real_start = start_time(other.pid)
        assert real_start is not None
        recorded = str(int(real_start) + 1) if tampered else real_start
        run = folder.out / ".run"
        run.mkdir()
        record = {
            "name": "web",
            "pid": other.pid,
            "pgid": other.pid,
            "start_time": recorded,
            "command": "x",
            "log": "l",
        }
        (run / "state.json").write_text(
            json.dumps({"runner": "procfile", "environment": "test", "processes": [record]})
        )

        stopped = down(folder.out, grace_s=2)

        if tampered:  # a reused pid: not ours, left alone
            assert stopped == [] and other.poll() is None and alive(other.pid)
        else:  # the recorded process itself: stopped (proves the tampered case could fail)
            assert stopped == ["web"] and other.wait(timeout=5) == -signal.SIGTERM
        assert not (run / "state.json").exists()
    finally:
        other.kill()
        other.wait()


def test_a_second_up_leaves_a_running_unchanged_service_alone(folder: Folder) -> None:
    port = folder.add("web")
    up(folder.out, folder.environ, deadline_s=20)
    state_before = json.loads((folder.out / ".run" / "state.json").read_text())

    statuses = up(folder.out, folder.environ, deadline_s=20)  # `docker compose up -d` on a running project

    assert [(s.name, s.state) for s in statuses] == [("web", "healthy")]
    assert folder.get(port, "/health").status_code == 200  # the first one is untouched
    assert json.loads((folder.out / ".run" / "state.json").read_text()) == state_before


def test_up_forgets_state_left_by_processes_that_have_all_exited(folder: Folder) -> None:
    port = folder.add("web")
    dead = subprocess.Popen(["true"], start_new_session=True)
    dead_start = start_time(dead.pid) or "1"
    dead.wait()
    run = folder.out / ".run"
    run.mkdir()
    record = {"name": "web", "pid": dead.pid, "pgid": dead.pid, "start_time": dead_start, "command": "x", "log": "l"}
    (run / "state.json").write_text(json.dumps({"runner": "procfile", "environment": "test", "processes": [record]}))

    up(folder.out, folder.environ, deadline_s=20)

    assert folder.get(port, "/health").status_code == 200


def test_a_taken_port_is_refused_naming_the_service_and_port(folder: Folder) -> None:
    folder.add("web")
    port = folder.add("wa")
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port))
        holder.listen()

        with pytest.raises(UserError) as refused:
            up(folder.out, folder.environ, deadline_s=20)

    assert f"service wa: port {port}" in str(refused.value)
    assert "service web" not in str(refused.value)
    # the way out names deploytool's own override mechanisms, for this checkout only
    assert re.search(r"environments/[\w-]+\.local\.yaml", str(refused.value))
    assert "--set services.web.port=" in str(refused.value)
    assert not leftovers(folder.root)
    assert not (folder.out / ".run" / "state.json").exists()


def test_a_missing_secret_is_refused_before_anything_starts(folder: Folder) -> None:
    folder.add("web", secrets=("SECRET_KEY", "OPS_API_KEY"))
    with pytest.raises(UserError, match="web needs secret\\(s\\) OPS_API_KEY"):
        up(folder.out, folder.environ, deadline_s=20)
    assert not leftovers(folder.root)


# ---- --runner compose -------------------------------------------------------------------------------


def fake_docker(folder: Folder, engine: bool) -> dict[str, str]:
    """A `docker` CLI on PATH that logs its arguments; `info` fails like a CLI without a daemon."""
    bin_dir = folder.root / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    info = (
        "echo 27.3.1; exit 0"
        if engine
        else 'echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. '
        'Is the docker daemon running?" >&2; exit 1'
    )
    docker.write_text(
        f'#!/bin/sh\necho "$@" >> {folder.root}/docker.log\nif [ "$1" = info ]; then {info}; fi\nexit 0\n'
    )
    docker.chmod(docker.stat().st_mode | stat.S_IXUSR)
    (folder.out / "docker-compose.yml").write_text("services: {}\n")
    return {**folder.environ, "PATH": f"{bin_dir}{os.pathsep}/usr/bin:/bin"}


def test_compose_runner_without_an_engine_says_so_and_points_to_the_default_runner(folder: Folder) -> None:
    folder.add("web")
    environ = fake_docker(folder, engine=False)

    with pytest.raises(UserError) as refused:
        compose_up(folder.out, environ)

    message = str(refused.value)
    assert "no Docker engine is running" in message and "nothing answers at" in message
    assert "--runner procfile" in message and "needs no Docker" in message
    log = folder.root / "docker.log"
    assert not log.exists() or "up" not in log.read_text().split()  # compose up never ran
    with pytest.raises(UserError, match="no Docker engine is running"):
        compose_down(folder.out, environ)


def test_compose_runner_on_this_machine_without_an_engine(folder: Folder) -> None:
    folder.add("web")
    (folder.out / "docker-compose.yml").write_text("services: {}\n")
    # The real docker CLI (when installed) pointed at a socket nothing listens on: no engine, on any machine,
    # also where one runs (CI's), so this never skips.
    nowhere = f"unix://{folder.out}/no-engine.sock"
    environ = {**folder.environ, "PATH": os.environ.get("PATH", os.defpath), "DOCKER_HOST": nowhere}
    with pytest.raises(UserError, match=r"(no Docker engine is running|docker CLI is not installed).*needs no Docker"):
        compose_up(folder.out, environ)


def test_compose_runner_with_an_engine_builds_then_runs_compose_up_and_down_follows(
    folder: Folder, monkeypatch: pytest.MonkeyPatch
) -> None:
    from deploytool.run import compose

    folder.add("web")
    environ = fake_docker(folder, engine=True)
    (folder.out / "docker-compose.yml").write_text("name: acme-test\nservices: {}\n")
    monkeypatch.setattr("deploytool.run.engine.engine_problem", lambda environ: None)  # the fake CLI's "engine"
    monkeypatch.setattr("deploytool.run.engine.project_containers", lambda *args: [])
    monkeypatch.setattr(compose, "_wait_ready", lambda *args: None)  # nothing runs behind the fake CLI
    # A relative output folder (the CLI's default --out): Compose must still get absolute paths, or it
    # resolves --env-file against the compose file's folder (deploy/dev/deploy/dev/.secrets.env).
    monkeypatch.chdir(folder.out.parent)

    assert compose_up(Path(folder.out.name), environ) == ["web"]
    assert json.loads((folder.out / ".run" / "state.json").read_text())["runner"] == "compose"
    assert run.down(folder.out, environ) == ["web"]  # `down` knows the folder runs under compose

    out = folder.out.resolve()
    project = compose.project_name(out)
    assert project.startswith("acme-test-") and project != "acme-test"
    calls = (folder.root / "docker.log").read_text().splitlines()
    prefix = f"compose -p {project} --env-file {out}/.secrets.env -f {out}/docker-compose.yml"
    assert f"{prefix} --progress plain build" in calls
    assert f"{prefix} up -d --remove-orphans --no-build" in calls
    assert f"{prefix} down --remove-orphans" in calls
    assert not (folder.out / ".run" / "state.json").exists()


def test_restart_starts_one_service_again_and_keeps_the_others(folder: Folder) -> None:
    from deploytool.run.state import read_state
    from deploytool.run.supervisor import restart

    web = folder.add("web")
    worker = folder.add("worker")
    up(folder.out, folder.environ, deadline_s=30)
    before = {r.name: r.pid for r in read_state(folder.out).processes}  # type: ignore[union-attr]
    status = restart(folder.out, folder.environ, "web", deadline_s=30)
    after = {r.name: r.pid for r in read_state(folder.out).processes}  # type: ignore[union-attr]
    assert status.state == "healthy" and status.name == "web"
    assert after["web"] != before["web"] and after["worker"] == before["worker"]
    assert not alive(before["web"]) and alive(after["web"]) and alive(before["worker"])
    assert folder.get(web, "/health").status_code == 200 and folder.get(worker, "/health").status_code == 200
    log = (folder.out / ".run" / "logs" / "web.log").read_text()
    assert log.count("booting ok") == 2  # the log of the run it replaced is kept
    assert down(folder.out, grace_s=2) == ["web", "worker"]


def test_restart_of_an_unknown_service_or_a_stopped_environment_is_a_user_error(folder: Folder) -> None:
    from deploytool.run.supervisor import restart

    folder.add("web")
    with pytest.raises(UserError, match="not running with the procfile runner"):
        restart(folder.out, folder.environ, "web")
    up(folder.out, folder.environ, deadline_s=30)
    with pytest.raises(UserError, match="service 'nope': not in this environment"):
        restart(folder.out, folder.environ, "nope")


def test_logs_follow_yields_new_lines_masked(folder: Folder) -> None:
    folder.add("web")
    up(folder.out, folder.environ, deadline_s=30)
    log = folder.out / ".run" / "logs" / "web.log"
    lines = run.runner("procfile").logs(folder.out, folder.environ, "web", 5, follow=True)

    def next_line(timeout_s: float = 10.0) -> str | None:
        """next(lines) with a deadline: a follow that never yields must fail the test, not hang the run."""
        box: list[str] = []
        reader = threading.Thread(target=lambda: box.append(next(lines)), daemon=True)
        reader.start()
        reader.join(timeout_s)
        return box[0] if box else None

    assert next_line() == "web | booting ok"
    with open(log, "a") as handle:
        handle.write(f"later line with {SECRET_KEY}\n")
    assert next_line() == "web | later line with ***"


@pytest.mark.parametrize("field", ["pid", "pgid"])
@pytest.mark.parametrize("value", [0, 1, -1, "123", True])
def test_a_forged_run_state_is_refused_not_signalled(tmp_path, field, value):
    # pgid 0 would make `down` signal its own process group; 1 is init; a string or bool is not ours
    from deploytool.run.state import read_state, state_path

    record = {"name": "web", "pid": 4242, "pgid": 4242, "start_time": "1", "command": "x", "log": "web.log"}
    record[field] = value
    path = state_path(tmp_path)
    path.parent.mkdir()
    path.write_text(json.dumps({"version": 1, "runner": "procfile", "environment": "dev", "processes": [record]}))
    with pytest.raises(UserError, match=rf"unreadable run state \(processes\.0\.{field}: "):
        read_state(tmp_path)


# ---- a newcomer's first day (compose items) ----------------------------------------------------------


def test_a_service_without_health_path_is_running_in_up_and_in_ps(folder: Folder) -> None:
    """One word for both: `up` said `healthy` for a worker that `ps` called `running`."""
    folder.add("web")
    folder.add("worker", health_path=None)

    started = {s.name: s.state for s in up(folder.out, folder.environ, deadline_s=20)}
    now = {s.name: s.state for s in status(folder.out)}

    assert started == now == {"web": "healthy", "worker": "running"}


def compose_folder(root: Path, name: str = "acme-test") -> Path:
    out = root / "deploy" / "test"
    out.mkdir(parents=True)
    (out / "docker-compose.yml").write_text(f"name: {name}\nservices: {{}}\n")
    return out


def test_the_compose_project_is_one_per_output_folder(tmp_path: Path) -> None:
    from deploytool.run.compose import PROJECT_VAR, project_name

    first, copy = compose_folder(tmp_path / "a"), compose_folder(tmp_path / "b")

    assert project_name(first) != project_name(copy)  # two checkouts never share containers
    assert project_name(first).startswith("acme-test-") and project_name(first) == project_name(first)
    assert project_name(copy, {PROJECT_VAR: "mine"}) == "mine"  # --project-name, like `docker compose -p`
    with pytest.raises(UserError, match="--project-name: 'Not Valid' is not a Compose project name"):
        project_name(copy, {PROJECT_VAR: "Not Valid"})


def test_the_private_engine_builds_on_the_host_network_without_being_told(tmp_path: Path) -> None:
    from deploytool.run.compose import BUILD_NETWORK_VAR, ENGINE_DIR_VAR, build_network

    (tmp_path / "env").write_text(f"DOCKER_HOST=unix://{tmp_path}/docker.sock\nDEPLOYTOOL_BUILD_NETWORK=host\n")
    ours = {ENGINE_DIR_VAR: str(tmp_path), "DOCKER_HOST": f"unix://{tmp_path}/docker.sock"}

    assert build_network(ours) == ("host", str(tmp_path / "env"))
    assert build_network({**ours, "DOCKER_HOST": "unix:///var/run/docker.sock"}) == (None, "")  # another engine
    assert build_network({**ours, BUILD_NETWORK_VAR: "none"})[0] == "none"  # --build-network wins


BUILDKIT_FAILS = """#1 [gen internal] load build definition from Dockerfile
#1 DONE 0.0s
#4 [gen 1/3] FROM docker.io/library/debian:bookworm-slim
#4 DONE 0.0s
#5 [gen 2/3] RUN echo building
#5 0.245 building
#5 DONE 0.3s
#6 [gen 3/3] RUN echo oops >&2 && exit 3
#6 0.248 oops
#6 ERROR: executor failed running [/bin/sh -c echo oops >&2 && exit 3]: exit code: 3
failed to solve: executor failed running [/bin/sh -c echo oops >&2 && exit 3]: exit code: 3
"""
BUILDKIT_STUCK = """#4 [web 1/2] FROM docker.io/library/python:3.11-slim-bookworm
#4 CACHED
#7 [wa 3/6] RUN npm ci --omit=dev
"""


def fake_build(tmp_path: Path, output: str, then: str) -> tuple[Path, str]:
    out = compose_folder(tmp_path)
    (tmp_path / "build.txt").write_text(output)
    docker = tmp_path / "docker"
    # a docker CLI with the compose plugin: `compose version` answers, every other call is the build
    plugin = '[ "$1 $2" = "compose version" ] && { echo "Docker Compose version v2.40.3"; exit 0; }'
    docker.write_text(f"#!/bin/sh\n{plugin}\ncat {tmp_path}/build.txt\n{then}\n")
    docker.chmod(0o755)
    return out, str(docker)


def test_a_failing_build_names_the_service_and_the_dockerfile_step(tmp_path: Path) -> None:
    from deploytool.run.compose import compose_build

    out, docker = fake_build(tmp_path, BUILDKIT_FAILS, "exit 1")
    said: list[str] = []

    with pytest.raises(CheckFailed) as failed:
        compose_build(out, {"PATH": os.environ["PATH"]}, docker, 30, said.append)

    message = str(failed.value)
    assert message.startswith("build of service gen failed at step [3/3] RUN echo oops >&2 && exit 3: executor")
    assert "    | oops" in message  # the step's own output
    assert said == [
        "build gen: [1/3] FROM docker.io/library/debian:bookworm-slim",
        "build gen: [2/3] RUN echo building",
        "build gen: [3/3] RUN echo oops >&2 && exit 3",
    ]


def test_a_stuck_build_ends_at_its_timeout_naming_the_step(tmp_path: Path) -> None:
    from deploytool.run.compose import compose_build

    out, docker = fake_build(tmp_path, BUILDKIT_STUCK, "exec sleep 300")

    with pytest.raises(CheckFailed) as failed:
        compose_build(out, {"PATH": os.environ["PATH"]}, docker, 0.5)

    message = str(failed.value)
    assert message.startswith("build did not finish within 0.5 s: service wa at step [3/6] RUN npm ci --omit=dev")
    assert "--build-network host" in message


def test_web_waits_for_the_whatsapp_servers_to_start_not_to_be_healthy() -> None:
    """Two 5 s health intervals in a row made `up --runner compose` 7.7x the procfile runner."""
    import yaml

    from tests.conftest import REPO

    for env in ("dev", "staging", "prod"):
        compose = yaml.safe_load((REPO / "deploy" / env / "docker-compose.yml").read_text())
        web = compose["services"]["web"]["depends_on"]
        whatsapp = {name for name in web if name.startswith("whatsapp")}
        assert whatsapp and all(web[name]["condition"] == "service_started" for name in whatsapp)
        assert all(web[name]["condition"] == "service_healthy" for name in set(web) - whatsapp)  # postgres, redis
