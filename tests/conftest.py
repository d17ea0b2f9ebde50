"""Fixtures shared by every test folder."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


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

    def make(overlays: dict[str, str] | None = None, base: str = BASE_SPEC, sources: bool = True) -> Path:
        (tmp_path / "environments").mkdir(exist_ok=True)
        if sources:  # the service folders the spec names, each with the Dockerfile builders look for
            for folder, image in (("flask_service", "python:3.11-slim"), ("node_service", "node:22-bookworm-slim")):
                (tmp_path / folder).mkdir(exist_ok=True)
                (tmp_path / folder / "Dockerfile").write_text(f"FROM {image}\n")
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
