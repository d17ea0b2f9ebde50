"""End-to-end fixtures: a throwaway project whose services are this repository's real node_service and
flask_service, on free loopback ports, with a fresh database per test."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import textwrap
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from deploytool.cli import main
from deploytool.output import read_secrets
from tests.conftest import REPO, process_alive

E2E_SPEC = """
project: e2e
stage: development
services:
  web:
    kind: flask
    source: flask_service
    port: {web_port}
    local_start: python -m flask_service migrate && exec python -m flask_service serve
  whatsapp:
    kind: whatsapp
    source: node_service
    port: {wa_port}
    local_start: exec node node_service/src/server.js
    driver: sandbox
    volume: false
database: {{engine: sqlite}}
tenants: {tenants}
topology: {topology}
targets: [local]
"""


def _free_block(size: int) -> int:
    """A base port with `size` consecutive free ports (the runner refuses taken ports anyway)."""
    for _ in range(200):
        base = random.randint(20000, 45000)
        sockets = []
        try:
            for port in range(base, base + size):
                s = socket.socket()
                s.bind(("127.0.0.1", port))
                sockets.append(s)
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError("no free port block")


@dataclass
class Deployment:
    spec: Path
    env: str
    out: Path
    database_url: str

    def cli(self, *args: str) -> int:
        return main(["--spec", str(self.spec), *args])

    def manifest(self) -> dict:  # type: ignore[type-arg]
        return json.loads((self.out / "deploytool-manifest.json").read_text())

    def secrets(self) -> dict[str, str]:
        return read_secrets(self.out)

    def state(self) -> dict:  # type: ignore[type-arg]
        return json.loads((self.out / ".run" / "state.json").read_text())

    def service_url(self, name: str) -> str:
        return next(s["local_url"] for s in self.manifest()["services"] if s["name"] == name)

    def kill(self, name: str) -> None:
        entry = next(p for p in self.state()["processes"] if p["name"] == name)
        os.killpg(entry["pgid"], signal.SIGKILL)
        deadline = time.monotonic() + 10
        while process_alive(entry["pid"]) and time.monotonic() < deadline:
            time.sleep(0.05)

    def pids(self) -> list[int]:
        return [p["pid"] for p in self.state()["processes"]]


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    """A fresh PostgreSQL database per test when TEST_DATABASE_URL is set (CI), else a SQLite file."""
    admin_url = os.environ.get("TEST_DATABASE_URL")
    if not admin_url:
        yield f"sqlite:///{tmp_path / 'e2e.sqlite3'}"
        return
    name = f"e2e_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(
        admin_url.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def deploy(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator:  # type: ignore[type-arg]
    if shutil.which("node") is None or not (REPO / "node_service" / "node_modules").is_dir():
        pytest.fail("node_service is not installed: run scripts/bootstrap --dev")
    created: list[Deployment] = []

    def make(topology: str, tenants: list[str]) -> Deployment:
        root = tmp_path / "project"
        (root / "environments").mkdir(parents=True)
        for service in ("node_service", "flask_service"):
            (root / service).symlink_to(REPO / service)
        base = _free_block(12)
        (root / "deploytool.yaml").write_text(
            textwrap.dedent(E2E_SPEC).format(
                web_port=base, wa_port=base + 1, tenants=json.dumps(tenants), topology=topology
            )
        )
        (root / "environments" / "e2e.yaml").write_text("{}\n")
        monkeypatch.setenv("DATABASE_URL", database_url)  # passed through to flask by `up`
        deployment = Deployment(root / "deploytool.yaml", "e2e", root / "deploy" / "e2e", database_url)
        created.append(deployment)
        return deployment

    yield make
    for deployment in created:
        main(["--spec", str(deployment.spec), "down", deployment.env])
