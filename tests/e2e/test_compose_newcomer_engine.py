"""A newcomer's first day with `--runner compose`, on a real engine: two checkouts on one engine stay apart,
a second `up` is refused as with the procfile runner, `ps` says what the engine has, a taken port is one line
and leaves nothing running, and a build that fails or hangs ends naming the service and its Dockerfile step.

Select with `-m engine` (needs an engine: `scripts/engine`; skips without one, fails under CI).
"""

from __future__ import annotations

import json
import shutil
import socket
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
__all__ = ["engine_environ"]

SPEC = """
project: e2e-newcomer
stage: development
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
  worker:  # a process without a port or /health (generic: a worker would need web's database, not SQLite's file)
    kind: generic
    source: flask_service
    start: python -c "import time; time.sleep(10**6)"
database: {{engine: sqlite}}
tenants: ["1"]
topology: {{kind: shared}}
targets: [compose]
"""


def make(root: Path) -> Path:
    (root / "environments").mkdir(parents=True)
    for service in ("node_service", "flask_service"):
        (root / service).symlink_to(REPO / service)
    base = _free_block(4)
    spec = root / "deploytool.yaml"
    spec.write_text(textwrap.dedent(SPEC.format(web_port=base, wa_port=base + 1, web_start=json.dumps(WEB_START))))
    (root / "environments" / "e2e.yaml").write_text("{}\n")
    return spec


def ps(spec: Path, capsys, *args: str, code: int = 0) -> dict[str, str]:  # type: ignore[no-untyped-def]
    capsys.readouterr()
    assert main(["--spec", str(spec), "ps", "e2e", *args]) == code  # 1: a service that should run does not
    rows = capsys.readouterr().out.splitlines()[1:]
    return {row.split()[0]: row[35:47].strip() for row in rows}


def test_two_checkouts_a_second_up_ps_and_a_taken_port(tmp_path: Path, engine_environ, monkeypatch, capsys):  # type: ignore[no-untyped-def]
    for name, value in engine_environ.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    spec = make(tmp_path / "first")
    out = spec.parent / "deploy" / "e2e"
    copy_out = tmp_path / "copy" / "deploy" / "e2e"
    client = docker.from_env(environment=engine_environ)
    try:
        assert main(["--spec", str(spec), "render", "e2e"]) == 0
        monkeypatch.setenv(OVERRIDE_VAR, str(write_override(out, tmp_path)))
        capsys.readouterr()
        assert main(["--spec", str(spec), "up", "e2e", "--runner", "compose", "--timeout", "300"]) == 0
        said = capsys.readouterr()
        assert "build web: [" in said.err  # the build shows its steps
        # one line per service; the `e2e: ...` lines are the release and the summary
        up_states = {line.split()[1]: line.split()[0] for line in said.out.splitlines() if not line.startswith("e2e:")}
        # 12b: one word for a service without a health path, in `up` and in `ps`
        assert up_states == {"web": "healthy", "whatsapp": "healthy", "worker": "running"}
        assert ps(spec, capsys) == up_states
        name = project_name(out)

        # 8: a second `up` converges like `docker compose up -d`: nothing changed, so nothing is recreated
        ids = sorted(c.id for c in client.containers.list(filters={"label": f"{engine.PROJECT_LABEL}={name}"}))
        assert main(["--spec", str(spec), "up", "e2e", "--runner", "compose"]) == 0
        capsys.readouterr()
        assert sorted(c.id for c in client.containers.list(filters={"label": f"{engine.PROJECT_LABEL}={name}"})) == ids

        # 4: a copy of the folder is another project; its `down` leaves the first one's containers alone, and
        # it may not take the first one's name
        shutil.copytree(spec.parent, tmp_path / "copy", symlinks=True, ignore=shutil.ignore_patterns(".run"))
        copy_spec = tmp_path / "copy" / "deploytool.yaml"
        assert project_name(copy_out) != name
        assert main(["--spec", str(copy_spec), "down", "e2e"]) == 0
        assert main(["--spec", str(copy_spec), "up", "e2e", "--runner", "compose", "--project-name", name]) == 2
        assert "belongs to another folder" in capsys.readouterr().err
        assert len(engine.project_containers(engine_environ, name)) == 3

        # 5: `ps` says what the engine has: removed containers are not there any more
        for service in ("web", "worker"):
            victim = next(c for c in engine.project_containers(engine_environ, name) if c.service == service)
            client.containers.get(victim.name).remove(force=True)
        assert ps(spec, capsys, code=1) == {"web": "not created", "whatsapp": "healthy", "worker": "not created"}
        assert main(["--spec", str(spec), "down", "e2e"]) == 0
        assert engine.project_containers(engine_environ, name) == []

        # 7: a taken port is one line naming the service and the port, and nothing is left running
        web_port = json.loads((out / "deploytool-manifest.json").read_text())["services"][0]["port"]
        with socket.socket() as holder:
            holder.bind(("127.0.0.1", web_port))
            holder.listen()
            capsys.readouterr()
            assert main(["--spec", str(spec), "up", "e2e", "--runner", "compose"]) == 2
            err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1, err  # one line, naming the service and the port
        assert err[0].startswith(f"error: port already in use by another process: service web: port {web_port} ")
        assert engine.project_containers(engine_environ, name) == []
    finally:
        client.close()
        for folder in (out, copy_out):
            if (folder / "docker-compose.yml").is_file():
                compose_down(folder, engine_environ, capture_output=True, volumes=True)


