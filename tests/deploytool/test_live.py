"""The run side's one live layer (run/live.py) and what day two relies on: the environment `up` ran with is the
one `restart`, `run` and `tenants move` start services with."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from deploytool import run
from deploytool.cli import main
from deploytool.errors import CheckFailed
from deploytool.run import live
from deploytool.run.supervisor import up
from tests.deploytool.test_run import Folder, folder

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="process checks read /proc (Linux)")
__all__ = ["folder"]  # the fixture: every process a test starts is stopped after it


# ---- the layer itself ------------------------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def server() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            code = 200 if self.path == "/health" else 503
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    httpd = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_one_health_check_never_goes_through_the_shells_proxy(server, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{closed_port()}")  # nothing listens there
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with live.client() as client:
        assert live.check_health(client, f"{server}/health", 2) == live.Health(True, "HTTP 200")
        assert live.check_health(client, f"{server}/other", 2) == live.Health(False, "HTTP 503")
        refused = live.check_health(client, f"http://127.0.0.1:{closed_port()}/health", 2)
        assert refused == live.Health(False, "Connection refused")  # the OSError's words, not urllib3's wrapping


def test_one_wording_for_a_request_that_got_no_answer():
    url = f"http://127.0.0.1:{closed_port()}/tenants/1/status"
    with live.client() as client, pytest.raises(CheckFailed) as failed:
        live.call(client, "GET", url, 2)
    assert str(failed.value) == f"GET {url}: no answer (Connection refused)"


def test_wait_until_asks_until_done_or_the_deadline():
    asked = []
    assert live.wait_until(lambda: asked.append(1) or len(asked) == 3, 30, interval_s=0)
    assert len(asked) == 3
    assert not live.wait_until(lambda: False, 0, interval_s=0)  # asked once, however short the deadline


def test_nothing_under_run_opens_its_own_session_or_polls_on_its_own():
    """The one client and the one poller: no other module of deploytool/run (nor tenants) builds a requests
    session, sleeps in a loop on a deadline, or reaches into the supervisor's private helpers."""
    root = Path(__file__).resolve().parents[2]
    for path in [*sorted((root / "deploytool" / "run").glob("*.py")), root / "deploytool" / "tenants.py"]:
        text = path.read_text()
        if path.name == "live.py":
            continue
        assert "requests.Session(" not in text and "trust_env" not in text, path
        assert "_health_session" not in text and "RequestException" not in text, path
        sleeps = text.count("time.sleep(")
        assert sleeps == (1 if path.name == "runners.py" else 0), path  # runners.py: `logs --follow`, no deadline


# ---- the environment `up` ran with ------------------------------------------------------------------------

SHOW_DATABASE_URL = "import os, sys; print('database', os.environ.get('DATABASE_URL', 'unset'))"


def test_restart_and_run_use_what_up_took_from_its_shell_and_say_so(folder, monkeypatch, capfd):
    web = folder.add("web", passthrough=("DATABASE_URL",))
    up(folder.out, folder.environ, deadline_s=20)
    url = folder.environ["DATABASE_URL"]
    record = folder.out / ".run" / "up-environ.json"
    assert stat.S_IMODE(record.stat().st_mode) == 0o600  # it may hold a password
    assert json.loads(record.read_text()) == {"DATABASE_URL": url}

    monkeypatch.delenv("DATABASE_URL", raising=False)  # a fresh shell: without it a shard would pick the file store
    for name, value in folder.environ.items():
        if name != "DATABASE_URL":
            monkeypatch.setenv(name, value)
    assert main(["restart", "test", "web", "--out", str(folder.out)]) == 0
    err = capfd.readouterr().err
    assert "DATABASE_URL: as `deploytool up` had it" in err and str(record) in err
    assert url not in err  # the name, never the value
    assert folder.get(web, "/env").json()["env"]["DATABASE_URL"] == url

    code = main(["run", "test", "web", "--out", str(folder.out), "--", sys.executable, "-c", SHOW_DATABASE_URL])
    assert code == 0
    said = capfd.readouterr()
    assert f"database {url}" in said.out and "DATABASE_URL: as `deploytool up` had it" in said.err

    monkeypatch.setenv("DATABASE_URL", url)  # the same shell again: nothing to say
    assert main(["restart", "test", "web", "--out", str(folder.out)]) == 0
    assert "as `deploytool up` had" not in capfd.readouterr().err

    assert run.down(folder.out) == ["web"]
    assert not record.exists()  # it goes with what runs


# ---- a move that times out says which session store each side used ---------------------------------------------

SHARDED = "stage: production\ntenants: ['1', '2', '3']\ntopology: {kind: sharded, max_tenants_per_shard: 2}\n"


