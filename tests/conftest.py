"""Fixtures shared by every test folder."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_SCHEMAS = REPO.parent / "shared" / "schemas"


def shared_schema(name: str) -> Path:
    path = SHARED_SCHEMAS / name
    if not path.is_file():
        pytest.skip(f"{path} is not present (shared/ must sit beside the repository)")
    return path


BASE_SPEC = """
project: acme
services:
  web:
    kind: flask
    source: flask_service
    port: 5002
    start: gunicorn --bind "[::]:$PORT" flask_service.wsgi:app
    local_start: python -m flask_service serve
    pre_deploy: python -m flask_service migrate
  whatsapp:
    kind: whatsapp
    source: node_service
    port: 5001
    start: node src/server.js
    local_start: exec node node_service/src/server.js
database:
  engine: postgres
tenants: ["1", "2", "3"]
targets: [local, compose]
"""


@pytest.fixture
def make_project(tmp_path: Path) -> Callable[..., Path]:
    """Write deploytool.yaml + overlays (inline YAML) into tmp_path; returns the spec path."""

    def make(overlays: dict[str, str] | None = None, base: str = BASE_SPEC) -> Path:
        (tmp_path / "environments").mkdir(exist_ok=True)
        spec = tmp_path / "deploytool.yaml"
        spec.write_text(textwrap.dedent(base))
        for name, text in (overlays or {"dev": "{}\n"}).items():
            (tmp_path / "environments" / f"{name}.yaml").write_text(textwrap.dedent(text))
        return spec

    return make


def process_alive(pid: int) -> bool:
    """Read from /proc, independently of deploytool.run: a zombie (exited, not reaped) counts as gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return text[text.rindex(")") + 2] not in "ZX"
