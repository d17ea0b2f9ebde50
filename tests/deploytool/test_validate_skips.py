"""`validate` says which consumer checks it could not run, and CI never passes on a skipped one (issue 29, 7)."""

from __future__ import annotations

import importlib.util

import pytest

from deploytool.cli import main

SPEC = {
    "dev": "targets: [compose]\n",
    "staging": "targets: [railway]\nrailway: {repo: acme/chat}\n",
}


@pytest.fixture
def no_consumers(monkeypatch):
    """Neither Compose v2 nor railway-sdk installed, as after a plain `pip install deploytool`."""
    import deploytool.targets.compose as compose_target

    monkeypatch.setattr(compose_target, "compose_binary", lambda: None)
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "railway_sdk" else real_find_spec(name, *a)
    )


@pytest.mark.parametrize(
    ("env", "file", "consumer"),
    [("dev", "docker-compose.yml", "docker compose config"), ("staging", ".railway/railway.py", "railway-sdk")],
)
def test_a_skipped_consumer_is_named_with_its_install_command(
    make_project, no_consumers, monkeypatch, capsys, env, file, consumer
):
    monkeypatch.delenv("CI", raising=False)
    spec = make_project(SPEC)
    assert main(["--spec", str(spec), "validate", env]) == 0
    out, err = capsys.readouterr()
    assert f"warning[CHECK_SKIPPED]: {file}: not checked by {consumer}" in err
    assert "pip install 'deploytool[consumers]'" in err
    assert "1 consumer check(s) skipped" in out


@pytest.mark.parametrize("env", ["dev", "staging"])
def test_under_ci_a_skipped_consumer_fails_validate(make_project, no_consumers, monkeypatch, capsys, env):
    monkeypatch.setenv("CI", "true")
    spec = make_project(SPEC)
    assert main(["--spec", str(spec), "validate", env]) == 1
    out, err = capsys.readouterr()
    assert "error[CHECK_SKIPPED]" in out + err
    assert "check(s) failed" in err


def test_with_every_consumer_installed_nothing_is_skipped(make_project, monkeypatch, capsys):
    monkeypatch.setenv("CI", "true")
    spec = make_project(SPEC)
    for env in ("dev", "staging"):
        assert main(["--spec", str(spec), "validate", env]) == 0, capsys.readouterr().err
        out, err = capsys.readouterr()
        assert "CHECK_SKIPPED" not in err and "skipped" not in out
