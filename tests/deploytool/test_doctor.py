"""`deploytool doctor`: one line per prerequisite with its fix; exit 0 when the default path is ready."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from deploytool import doctor
from deploytool.cli import main
from tests.conftest import REPO


def fake(folder, name, version):
    path = folder / name
    path.write_text(f"#!/bin/sh\necho '{version}'\n")
    path.chmod(0o755)


@pytest.fixture
def bin_dir(tmp_path, monkeypatch):
    folder = tmp_path / "bin"
    folder.mkdir()
    monkeypatch.setenv("PATH", str(folder))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name in ("RAILWAY_TOKEN", "RAILWAY_PROJECT_ID", "RAILWAY_ENVIRONMENT_ID", "DOCKER_HOST"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(doctor, "base_path", lambda environ: environ["PATH"])  # not this venv's own node
    monkeypatch.chdir(tmp_path)
    return folder


def test_ready_with_node_22_and_says_what_the_other_commands_miss(bin_dir, capsys):
    fake(bin_dir, "node", "v22.4.1")
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "ok       python" in out and "v22.4.1" in out
    assert "missing  docker           the docker CLI is not on PATH; fix: install Docker" in out
    assert "missing  railway          the Railway CLI is not on PATH (deploytool's Railway evaluator models " in out
    assert "railwayapp/cli src/iac/eval.rs" in out and "fix: install it with `npm install -g" in out
    assert out.rstrip().endswith(
        "doctor: validate, render, up, probe (procfile runner): ready; --runner compose: missing docker; "
        "railway plan/apply: missing railway"
    )


def test_an_old_node_fails_the_default_path_with_its_fix(bin_dir, capsys):
    fake(bin_dir, "node", "v18.19.0")
    assert main(["doctor"]) == 1
    captured = capsys.readouterr()
    assert "missing  node             v18.19.0" in captured.out
    assert "is older than 22; fix: scripts/bootstrap" in captured.out
    assert "validate, render, up, probe (procfile runner): missing node" in captured.err


def test_no_node_and_missing_packages_are_named(bin_dir, make_project, capsys):
    spec = make_project()
    (spec.parent / "node_service" / "package.json").write_text("{}")
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "missing  node             not on PATH" in out
    assert "missing  node_service packages" in out and "fix: npm ci --prefix" in out


def test_railway_cli_and_its_link_without_the_network(bin_dir, tmp_path, capsys):
    fake(bin_dir, "node", "v22.0.0")
    fake(bin_dir, "railway", "railway 5.43.1")
    assert main(["doctor"]) == 0
    assert "missing  railway link     no linked project for this folder; fix: railway login && railway link" in (
        capsys.readouterr().out
    )
    config = tmp_path / "home" / ".railway" / "config.json"
    config.parent.mkdir(parents=True)
    link = {"projectPath": str(tmp_path), "project": "p", "environment": "e", "environmentName": "staging"}
    config.write_text(json.dumps({"projects": {str(tmp_path): link}}))
    (tmp_path / "sub").mkdir()
    os.chdir(tmp_path / "sub")
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "ok       railway          railway 5.43.1" in out
    assert "ok       railway link     environment 'staging' (railway link, ~/.railway/config.json)" in out


def test_doctor_is_a_real_command():
    environ = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-m", "deploytool", "doctor"], capture_output=True, text=True, cwd=REPO, env=environ
    )
    assert result.returncode in (0, 1) and "ok       python" in result.stdout, result.stderr
    assert "doctor: validate, render, up, probe (procfile runner): " in result.stdout + result.stderr