class _Answer:
    def __init__(self, code: int, data: dict[str, object] | None = None) -> None:
        self.status_code, self.ok, self._data, self.text = code, code < 400, data or {}, json.dumps(data or {})

    def json(self) -> dict[str, object]:
        return self._data


class _Shards:
    """Shard 1 on PostgreSQL, shard 2 started (from another shell) on the file store: the tenant never connects."""

    def request(self, method: str, url: str, **_: object) -> _Answer:
        if url.endswith("/health"):
            return _Answer(200, {"session_store": "postgres" if "shard-1" in url else "files"})
        if url.endswith("/release"):
            return _Answer(200)
        if url.endswith("/connect"):
            return _Answer(202)
        if "shard-1" in url:
            return _Answer(200, {"state": "connected", "me": "+15550001"})
        return _Answer(200, {"state": "qr", "me": None, "last_error": None})


class _Runner:
    name = "procfile"

    def restart(self, out: Path, environ: object, service: str, timeout: float, on_event: object) -> object:
        return type("Status", (), {"state": "healthy"})()


def test_a_move_that_times_out_names_the_session_store_each_side_used(make_project, monkeypatch, capsys):
    from deploytool import tenants

    monkeypatch.delenv("CI", raising=False)
    spec = make_project({"prod": SHARDED})
    assert main(["--spec", str(spec), "render", "prod"]) == 0

    def running(lay, environ):
        urls = {s.name: f"http://127.0.0.1:1/{s.name}" for s in lay.plan.services}
        return tenants.Live(lay.out, _Runner(), environ, urls, "key", _Shards())  # type: ignore[arg-type]

    monkeypatch.setattr(tenants, "live", running)
    assert main(["--spec", str(spec), "tenants", "move", "prod", "1", "--shard", "2", "--timeout", "0.3"]) == 1
    err = capsys.readouterr().err
    assert "whatsapp-shard-2: tenant 1 not connected within 0.3 s" in err
    assert "session store: whatsapp-shard-1 postgres, whatsapp-shard-2 files" in err


# ---- ps, restart and the --format json of show, tenants list and doctor -----------------------------------------


