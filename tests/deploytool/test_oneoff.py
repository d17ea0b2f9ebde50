"""`deploytool run ENV SERVICE -- CMD...`: one command with exactly a service's environment, its exit code."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from deploytool.cli import main
from deploytool.output.secrets import read_secrets
from deploytool.run.oneoff import compose_arguments
from tests.conftest import REPO

REPORT = (
    "import json, os, sys; json.dump({'cwd': os.getcwd(), 'env': dict(os.environ), 'argv': sys.argv[1:]}, "
    "open(os.environ['REPORT_TO'] if 'REPORT_TO' in os.environ else sys.argv[1], 'w'))"
)


@pytest.fixture
def rendered(make_project, capsys):
    overlay = "database: {engine: sqlite}\ntopology: {kind: per-port}\nservices:\n  web:\n    env: {EXTRA_FLAG: 'on'}\n"
    spec = make_project({"dev": overlay})
    assert main(["--spec", str(spec), "render", "dev"]) == 0
    capsys.readouterr()
    return spec


def test_the_command_gets_the_services_environment_in_the_project_root(rendered, tmp_path, capsys, monkeypatch):
    report = tmp_path / "report.json"
    monkeypatch.setenv("WEBHOOK_SECRET", "from-the-shell")  # the process environment wins over .secrets.env
    monkeypatch.setenv("UNRELATED_TOKEN", "not-for-the-service")
    args = ["--spec", str(rendered), "run", "dev", "web", "--", sys.executable, "-c", REPORT, str(report), "--out", "x"]
    assert main(args) == 0
    out, err = capsys.readouterr()
    seen = json.loads(report.read_text())
    stored = read_secrets(rendered.parent / "deploy" / "dev")
    assert seen["cwd"] == str(rendered.parent)  # the project root, as the manifest says
    assert seen["argv"] == [str(report), "--out", "x"]  # everything after -- untouched
    env = seen["env"]
    assert env["PORT"] == "5002" and env["EXTRA_FLAG"] == "on" and "WHATSAPP_TENANT_URLS" in env
    assert env["SECRET_KEY"] == stored["SECRET_KEY"] and env["WEBHOOK_SECRET"] == "from-the-shell"
    assert "UNRELATED_TOKEN" not in env
    for value in stored.values():
        assert value not in out + err  # never printed


def test_a_whatsapp_service_gets_its_own_environment(rendered, tmp_path, capsys):
    report = tmp_path / "report.json"
    args = ["--spec", str(rendered), "run", "dev", "whatsapp-2", "--", sys.executable, "-c", REPORT, str(report)]
    assert main(args) == 0
    env = json.loads(report.read_text())["env"]
    assert env["PORT"] == "5003" and env["TENANT_ID"] == "2" and "SECRET_KEY" not in env


def test_the_exit_code_is_the_commands(rendered):
    environ = {**os.environ, "PYTHONPATH": str(REPO)}
    base = [sys.executable, "-m", "deploytool", "--spec", str(rendered), "run", "dev", "web", "--"]
    result = subprocess.run([*base, "sh", "-c", "echo hello; exit 7"], capture_output=True, text=True, env=environ)
    assert (result.returncode, result.stdout) == (7, "hello\n")
    result = subprocess.run([*base, "sh", "-c", "kill -TERM $$"], capture_output=True, text=True, env=environ)
    assert result.returncode == 128 + 15


def test_bad_service_or_command_exit_2(rendered, capsys):
    assert main(["--spec", str(rendered), "run", "dev", "nope", "--", "true"]) == 2
    assert "service 'nope': not in this environment (known: web, whatsapp-1, whatsapp-2, whatsapp-3)" in (
        capsys.readouterr().err
    )
    assert main(["--spec", str(rendered), "run", "dev", "web", "--", "no-such-command-here"]) == 2
    assert "no-such-command-here: command not found" in capsys.readouterr().err
    assert main(["--spec", str(rendered), "run", "dev", "web"]) == 2
    assert "Missing argument '-- COMMAND...'" in capsys.readouterr().err


def test_compose_runner_without_docker_says_so(rendered, capsys, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    assert main(["--spec", str(rendered), "run", "dev", "web", "--runner", "compose", "--", "true"]) == 2
    assert "the docker CLI is not installed" in capsys.readouterr().err


def test_compose_execs_into_a_running_service_or_runs_a_removed_one():
    argv = ["python", "-m", "flask_service", "create-user", "--tenant", "1"]
    assert compose_arguments("web", argv, running=True, tty=True) == ["exec", "web", *argv]
    assert compose_arguments("web", argv, running=False, tty=False) == ["run", "--rm", "-T", "web", *argv]


def test_the_demo_creates_its_user_with_deploytool_run_and_prints_the_real_address():
    demo = (REPO / "scripts" / "demo").read_text()
    assert "deploytool run" in demo or "$dt run dev web -- python -m flask_service create-user" in demo
    assert "eval" not in demo  # no manifest evaluation into the shell
    assert "127.0.0.1:5002" not in demo  # the address comes from the manifest