BUILD_SPEC = """
project: e2e-build
stage: development
services:
  web:
    kind: flask
    source: flask_service
    port: {web_port}
    start: {web_start}
  whatsapp:
    kind: whatsapp
    source: node_service
    port: {wa_port}
    start: node src/server.js
    driver: sandbox
  gen:
    kind: generic
    source: gen
    start: sleep infinity
database: {{engine: sqlite}}
tenants: ["1"]
topology: {{kind: shared}}
targets: [compose]
"""


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        ("RUN echo oops >&2 && exit 3", "build of service gen failed at step [3/3] RUN echo oops >&2 && exit 3"),
        ("RUN sleep 600", "service gen at step [3/3] RUN sleep 600"),  # maybe beside other steps still running
    ],
    ids=["fails", "hangs"],
)
def test_a_build_that_fails_or_hangs_names_the_service_and_step(  # type: ignore[no-untyped-def]
    step: str, expected: str, tmp_path: Path, engine_environ, monkeypatch, capsys
) -> None:
    for name, value in engine_environ.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv(OVERRIDE_VAR, raising=False)  # the private engine's build network comes from scripts/engine
    root = tmp_path / "project"
    (root / "environments").mkdir(parents=True)
    for service in ("node_service", "flask_service"):
        (root / service).symlink_to(REPO / service)
    (root / "gen").mkdir()
    (root / "gen" / "Dockerfile").write_text(f"FROM debian:bookworm-slim\nRUN echo building\n{step}\n")
    base = _free_block(3)
    spec = root / "deploytool.yaml"
    spec.write_text(
        textwrap.dedent(BUILD_SPEC.format(web_port=base, wa_port=base + 1, web_start=json.dumps(WEB_START)))
    )
    (root / "environments" / "e2e.yaml").write_text("{}\n")
    out = root / "deploy" / "e2e"
    try:
        assert main(["--spec", str(spec), "render", "e2e"]) == 0
        capsys.readouterr()
        code = main(["--spec", str(spec), "up", "e2e", "--runner", "compose", "--build-timeout", "30"])
        assert code == 1
        err = capsys.readouterr().err
        assert expected in err, err
        assert engine.project_containers(engine_environ, project_name(out)) == []
    finally:
        if (out / "docker-compose.yml").is_file():
            compose_down(out, engine_environ, capture_output=True, volumes=True)