def test_ps_lists_state_exit_code_and_uptime_as_json_and_exits_1_when_a_service_is_down(folder, capsys):
    folder.add("web")
    folder.add("worker", health_path=None, command=f"exec python -c 'import time; time.sleep(60)' {folder.root}")
    up(folder.out, folder.environ, deadline_s=20)
    ps = ["ps", "test", "--out", str(folder.out)]
    assert main([*ps, "--format", "json"]) == 0
    rows = {row["service"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["web"]["state"] == "healthy" and rows["worker"]["state"] == "running"
    assert rows["web"]["runner"] == "procfile" and rows["web"]["exit_code"] is None
    assert isinstance(rows["web"]["uptime_s"], int) and 0 <= rows["web"]["uptime_s"] < 600
    assert main(ps) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["SERVICE", "RUNNER", "STATE", "EXIT", "UPTIME", "PORT", "TENANTS"]

    state = json.loads((folder.out / ".run" / "state.json").read_text())
    worker = next(p for p in state["processes"] if p["name"] == "worker")
    os.killpg(worker["pgid"], signal.SIGKILL)  # the worker dies on its own
    assert wait_gone(worker["pid"])
    assert main(ps) == 1
    said = capsys.readouterr()
    assert any(line.split()[:3] == ["worker", "procfile", "stopped"] for line in said.out.splitlines())
    assert "not running: worker" in said.err


def wait_gone(pid: int) -> bool:
    return live.wait_until(lambda: not Path(f"/proc/{pid}").exists() or _zombie(pid), 10, 0.05)


def _zombie(pid: int) -> bool:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return text[text.rindex(")") + 2] in "ZX"


def test_restart_of_an_add_on_on_the_procfile_runner_says_where_it_comes_from(folder, capsys):
    folder.add("web")
    up(folder.out, folder.environ, deadline_s=20)
    assert main(["restart", "test", "postgres", "--out", str(folder.out)]) == 2
    err = capsys.readouterr().err
    assert "an add-on the procfile runner does not run (DATABASE_URL comes from the environment" in err


def test_show_tenants_list_and_doctor_print_json(make_project, capsys):
    spec = make_project({"dev": "{}\n"})
    assert main(["--spec", str(spec), "show", "dev", "--format", "json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["environment"] == "dev" and "web" in shown["services"]
    assert main(["--spec", str(spec), "tenants", "list", "dev", "--format", "json"]) == 0
    tenants = json.loads(capsys.readouterr().out)
    assert tenants and set(tenants[0]) == {"tenant", "service", "state", "me"} and tenants[0]["state"] is None
    code = main(["--spec", str(spec), "doctor", "--format", "json"])
    doctor = json.loads(capsys.readouterr().out)
    assert code == (0 if doctor["ready"] else 1)
    assert {"name", "needed_by", "ok", "detail", "fix"} == set(doctor["checks"][0])
    assert main(["--spec", str(spec), "show", "dev", "--format", "xml"]) == 2
    assert "--format: expected yaml or json" in capsys.readouterr().err


# ---- up converges, like `docker compose up -d` --------------------------------------------------------------------


def pids(folder: Folder) -> dict[str, int]:
    state = json.loads((folder.out / ".run" / "state.json").read_text())
    return {p["name"]: p["pid"] for p in state["processes"]}


def test_up_on_a_running_environment_starts_what_is_missing_and_restarts_what_changed(folder):
    web, api = folder.add("web"), folder.add("api")
    up(folder.out, folder.environ, deadline_s=20)
    first = pids(folder)

    env_file = folder.out / "env" / "local" / "api.env"
    env_file.write_text(env_file.read_text() + "FEATURE=on\n")  # api's env file changed
    os.killpg(first["web"], signal.SIGKILL)  # web's process is gone
    assert wait_gone(first["web"])
    folder.add("extra")  # a new service
    statuses = up(folder.out, folder.environ, deadline_s=20)
    second = pids(folder)
    assert {s.name: s.state for s in statuses} == {"api": "healthy", "extra": "healthy", "web": "healthy"}
    assert second["web"] != first["web"] and second["api"] != first["api"]
    assert folder.get(api, "/env").json()["env"]["FEATURE"] == "on"
    assert folder.get(web, "/health").status_code == 200

    assert pids(folder) == second and up(folder.out, folder.environ, deadline_s=20) and pids(folder) == second
    changed_shell = {**folder.environ, "DATABASE_URL": "postgresql://other@127.0.0.1/app"}
    up(folder.out, changed_shell, deadline_s=20)  # no service takes DATABASE_URL: nothing to restart
    assert pids(folder) == second

    up(folder.out, folder.environ, deadline_s=20, force_recreate=True)
    third = pids(folder)
    assert all(third[name] != second[name] for name in second)

    folder.services = [s for s in folder.services if s["name"] != "extra"]  # a service the spec no longer has
    folder.write()
    up(folder.out, folder.environ, deadline_s=20)
    assert set(pids(folder)) == {"api", "web"} and wait_gone(third["extra"])
    assert pids(folder)["web"] == third["web"]


def test_up_restarts_a_service_when_what_it_takes_from_the_shell_changed(folder):
    folder.add("web", passthrough=("DATABASE_URL",))
    up(folder.out, folder.environ, deadline_s=20)
    first = pids(folder)
    other = "postgresql://other@127.0.0.1/app"
    up(folder.out, {**folder.environ, "DATABASE_URL": other}, deadline_s=20)
    assert pids(folder)["web"] != first["web"]
    assert json.loads((folder.out / ".run" / "up-environ.json").read_text()) == {"DATABASE_URL": other}


# ---- workers have a health ------------------------------------------------------------------------------------------


def add_worker(folder: Folder, name: str, health_command: str) -> None:
    folder.add(name, health_path=None, command=f"exec python -c 'import time; time.sleep(60)' {folder.root}")
    entry = folder.services[-1]
    entry["role"], entry["port"], entry["local_url"] = "worker", None, None
    entry["health_command"] = health_command
    entry["process"]["health_command"] = health_command
    folder.write()


def test_a_workers_health_command_gates_up_and_ps_and_a_dead_worker_fails_the_probe(folder, capsys):
    from deploytool.output import read_manifest
    from deploytool.probe import probe_environment

    ready = folder.root / "worker-ready"
    add_worker(folder, "worker", f"test -f {ready} && test \"$GREETING\" = 'hello world'")  # its environment
    threading.Timer(0.5, ready.touch).start()  # healthy only once the file is there
    statuses = up(folder.out, folder.environ, deadline_s=20)
    assert ready.exists() and [(s.name, s.state) for s in statuses] == [("worker", "healthy")]

    def probe() -> dict[str, str]:
        report = probe_environment(read_manifest(folder.out), folder.out, {}, folder.environ, timeout=5)
        return {r.id: r.status for r in report.results} | {"ok": str(report.ok)}

    assert probe() == {"worker:worker": "pass", "ok": "True"}
    ps = ["ps", "test", "--out", str(folder.out), "--format", "json"]
    ready.unlink()  # the worker says it is not healthy
    assert main(ps) == 1
    assert json.loads(capsys.readouterr().out)[0]["state"] == "unhealthy"
    ready.touch()
    assert main(ps) == 0
    capsys.readouterr()

    worker = pids(folder)["worker"]
    os.killpg(worker, signal.SIGKILL)  # a dead worker
    assert wait_gone(worker)
    assert probe() == {"worker:worker": "fail", "ok": "False"}


def test_a_worker_that_never_gets_healthy_fails_up(folder):
    add_worker(folder, "worker", "exit 1")
    with pytest.raises(CheckFailed) as failed:
        up(folder.out, folder.environ, deadline_s=1)
    assert "worker was not healthy within 1s: last health command exit code 1" in str(failed.value)


def test_health_command_is_for_workers_and_generic_services_and_compose_checks_it(make_project, capsys):
    import yaml

    worker = (
        "services:\n  jobs: {kind: worker, source: flask_service, start: python -m jobs, health_command: 'kill -0 1'}\n"
    )
    spec = make_project({"dev": worker})
    assert main(["--spec", str(spec), "render", "dev"]) == 0
    compose = yaml.safe_load((spec.parent / "deploy/dev/docker-compose.yml").read_text())
    assert compose["services"]["jobs"]["healthcheck"]["test"] == ["CMD-SHELL", "kill -0 1"]
    manifest = json.loads((spec.parent / "deploy/dev/deploytool-manifest.json").read_text())
    jobs = next(s for s in manifest["services"] if s["name"] == "jobs")
    assert jobs["health_command"] == "kill -0 1"
    assert jobs["process"]["health_command"] == "cd flask_service && kill -0 1"  # where its start command runs
    capsys.readouterr()
    bad = make_project(
        {"dev": "services:\n  web: {kind: flask, source: flask_service, port: 5002, health_command: x}\n"}
    )
    assert main(["--spec", str(bad), "validate", "dev"]) == 2
    assert "`health_command` is for worker and generic services" in capsys.readouterr().err


# ---- compose: up --force-recreate, down --rmi local (a fake docker CLI that logs its arguments) -------------------


def test_compose_up_force_recreate_and_down_rmi_local_reach_compose(folder, monkeypatch, capsys):
    from deploytool.run import compose
    from deploytool.run.compose import compose_up
    from tests.deploytool.test_run import fake_docker

    folder.add("web")
    environ = fake_docker(folder, engine=True)
    (folder.out / "docker-compose.yml").write_text("name: acme-test\nservices: {}\n")
    monkeypatch.setattr("deploytool.run.engine.engine_problem", lambda environ: None)
    monkeypatch.setattr("deploytool.run.engine.project_containers", lambda *args: [])
    monkeypatch.setattr(compose, "_wait_ready", lambda *args: None)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)

    assert compose_up(folder.out, environ, force_recreate=True) == ["web"]
    assert main(["down", "test", "--out", str(folder.out), "--rmi", "all"]) == 2
    assert "--rmi: expected local" in capsys.readouterr().err
    assert main(["down", "test", "--out", str(folder.out), "--rmi", "local"]) == 0
    assert main(["down", "test", "--out", str(folder.out), "--rmi", "local"]) == 0  # stopped: images still go

    out = folder.out.resolve()
    prefix = f"compose -p {compose.project_name(out)} --env-file {out}/.secrets.env -f {out}/docker-compose.yml"
    calls = (folder.root / "docker.log").read_text().splitlines()
    assert f"{prefix} up -d --remove-orphans --no-build --force-recreate" in calls
    assert calls.count(f"{prefix} down --remove-orphans --rmi local") == 2
    assert not any(" rmi " in f" {c} " and "--rmi local" not in c for c in calls)  # never `docker rmi` by hand


def test_ps_gives_the_exit_code_of_a_process_that_ended_on_its_own(folder, capsys):
    from deploytool.run.supervisor import status

    flag = folder.root / "end-now"
    waits = f"import os, sys, time\nwhile not os.path.exists({str(flag)!r}): time.sleep(0.05)\nsys.exit(3)"
    (folder.root / "job.py").write_text(waits)
    folder.add("web")
    folder.add("job", health_path=None, command=f"exec python {folder.root / 'job.py'}")
    up(folder.out, folder.environ, deadline_s=20)
    flag.touch()  # it ends on its own, after `up`
    assert live.wait_until(lambda: status(folder.out)[0].state == "stopped", 20, 0.1)  # `job` sorts first
    assert main(["ps", "test", "--out", str(folder.out), "--format", "json"]) == 1
    rows = {row["service"]: row for row in json.loads(capsys.readouterr().out)}
    assert (rows["job"]["state"], rows["job"]["exit_code"], rows["job"]["uptime_s"]) == ("stopped", 3, None)
    assert rows["web"]["exit_code"] is None and rows["web"]["state"] == "healthy"
