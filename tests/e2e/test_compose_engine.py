"""The compose target on a real Docker engine with real Compose v2 and images built from our Dockerfiles.

Per topology: render -> `up --runner compose` (builds, waits for health) -> probe -> a sandbox inbound message
reaches flask's `messages` table in the compose Postgres through the signed webhook -> `docker kill` one
WhatsApp container: within 2 s web answers every other tenant and 503 naming each of the dead one's, and
probe fails naming exactly those -> a WhatsApp process that crashes is restarted by the restart policy and
its tenant's session survives on the volume -> `down` leaves no container or network (volumes stay).

Select with `-m engine`. Needs an engine (`scripts/engine` makes one as root); without one the tests skip,
saying why, except under CI (`CI` set), where they fail.
"""

from __future__ import annotations

import json
import os
import signal
import textwrap
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import yaml

from deploytool.cli import main
from deploytool.output import read_secrets
from deploytool.run import engine
from deploytool.run.compose import OVERRIDE_VAR, compose_down, project_name
from tests.conftest import REPO
from tests.e2e.conftest import _free_block

pytestmark = pytest.mark.engine

ENGINE_ENV_FILE = Path(os.environ.get("DEPLOYTOOL_ENGINE_DIR", "/var/cache/deploytool-engine")) / "env"

SPEC = """
project: e2e-{name}
stage: production
services:
  web:
    kind: flask
    source: flask_service
    port: {web_port}
    start: {web_start}
    local_start: python -m flask_service migrate && exec python -m flask_service serve
    pre_deploy: python -m flask_service migrate
  whatsapp:
    kind: whatsapp
    source: node_service
    port: {wa_port}
    start: node src/server.js
    local_start: exec node node_service/src/server.js
    driver: sandbox
    volume: true
database: {{engine: postgres, name: app, user: app}}
tenants: {tenants}
topology: {topology}
targets: [compose]
"""

# The repository's own web start command (gthread workers), so the test runs what compose users run.
WEB_START = yaml.safe_load((REPO / "deploytool.yaml").read_text())["services"]["web"]["start"]

TOPOLOGIES = {
    "per-port": ("{kind: per-port}", ["1", "2", "3"]),
    "shared": ("{kind: shared}", ["1", "2", "3"]),
    "sharded": ("{kind: sharded, max_tenants_per_shard: 2}", ["1", "2", "3", "4"]),
}


def _engine_environ() -> tuple[dict[str, str] | None, str]:
    """The caller's engine, else the private one `scripts/engine` started (its env file names it)."""
    environ = dict(os.environ)
    problem = engine.engine_problem(environ)
    if problem is None:
        return environ, ""
    if ENGINE_ENV_FILE.is_file():
        for line in ENGINE_ENV_FILE.read_text().splitlines():
            if line.startswith("DOCKER_HOST="):
                environ["DOCKER_HOST"] = line.split("=", 1)[1]
        if engine.engine_problem(environ) is None:
            return environ, ""
    return None, f"no Docker engine ({problem}); run `scripts/engine` as root, or start Docker"


@pytest.fixture(scope="module")
def engine_environ() -> dict[str, str]:
    environ, reason = _engine_environ()
    if environ is None:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set: the engine tests must run, but {reason}")
        pytest.skip(reason)
    return environ


