"""The real consumers `validate` runs: what they see does not depend on the caller's folder or variables."""

from __future__ import annotations

from deploytool.cli import main
from deploytool.targets import compose as compose_target


def test_the_callers_dotenv_and_variables_do_not_change_the_verdict(make_project, monkeypatch, tmp_path, capsys):
    spec = make_project()
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    (folder / ".env").write_text("this is not = an env file\n")  # Compose fails reading it, when it does
    monkeypatch.chdir(folder)
    monkeypatch.setenv("OPS_API_KEY", "")  # set but empty: `${OPS_API_KEY:?...}` would fail with it
    assert main(["--spec", str(spec), "validate", "dev"]) == 0, capsys.readouterr()


def test_a_module_named_compose_does_not_hide_the_compose_binary(tmp_path, monkeypatch):
    (tmp_path / "compose.py").write_text("")  # benchmarks/compose.py once did, when run as a script
    monkeypatch.syspath_prepend(str(tmp_path))
    binary = compose_target.compose_binary()
    assert binary is not None and binary.name == "docker-compose"
