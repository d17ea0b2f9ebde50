"""Workers, another image and the Redis add-on on a real engine: the compose target runs what it renders.

A shared environment plus a worker (the web app's image, its own command), a generic service from a public
image with a volume, and `addons: [redis]`: `up --runner compose` waits until every healthcheck passes,
the worker sees the web app's database and REDIS_URL and reaches Redis over the project network, the
image's volume is mounted where the spec says, and `down` leaves nothing of the project.
"""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import docker
import pytest

from deploytool.cli import main
from deploytool.run import engine
from deploytool.run.compose import OVERRIDE_VAR, compose_down, project_name
from tests.conftest import REPO
from tests.e2e.conftest import _free_block
from tests.e2e.test_compose_engine import WEB_START, engine_environ, write_override

pytestmark = pytest.mark.engine
__all__ = ["engine_environ"]  # the module fixture: skips without an engine, fails under CI

SPEC = """
project: e2e-extra
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
  worker:
    kind: worker
    source: flask_service
    start: python -c "import time; time.sleep(10**6)"
  files:
    kind: generic
    image: debian:bookworm-slim
    start: sleep infinity
    volume: true
    volume_path: /srv/files
addons: [redis]
database: {{engine: postgres, name: app, user: app}}
tenants: ["1", "2"]
topology: {{kind: shared}}
targets: [compose]
"""

PING_REDIS = (
    "import os, socket, urllib.parse; u = urllib.parse.urlsplit(os.environ['REDIS_URL']); "
    "s = socket.create_connection((u.hostname, u.port), timeout=5); s.sendall(b'PING\\r\\n'); print(s.recv(16))"
)


def test_workers_images_and_redis_run_on_a_real_engine(tmp_path: Path, engine_environ, monkeypatch, capsys):  # type: ignore[no-untyped-def]
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
    try:
        assert main(["--spec", str(spec), "render", "e2e"]) == 0
        monkeypatch.setenv(OVERRIDE_VAR, str(write_override(out, tmp_path)))
        assert main(["--spec", str(spec), "up", "e2e", "--runner", "compose", "--timeout", "300"]) == 0
        name = project_name(out)
        states = {s.service: s for s in engine.project_containers(engine_environ, name)}
        assert set(states) == {"web", "whatsapp", "worker", "files", "postgres", "redis"}, states
        assert all(s.status == "running" and s.health != "unhealthy" for s in states.values()), states

        client = docker.from_env(environment=engine_environ)
        worker = client.containers.get(states["worker"].name)
        env = dict(line.split("=", 1) for line in worker.attrs["Config"]["Env"])
        assert env["REDIS_URL"] == "redis://redis:6379/0" and env["DATABASE_URL"].startswith("postgresql://app:")
        assert env["WHATSAPP_SERVER_URL"].startswith("http://whatsapp:")  # the web app's environment
        code, output = worker.exec_run(["python", "-c", PING_REDIS])
        assert code == 0 and b"+PONG" in output, output
        files = client.containers.get(states["files"].name)
        mounts = {m["Destination"]: m for m in files.attrs["Mounts"]}
        assert mounts["/srv/files"]["Type"] == "volume"
        capsys.readouterr()
        assert main(["--spec", str(spec), "probe", "e2e", "--timeout", "60"]) == 0
    finally:
        if (out / "docker-compose.yml").is_file():
            compose_down(out, engine_environ, capture_output=True, volumes=True)
    assert engine.project_containers(engine_environ, project_name(out)) == []
    assert os.path.isdir(tmp_path)
