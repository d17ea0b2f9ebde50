"""`validate` starts Compose before the spec is read, and uses it only when it was started as the spec needs."""

from __future__ import annotations

from deploytool.cli import main
from deploytool.targets import compose as compose_target
from deploytool.targets.compose import ComposeConfig
from tests.conftest import process_alive

CUSTOM_SECRETS = "database: {password_secret: DB_PASSWORD}\n"


def started_compose(monkeypatch) -> list[ComposeConfig]:
    """Every Compose `validate` starts, in order."""
    started: list[ComposeConfig] = []
    real_start = ComposeConfig.start.__func__  # type: ignore[attr-defined]

    def start(cls, secrets):
        config = real_start(cls, secrets)
        started.append(config)
        return config

    monkeypatch.setattr(compose_target.ComposeConfig, "start", classmethod(start))
    return started


def test_the_early_compose_checks_a_spec_with_the_default_secrets(make_project, monkeypatch, capsys):
    spec = make_project()
    started = started_compose(monkeypatch)
    assert main(["--spec", str(spec), "validate", "dev"]) == 0, capsys.readouterr()
    assert len(started) == 1  # the one started before the spec was read did the check
    assert started[0].process.returncode == 0


def test_a_spec_with_other_secrets_gets_a_compose_that_knows_them(make_project, monkeypatch, capsys):
    # The compose file interpolates ${DB_PASSWORD}: a Compose started with the default names would
    # report it missing, so the early one must not serve this spec.
    spec = make_project({"dev": CUSTOM_SECRETS})
    started = started_compose(monkeypatch)
    assert main(["--spec", str(spec), "validate", "dev"]) == 0, capsys.readouterr()
    early, own = started
    assert early.secrets != own.secrets and "DB_PASSWORD" in own.secrets
    assert not process_alive(early.process.pid)  # stopped, not left behind
    assert own.process.returncode == 0


def test_an_environment_without_compose_stops_the_early_compose(make_project, monkeypatch, capsys):
    spec = make_project({"dev": "targets: [local]\n"})
    started = started_compose(monkeypatch)
    assert main(["--spec", str(spec), "validate", "dev"]) == 0, capsys.readouterr()
    (early,) = started
    assert not process_alive(early.process.pid)


def test_a_bad_spec_stops_the_early_compose(make_project, monkeypatch, capsys):
    spec = make_project({"dev": "topology: {portz: {}}\n"})
    started = started_compose(monkeypatch)
    assert main(["--spec", str(spec), "validate", "dev"]) == 2
    (early,) = started
    assert not process_alive(early.process.pid)


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
