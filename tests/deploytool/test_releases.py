"""Releases (issue 30): the record each `up` writes, `deploytool releases ENV`, and its bounds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deploytool import releases
from deploytool.cli import main
from deploytool.errors import CheckFailed, UserError
from deploytool.run.base import ServiceStatus
from deploytool.run.runners import ProcfileRunner

SECRET = "release-secret-value-Qx81"


@pytest.fixture
def project(make_project, monkeypatch, tmp_path):
    """A project whose procfile `up` is replaced by `outcome` (healthy statuses, or an error raised)."""
    spec = make_project()
    outcome: dict[str, object] = {"error": None}

    def fake_up(self, out_dir, environ, deadline_s, on_event, force_recreate=False):
        if outcome["error"] is not None:
            raise outcome["error"]  # type: ignore[misc]
        return [ServiceStatus(name="web", state="healthy", url="http://127.0.0.1:5002", health_url=None)]

    monkeypatch.setattr(ProcfileRunner, "up", fake_up)
    monkeypatch.setenv("SECRET_KEY", SECRET)
    return spec, outcome, tmp_path / "deploy" / "dev"


def test_each_up_is_a_release_newest_first_with_its_status(project, capsys):
    spec, outcome, out = project
    assert main(["--spec", str(spec), "up", "dev"]) == 0
    assert "dev: release 1 (procfile)" in capsys.readouterr().out
    outcome["error"] = CheckFailed("web: /health answered 503 within 90 s")
    assert main(["--spec", str(spec), "up", "dev"]) == 1
    outcome["error"] = None
    assert main(["--spec", str(spec), "up", "dev"]) == 0
    capsys.readouterr()

    assert main(["--spec", str(spec), "releases", "dev", "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    got = [(r["number"], r["status"], r["target"]) for r in document["releases"]]
    assert got == [(3, "live", "procfile"), (2, "failed", "procfile"), (1, "superseded", "procfile")]
    failed = document["releases"][1]
    assert failed["note"] == "web: /health answered 503 within 90 s"
    first = document["releases"][2]
    assert len(first["artifacts"]["docker-compose.yml"]) == 64  # the manifest's sha256 of each artifact
    assert set(first["services"]) == {"web", "whatsapp"}
    assert "commit" not in first  # tmp_path is no git work tree: no commit, no dirty flag

    assert main(["--spec", str(spec), "releases", "dev"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:3] == ["RELEASE", "STATUS", "TARGET"]
    assert [line.split()[:2] for line in table[1:]] == [["3", "live"], ["2", "failed"], ["1", "superseded"]]
    text = (out / ".releases" / "releases.json").read_text()
    assert SECRET not in text


def test_keep_bounds_the_history_and_the_live_release_stays(project, capsys):
    spec, outcome, out = project
    assert main(["--spec", str(spec), "up", "dev"]) == 0
    outcome["error"] = CheckFailed("web failed")
    for _ in range(3):
        assert main(["--spec", str(spec), "up", "dev", "--keep", "2"]) == 1
    store = releases.read_store(out, "dev")
    assert [(r.number, r.status) for r in store.newest_first()] == [(4, "failed"), (3, "failed"), (1, "live")]


def test_the_history_is_deterministic_json_replaced_whole(tmp_path):
    def made(number: int) -> releases.Release:
        return releases.new_release(
            number,
            target="railway",
            status="live",
            spec_folder=tmp_path,
            artifacts={"b": "2", "a": "1"},
            services={"web": releases.ServiceRelease(deployment_id="d-1")},
            git=("abc", False),
        )

    releases.add_release(tmp_path, "prod", made)
    text = (tmp_path / ".releases" / "releases.json").read_text()
    again = releases.dump_store(releases.read_store(tmp_path, "prod"))
    assert text == again
    assert text.index('"a"') < text.index('"b"')
    assert list((tmp_path / ".releases").iterdir()) == [tmp_path / ".releases" / "releases.json"]  # no temp left


def test_a_damaged_history_is_a_user_error_naming_the_file_and_field(tmp_path, capsys):
    folder = tmp_path / ".releases"
    folder.mkdir()
    (folder / "releases.json").write_text('{"version": 1, "environment": "dev", "releases": [{"number": 0}]}')
    with pytest.raises(UserError, match=r"releases\.json: unreadable release history \(releases\.0\.number"):
        releases.read_store(tmp_path, "dev")
    assert main(["releases", "dev", "--out", str(tmp_path)]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_choose_rollback_takes_the_previous_live_or_the_named_release(tmp_path):
    def add(status: releases.Status) -> None:
        releases.add_release(
            tmp_path,
            "prod",
            lambda n: releases.new_release(
                n, target="compose", status=status, spec_folder=tmp_path, artifacts={}, services={}, git=(None, None)
            ),
        )

    add("live")
    add("live")
    current, back = releases.choose_rollback(releases.read_store(tmp_path, "prod"), "compose", None)
    assert current is not None and (current.number, back.number) == (2, 1)  # the one before the live one
    add("failed")
    store = releases.read_store(tmp_path, "prod")
    current, back = releases.choose_rollback(store, "compose", None)
    assert current is not None and (current.number, back.number) == (2, 2)  # after a failure: the live one
    with pytest.raises(UserError, match="release 3: it failed"):
        releases.choose_rollback(store, "compose", 3)
    with pytest.raises(UserError, match="release 9: not in the history"):
        releases.choose_rollback(store, "compose", 9)


def test_init_and_the_repository_ignore_the_history(tmp_path):
    from deploytool.init import GITIGNORE_LINES

    assert ".releases/" in GITIGNORE_LINES
    assert ".releases/" in (Path(__file__).resolve().parents[2] / ".gitignore").read_text().splitlines()


def test_up_says_which_whatsapp_services_restart_and_which_tenants_reconnect(project, capsys):
    spec, _, _ = project
    assert main(["--spec", str(spec), "up", "dev"]) == 0
    first = capsys.readouterr().out
    assert "restarts" not in first  # nothing ran before: nothing to compare
    assert main(["--spec", str(spec), "up", "dev"]) == 0
    assert "restarts" not in capsys.readouterr().out  # the same plan: nobody reconnects
    (spec.parent / "environments" / "dev.yaml").write_text("services: {whatsapp: {env: {GREETING: oi}}}\n")
    assert main(["--spec", str(spec), "up", "dev"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "restarts" in line]
    assert lines and all(line.startswith("dev: whatsapp") and "reconnect" in line for line in lines)
    assert any("tenant 1 reconnect" in line or "tenants 1," in line for line in lines)
    assert not any(line.startswith("dev: web") for line in lines)  # web restarts too, but holds no tenant


def test_an_up_refused_before_anything_started_is_no_release(project):
    spec, outcome, out = project
    outcome["error"] = UserError("port already in use by another process: service web: port 5002")
    assert main(["--spec", str(spec), "up", "dev"]) == 2
    assert releases.read_store(out, "dev").releases == ()


def test_prune_keeps_the_release_a_live_rollback_runs_on():
    """Its tags and its copy of the files are what the rollback's containers run: they must outlive --keep."""
    made = [
        releases.Release(number=n, created="2026-01-01T00:00:00Z", target="compose", status=s, rollback_of=r)
        for n, s, r in ((1, "superseded", None), (2, "superseded", None), (3, "live", 1))
    ]
    kept, dropped = releases.prune(releases.ReleaseStore(environment="dev", releases=tuple(made)), 1)
    assert [r.number for r in kept.releases] == [1, 3]
    assert [r.number for r in dropped] == [2]