@pytest.fixture
def project(tmp_path: Path, engine_environ: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator:  # type: ignore[type-arg]
    for name, value in engine_environ.items():
        monkeypatch.setenv(name, value)
    created: list[Path] = []

    def make(name: str, topology: str, tenants: list[str]) -> Path:
        root = tmp_path / "project"
        (root / "environments").mkdir(parents=True)
        for service in ("node_service", "flask_service"):
            (root / service).symlink_to(REPO / service)
        base = _free_block(8)
        spec = SPEC.format(
            name=name,
            web_start=json.dumps(WEB_START),
            web_port=base,
            wa_port=base + 1,
            tenants=json.dumps(tenants),
            topology=topology,
        )
        (root / "deploytool.yaml").write_text(textwrap.dedent(spec))
        (root / "environments" / "e2e.yaml").write_text("{}\n")
        created.append(root / "deploy" / "e2e")
        return root / "deploytool.yaml"

    yield make
    for out in created:  # whatever a failed test left behind, volumes included
        if (out / "docker-compose.yml").is_file():
            compose_down(out, engine_environ, capture_output=True, volumes=True)


def write_override(out: Path, tmp_path: Path) -> Path:
    """Test-only: builds use the host network, because containers have no NAT on these machines."""
    compose = yaml.safe_load((out / "docker-compose.yml").read_text())
    services = {name: {"build": {"network": "host"}} for name, svc in compose["services"].items() if "build" in svc}
    path = tmp_path / "override.yml"
    path.write_text(yaml.safe_dump({"services": services}))
    return path


def containers(environ: Mapping[str, str], project: str) -> dict[str, engine.ContainerState]:
    return {state.service: state for state in engine.project_containers(environ, project)}


def poll(what: str, check, deadline_s: float):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + deadline_s
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {deadline_s:g} s")
        time.sleep(0.2)


def stored_messages(environ: Mapping[str, str], project: str, tenant: str) -> list[str]:
    import docker

    client = docker.from_env(environment=dict(environ))
    try:
        postgres = client.containers.get(containers(environ, project)["postgres"].name)
        sql = f"SELECT sender || '|' || text FROM messages WHERE tenant_id = '{tenant}' AND direction = 'in'"
        code, output = postgres.exec_run(["psql", "-U", "app", "-d", "app", "-tAc", sql])
    finally:
        client.close()
    return output.decode().split() if code == 0 else []


@pytest.mark.parametrize("topology", list(TOPOLOGIES))
def test_compose_on_a_real_engine(
    topology: str, project, tmp_path: Path, engine_environ: dict[str, str], capsys, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    import docker

    spec_topology, tenants = TOPOLOGIES[topology]
    spec = project(topology.replace("-", ""), spec_topology, tenants)

    def cli(*args: str) -> int:
        return main(["--spec", str(spec), *args])

    # From another working directory, with the default --out: every path handed to Compose is absolute.
    os.chdir(tmp_path)
    assert cli("render", "e2e") == 0
    out = spec.parent / "deploy" / "e2e"
    monkeypatch.setenv(OVERRIDE_VAR, str(write_override(out, tmp_path)))  # this test's services only
    started = time.monotonic()
    assert cli("up", "e2e", "--runner", "compose", "--timeout", "300") == 0
    up_s = time.monotonic() - started
    name = project_name(out)
    states = containers(engine_environ, name)
    # `up` returns when every /health answers here; the engine's own check may not have run yet (5 s interval)
    assert all(s.status == "running" and s.health != "unhealthy" for s in states.values()), states

    report = tmp_path / "probe.json"
    assert cli("probe", "e2e", "--format", "json", "--output", str(report), "--timeout", "30") == 0

    # Day two on the engine: ps names the runner, restart brings web back healthy, logs are the container's.
    capsys.readouterr()
    assert cli("ps", "e2e") == 0
    table = capsys.readouterr().out
    assert "compose" in table and " stopped " not in table and "web" in table, table
    assert cli("restart", "e2e", "web", "--timeout", "120") == 0
    assert capsys.readouterr().out.startswith("healthy")
    assert cli("logs", "e2e", "web", "--lines", "5") == 0
    assert capsys.readouterr().out.strip()
    manifest = json.loads((out / "deploytool-manifest.json").read_text())
    routes = {row["tenant"]: row["service"] for row in manifest["tenants"]}
    urls = {s["name"]: s["local_url"] for s in manifest["services"]}
    secrets = read_secrets(out)
    node_headers = {"X-Api-Key": secrets["WHATSAPP_API_KEY"]}

    # A message arrives on WhatsApp (sandbox) and reaches flask's database through the signed webhook.
    tenant = tenants[-1]
    with httpx.Client(base_url=urls[routes[tenant]], headers=node_headers, timeout=10) as client:
        assert client.get(f"/tenants/{tenant}/qr").status_code == 200
        assert client.post(f"/tenants/{tenant}/sandbox/scan").status_code in (200, 202)
        sent = client.post(f"/tenants/{tenant}/sandbox/inbound", json={"from": "5511999990000", "text": "oi"})
        assert sent.status_code in (200, 202), sent.text
    rows = poll(
        "the inbound message in flask's messages table", lambda: stored_messages(engine_environ, name, tenant), 20
    )
    assert rows == ["5511999990000@s.whatsapp.net|oi"]

    # `docker kill` one WhatsApp container: the other tenants keep being served, the dead one's get 503 at once.
    victim = routes[tenants[0]]
    victim_tenants = sorted(t for t, s in routes.items() if s == victim)
    client = docker.from_env(environment=engine_environ)
    try:
        client.containers.get(containers(engine_environ, name)[victim].name).kill()
        killed = time.monotonic()

        def qr(t: str) -> httpx.Response:
            return httpx.get(
                f"{urls['web']}/api/qr",
                params={"user_id": t},
                headers={"X-Api-Key": secrets["OPS_API_KEY"]},
                timeout=10,
            )

        with ThreadPoolExecutor(len(tenants)) as pool:
            answers = dict(zip(tenants, pool.map(qr, tenants), strict=True))
        assert time.monotonic() - killed < 2.0, {t: r.elapsed.total_seconds() for t, r in answers.items()}
        for t, resp in answers.items():
            if t in victim_tenants:
                assert resp.status_code == 503, (t, resp.text)
                assert resp.json()["tenant_id"] == t and f"tenant {t}" in resp.json()["message"]
            else:  # answered by its own server: a QR, or 409 for the tenant paired above
                assert resp.status_code == 200 or resp.json()["error"] == "already_connected", (t, resp.text)
        health = httpx.get(f"{urls['web']}/health", timeout=10)
        assert health.status_code == 200 and health.elapsed.total_seconds() < 1.0

        code = cli("probe", "e2e", "--format", "json", "--output", str(report), "--timeout", "3", "--interval", "0.5")
        assert code == 1
        assert sorted(json.loads(report.read_text())["failed_tenants"]) == victim_tenants

        # A crash (not a `docker kill`): the restart policy brings the process back, the session survives.
        crashing = routes[tenant] if routes[tenant] != victim else None
        if crashing is None:  # shared: the only WhatsApp container was the victim; start it again first
            client.containers.get(containers(engine_environ, name)[victim].name).start()
            crashing = victim
            poll("the victim healthy again", lambda: containers(engine_environ, name)[victim].ok, 60)
        before = containers(engine_environ, name)[crashing]
        pid = client.containers.get(before.name).attrs["State"]["Pid"]
        os.kill(pid, signal.SIGKILL)  # from the host: inside, PID 1 cannot be sent SIGKILL
        poll(
            f"{crashing} restarted by its restart policy",
            lambda: (s := containers(engine_environ, name)[crashing]).restart_count > before.restart_count and s.ok,
            90,
        )

        def connected() -> bool:
            with httpx.Client(base_url=urls[crashing], headers=node_headers, timeout=5) as node:
                try:
                    return node.get(f"/tenants/{tenant}/status").json().get("state") == "connected"
                except httpx.HTTPError:
                    return False

        poll(f"tenant {tenant}'s session back from the volume", connected, 30)
    finally:
        client.close()

    assert cli("down", "e2e") == 0
    assert engine.project_containers(engine_environ, name) == []
    assert engine.project_networks(engine_environ, name) == []
    volumes = docker.from_env(environment=engine_environ).volumes.list(
        filters={"label": f"{engine.PROJECT_LABEL}={name}"}
    )
    assert volumes, "down without --volumes keeps the sessions and the database"
    print(f"{topology}: up {up_s:.1f} s, whole test {time.monotonic() - started:.1f} s")
