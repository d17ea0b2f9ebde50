"""`deploytool init`: a new project's spec that validates, from flags; never overwrites."""

from __future__ import annotations

import pytest

from deploytool.cli import main
from deploytool.spec import load_spec


def test_init_writes_a_spec_and_overlays_that_load(tmp_path, capsys):
    args = ["--project", "acme-chat", "--topology", "sharded", "--tenants", "acme,globex,initech"]
    args += ["--targets", "local,compose,railway", "--repo", "acme/chat"]
    assert main(["init", str(tmp_path), *args]) == 0
    assert "created" in capsys.readouterr().out
    for env in ("dev", "prod"):
        spec = load_spec(tmp_path / "deploytool.yaml", env).spec
        assert spec.project == "acme-chat" and spec.tenant_ids() == ["acme", "globex", "initech"]
    assert [t.value for t in load_spec(tmp_path / "deploytool.yaml", "dev").spec.targets] == ["local", "compose"]
    assert [t.value for t in load_spec(tmp_path / "deploytool.yaml", "prod").spec.targets] == ["compose", "railway"]
    # with the service folders in place, both environments validate clean
    for folder in ("flask_service", "node_service"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "Dockerfile").write_text("FROM scratch\n")
    spec = str(tmp_path / "deploytool.yaml")
    assert main(["--spec", spec, "render", "dev"]) == 0
    assert main(["--spec", spec, "render", "prod"]) == 0


def test_init_never_overwrites(tmp_path, capsys):
    (tmp_path / "deploytool.yaml").write_text("mine\n")
    assert main(["init", str(tmp_path), "--project", "a", "--tenants", "1", "--topology", "shared"]) == 2
    assert "already exist" in capsys.readouterr().err
    assert (tmp_path / "deploytool.yaml").read_text() == "mine\n"
    assert not (tmp_path / "environments").exists()


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--project", "Acme Chat", "--project"),
        ("--topology", "mesh", "--topology"),
        ("--tenants", "a,a", "--tenants"),
        ("--targets", "heroku", "--targets"),
        ("--web-port", "80", "--web-port"),
    ],
)
def test_init_refuses_bad_answers(tmp_path, capsys, flag, value, message):
    args = {"--project": "a", "--topology": "shared", "--tenants": "1", "--targets": "local"}
    args[flag] = value
    flat = [item for pair in args.items() for item in pair]
    assert main(["init", str(tmp_path), *flat]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "deploytool.yaml").exists()


@pytest.mark.parametrize("command", [["restart", "dev", "web"], ["ps", "dev"], ["logs", "dev"], ["down", "dev"]])
def test_day_two_commands_on_a_stopped_environment(make_project, capsys, command):
    spec = make_project()
    assert main(["--spec", str(spec), "render", "dev"]) == 0
    capsys.readouterr()
    code = main(["--spec", str(spec), *command])
    out, err = capsys.readouterr()
    if command[0] == "restart":
        assert code == 2 and "nothing is running; start it with `deploytool up dev`" in err
    elif command[0] == "ps":
        assert code == 0 and "stopped" in out and "whatsapp" in out
    else:
        assert code == 0 and "Traceback" not in err


def test_version(capsys):
    from deploytool import __version__

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"deploytool {__version__}"


INIT_ARGS = ["--project", "acme", "--topology", "shared", "--tenants", "1", "--targets", "local,compose"]


def test_the_web_start_of_a_new_spec_opens_no_gunicorn_control_socket(tmp_path):
    """gunicorn ≥ 25 opens a control socket under $HOME, which a container's user cannot create: every start
    then logs an `[ERROR]`. Read the way gunicorn itself reads its command line."""
    import shlex

    from gunicorn.config import Config

    assert main(["init", str(tmp_path), *INIT_ARGS]) == 0
    web = load_spec(tmp_path / "deploytool.yaml", "dev").spec.services["web"]
    argv = shlex.split(web.start.replace("$PORT", "8000"))
    assert argv[0] == "gunicorn"
    assert Config().parser().parse_args(argv[1:]).control_socket_disable is True


def test_a_new_projects_gitignore_keeps_the_embedded_database_out_of_git(tmp_path):
    import subprocess

    assert main(["init", str(tmp_path), *INIT_ARGS]) == 0
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "instance").mkdir()
    (tmp_path / "instance" / "flask_service.sqlite3").write_text("")
    (tmp_path / "instance" / "app.db-journal").write_text("")
    ignored = subprocess.run(
        ["git", "-C", str(tmp_path), "check-ignore", "instance/flask_service.sqlite3", "instance/app.db-journal"],
        capture_output=True,
        text=True,
    )
    assert ignored.stdout.split() == ["instance/flask_service.sqlite3", "instance/app.db-journal"]