def test_dropped_release_files_go_and_nothing_else(tmp_path: Path):
    from deploytool import compose_releases

    out = tmp_path / "out"
    (out / "env" / "compose").mkdir(parents=True)
    (out / "docker-compose.yml").write_text("services: {}\n")
    (out / "env" / "compose" / "web.env").write_text("A=1\n")
    (out / "deploytool-manifest.json").write_text("{}\n")
    (out / ".secrets.env").write_text("SECRET_KEY=s3cret\n")
    artifacts = {"docker-compose.yml": "x", "env/compose/web.env": "y", "env/local/web.env": "z", "Procfile": "p"}
    files = compose_releases.keep_files(out, 1, artifacts)
    assert files == (
        ".releases/r1/docker-compose.yml",
        ".releases/r1/env/compose/web.env",
        ".releases/r1/deploytool-manifest.json",
    )
    assert not list(out.joinpath(".releases").rglob("*secrets*"))
    (out / ".releases" / "r1" / "mine.txt").write_text("not deploytool's\n")
    release = releases.Release(number=1, created="x", target="compose", status="superseded", files=files)
    compose_releases.drop_files(out, [release])
    assert sorted(p.relative_to(out).as_posix() for p in (out / ".releases").rglob("*")) == [
        ".releases/r1",
        ".releases/r1/mine.txt",
    ]


