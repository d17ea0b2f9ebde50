"""Day two with the compose runner on a real engine, as a Compose user expects it.

`ps` lists every service and the add-ons (postgres, redis) with state, exit code and uptime; a worker's
`health_command` is its container healthcheck, and a dead worker fails `probe`; a second `up` starts what is
missing and leaves the rest (same containers); `restart` takes an add-on; `down --rmi local` removes the images
this environment built, never the pulled postgres image.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import docker
import pytest

from deploytool.cli import main
from deploytool.run import engine
from deploytool.run.compose import OVERRIDE_VAR, compose_down, project_name
from deploytool.targets.compose import POSTGRES_IMAGE
from tests.conftest import REPO
from tests.e2e.conftest import _free_block
from tests.e2e.test_compose_engine import WEB_START, engine_environ, write_override

pytestmark = pytest.mark.engine
__all__ = ["engine_environ"]

SPEC = """
project: e2e-daytwo
stage: production
services:
  web:
    kind: flask
    source: flask_service
    port: {web_port}
    start: {web_start}
    pre_deploy: python -m flask_service migrate
  whatsapp:
    kind: whatsapp
    source: node_service
    port: {wa_port}
    start: node src/server.js
    driver: sandbox
  jobs:
    kind: worker
    source: flask_service
    start: python -c "import time; open('/tmp/alive', 'w').close(); time.sleep(10**6)"
    health_command: test -f /tmp/alive
addons: [redis]
database: {{engine: postgres, name: app, user: app}}
tenants: ["1"]
topology: {{kind: shared}}
targets: [compose]
"""


def ps(spec: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, dict[str, object]]]:
    code = main(["--spec", str(spec), "ps", "e2e", "--format", "json"])
    return code, {row["service"]: row for row in json.loads(capsys.readouterr().out)}


def test_day_two_on_a_real_engine(tmp_path: Path, engine_environ, monkeypatch, capsys):  # type: ignore[no-untyped-def]
    for name, value in engine_environ.items():
        monkeypatch.setenv(name, value)
    root = tmp_path / "project"
    (root / "environments").mkdir(parents=True)
    for service in ("node_service", "flask_service"):
        (root / service).symlink_to(REPO / service)
    base = _free_block(4)
    spec = root / "deploytool.yaml"
    spec.write_text(textwrap.dedent(SPEC.format(web_port=base, wa_port=base + 1, web_start=json.dumps(WEB_START))))
    (root / "environments" / "e2e.yaml").write_text("{}\n")
    out = root / "deploy" / "e2e"
    monkeypatch.chdir(tmp_path)
    client = docker.from_env(environment=engine_environ)
    up = ["--spec", str(spec), "up", "e2e", "--runner", "compose", "--timeout", "300"]
    try:
        assert main(["--spec", str(spec), "render", "e2e"]) == 0
        monkeypatch.setenv(OVERRIDE_VAR, str(write_override(out, tmp_path)))
        assert main(up) == 0
        name = project_name(out)
        capsys.readouterr()

        code, rows = ps(spec, capsys)
        assert code == 0, rows
        assert set(rows) == {"web", "whatsapp", "jobs", "postgres", "redis"}
        assert rows["jobs"]["state"] == "healthy"  # its health_command, run by the engine
        assert rows["postgres"]["addon"] and rows["postgres"]["state"] == "healthy"
        assert all(isinstance(row["uptime_s"], int) for row in rows.values())
        assert main(["--spec", str(spec), "probe", "e2e", "--timeout", "60"]) == 0
        capsys.readouterr()

        ids = {c.service: c.name for c in engine.project_containers(engine_environ, name)}
        before = {s: client.containers.get(c).id for s, c in ids.items()}
        client.containers.get(ids["jobs"]).kill()  # a dead worker
        code, rows = ps(spec, capsys)
        assert code == 1 and rows["jobs"]["state"] == "stopped" and rows["jobs"]["exit_code"] == 137
        assert main(["--spec", str(spec), "probe", "e2e", "--timeout", "10"]) == 1
        assert "worker:jobs" in capsys.readouterr().out

        assert main(up) == 0  # like `docker compose up -d`: the stopped worker starts, the rest is left alone
        capsys.readouterr()
        after = {c.service: c for c in engine.project_containers(engine_environ, name)}
        assert after["jobs"].status == "running"
        assert all(client.containers.get(after[s].name).id == before[s] for s in ("web", "whatsapp", "postgres"))

        assert main(["--spec", str(spec), "restart", "e2e", "postgres", "--timeout", "120"]) == 0
        capsys.readouterr()

        built = {f"{name}-web", f"{name}-whatsapp", f"{name}-jobs"}
        present = {tag.split(":")[0] for image in client.images.list() for tag in image.tags}
        assert built & present
        assert main(["--spec", str(spec), "down", "e2e", "--rmi", "local"]) == 0
        present = {tag.split(":")[0] for image in client.images.list() for tag in image.tags}
        assert not built & present  # what this environment built is gone
        assert client.images.list(name=POSTGRES_IMAGE)  # a pulled image stays
    finally:
        if (out / "docker-compose.yml").is_file():
            compose_down(out, engine_environ, capture_output=True, volumes=True)