def test_after_a_rollback_compose_commands_run_on_the_release_s_files(tmp_path: Path):
    from deploytool.run import compose

    out = tmp_path.resolve()
    (out / "docker-compose.yml").write_text("name: acme\nservices: {}\n")
    (out / ".releases" / "r1").mkdir(parents=True)
    (out / ".releases" / "r1" / "docker-compose.yml").write_text("name: acme\nservices: {}\n")
    (out / ".releases" / "r1.compose.yml").write_text("services: {}\n")
    compose._store_run_files(
        out, [out / ".releases" / "r1" / "docker-compose.yml", out / ".releases" / "r1.compose.yml"]
    )
    command = compose.compose_command(out, "docker", "ps", environ={"DEPLOYTOOL_COMPOSE_PROJECT": "acme-1"})
    files = [command[i + 1] for i, word in enumerate(command) if word == "-f"]
    assert files == [str(out / ".releases" / "r1" / "docker-compose.yml"), str(out / ".releases" / "r1.compose.yml")]
    assert command[command.index("--project-directory") + 1] == str(out)  # the same project, its paths as rendered
    (out / ".releases" / "r1.compose.yml").unlink()
    with pytest.raises(UserError, match=r"r1\.compose\.yml: gone"):
        compose.compose_command(out, "docker", "ps", environ={"DEPLOYTOOL_COMPOSE_PROJECT": "acme-1"})
    compose._store_run_files(out, None)  # the next `up` or `down`: the rendered file again
    command = compose.compose_command(out, "docker", "ps", environ={"DEPLOYTOOL_COMPOSE_PROJECT": "acme-1"})
    assert "--project-directory" not in command and str(out / "docker-compose.yml") in command


def test_a_compose_rollback_that_does_not_come_back_is_one_failed_release(tmp_path: Path, monkeypatch):
    """No engine: the images and the start are stood in; what is checked is the release the failure records."""
    from types import SimpleNamespace

    from deploytool import compose_releases, run

    out = tmp_path.resolve()
    kept = {"web": releases.ServiceRelease(image="acme-web", image_id="sha256:1", tag="acme-web:r1")}
    for _ in range(2):
        releases.record(
            out, "dev", target="compose", status="live", spec_folder=out, artifacts={}, services=kept, git=("c", False)
        )
    monkeypatch.setattr(compose_releases, "rollback_override", lambda o, r, e: o / ".releases" / "r1.compose.yml")
    monkeypatch.setattr(compose_releases, "read_manifest", lambda o: SimpleNamespace(artifacts={}, spec_artifacts={}))
    monkeypatch.setattr(run, "running_runner", lambda o: None)

    def compose_up(*args: object, **kwargs: object) -> None:
        raise CheckFailed("compose up: waited 5 s\nweb did not come back")

    monkeypatch.setattr(compose_releases, "compose_up", compose_up)
    said: list[str] = []
    with pytest.raises(CheckFailed, match="waited 5 s"):
        compose_releases.rollback_to(out, "dev", out, None, 5.0, 5, {}, said.append, said.append)
    made = releases.read_store(out, "dev").newest_first()[0]
    assert (made.number, made.status, made.rollback_of, made.note) == (3, "failed", 1, "web did not come back")
    assert made.files == ("docker-compose.yml", ".releases/r1.compose.yml") and made.services == kept
    assert said == [
        "dev: release 1's files: docker-compose.yml, .releases/r1.compose.yml (secrets from today's .secrets.env)"
    ]
    assert [r.status for r in releases.read_store(out, "dev").newest_first()] == ["failed", "live", "superseded"]
