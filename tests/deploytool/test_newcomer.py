"""A newcomer's first day: the secrets file stays out of git, a team's own secret reaches the service that
lists it (and only that one), and the Redis add-on and SQLite say what they need where they run."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from deploytool import pipeline
from deploytool.cli import main
from deploytool.errors import UserError
from deploytool.plan.model import SecretRef
from deploytool.run.environment import process_env
from deploytool.targets.railway import RAILWAY_FILE, evaluate_like_cli

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


@pytest.fixture
def plain_git(monkeypatch):
    """git as a new machine has it: no global or system excludes deciding what is ignored."""
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", "/dev/null")
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        monkeypatch.delenv(name, raising=False)


def git(folder, *args):
    return subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True, check=True).stdout


def artifact(rendered, name):
    return next(a for a in rendered.artifacts if a.path.endswith(name))


# --- item 2: the secrets file is git-ignored in a new project, and render only says so when it is -----------


@needs_git
def test_a_new_project_never_stages_its_secrets_file(tmp_path, capsys, plain_git):
    args = ["--project", "acme", "--topology", "shared", "--tenants", "1", "--targets", "local,compose"]
    assert main(["init", str(tmp_path), *args]) == 0
    assert ".gitignore" in capsys.readouterr().out
    for folder in ("flask_service", "node_service"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "Dockerfile").write_text("FROM scratch\n")
    git(tmp_path, "init", "-q")
    assert main(["--spec", str(tmp_path / "deploytool.yaml"), "render", "dev"]) == 0
    out, err = capsys.readouterr()
    assert "(git-ignored, 0600)" in out and "warning" not in err
    (tmp_path / "deploy" / "dev" / ".run").mkdir()
    (tmp_path / "deploy" / "dev" / ".run" / "state.json").write_text("{}")
    (tmp_path / "deploy" / "dev" / "Procfile.deploytool-tmp").write_text("interrupted")
    git(tmp_path, "add", "-A")
    staged = git(tmp_path, "diff", "--cached", "--name-only").split()
    assert "deploy/dev/.secrets.env" not in staged and "deploy/dev/Procfile" in staged
    assert not [p for p in staged if ".run/" in p or p.endswith(".deploytool-tmp")]


def test_init_extends_a_gitignore_once_and_keeps_every_line(tmp_path, capsys):
    from deploytool.init import GITIGNORE_LINES, ensure_gitignore  # here: each test shows its own failure on old code

    mine = "node_modules/\n# keep this comment\n.secrets.env\n*.log"  # no final newline
    (tmp_path / ".gitignore").write_text(mine)
    args = ["--project", "acme", "--topology", "shared", "--tenants", "1", "--targets", "local"]
    assert main(["init", str(tmp_path), *args]) == 0
    text = (tmp_path / ".gitignore").read_text()
    assert text.startswith(mine + "\n")
    lines = text.splitlines()
    for line in GITIGNORE_LINES:
        assert lines.count(line) == 1, line  # .secrets.env was there already: not added twice
    assert ensure_gitignore(tmp_path) == ""
    assert (tmp_path / ".gitignore").read_text() == text  # idempotent
    out = capsys.readouterr().out
    assert "created   " + str(tmp_path / ".gitignore") not in out  # extended, not created, and it says so
    assert "extended  " + str(tmp_path / ".gitignore") in out


@needs_git
def test_render_warns_when_git_would_commit_the_secrets_file(make_project, capsys, plain_git):
    spec = make_project()
    git(spec.parent, "init", "-q")  # a work tree without a .gitignore
    assert main(["--spec", str(spec), "render", "dev"]) == 0
    out, err = capsys.readouterr()
    assert "git-ignored" not in out and "(0600)" in out
    warnings = [line for line in err.splitlines() if "not git-ignored" in line]
    assert len(warnings) == 1 and "deploy/dev/.secrets.env" in warnings[0] and ".gitignore" in warnings[0]


def test_render_outside_a_git_work_tree_claims_nothing(make_project, capsys, monkeypatch):
    spec = make_project()
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(spec.parent.parent))  # never the folder above tmp_path
    assert main(["--spec", str(spec), "render", "dev"]) == 0
    out, err = capsys.readouterr()
    assert "(0600)" in out and "git-ignored" not in out + err


# --- item 3: a team's own secret, given to one service --------------------------------------------------------

OWN_SECRET = """
services:
  web:
    secrets: [STRIPE_API_KEY]
  worker:
    kind: worker
    source: flask_service
    start: python -m flask_service worker
    local_start: exec python -c "import time; time.sleep(3600)"
secrets: [OPS_API_KEY, SECRET_KEY, WEBHOOK_SECRET, WHATSAPP_API_KEY, STRIPE_API_KEY]
"""


def test_a_service_secret_reaches_that_service_in_every_target(make_project):
    spec = make_project({"dev": OWN_SECRET + "targets: [local, compose, railway]\nrailway: {repo: acme/chat}\n"})
    rendered = pipeline.render_environment(spec, "dev")
    assert rendered.plan.service("web").env_dict()["STRIPE_API_KEY"] == SecretRef("STRIPE_API_KEY")
    for other in ("whatsapp", "worker"):  # a worker gets the web app's generated env, not web's own secrets
        assert "STRIPE_API_KEY" not in rendered.plan.service(other).env_dict()
    compose = artifact(rendered, "docker-compose.yml").document["services"]
    assert compose["web"]["environment"]["STRIPE_API_KEY"].startswith("${STRIPE_API_KEY:?")
    assert ".secrets.env" in compose["web"]["environment"]["STRIPE_API_KEY"]
    assert "STRIPE_API_KEY" not in compose["worker"]["environment"]
    graph = evaluate_like_cli(artifact(rendered, RAILWAY_FILE).content)
    variables = {r["address"]: r.get("variables") or {} for r in graph["resources"]}
    assert variables["service.web"]["STRIPE_API_KEY"]["type"] == "sharedReference"
    assert "STRIPE_API_KEY" not in variables["service.worker"]
    manifest = rendered.manifest
    assert "STRIPE_API_KEY" in manifest.service("web").secrets
    assert "STRIPE_API_KEY" not in manifest.service("worker").secrets
    errors = pipeline.errors(pipeline.findings_of(rendered))
    assert not errors, errors


def test_render_generates_no_value_for_a_teams_own_secret(make_project, capsys):
    spec = make_project({"dev": OWN_SECRET})
    assert main(["--spec", str(spec), "render", "dev"]) == 0
    out = spec.parent / "deploy" / "dev"
    secrets_file = (out / ".secrets.env").read_text()
    assert "STRIPE_API_KEY" not in secrets_file and "OPS_API_KEY=" in secrets_file
    example = (out / ".env.example").read_text()
    assert "\nSTRIPE_API_KEY=\n" in example and "\nOPS_API_KEY=change-me\n" in example
    assert "STRIPE_API_KEY" not in capsys.readouterr().out


def test_up_names_a_missing_own_secret_and_where_to_set_it(make_project):
    spec = make_project({"dev": OWN_SECRET})
    rendered = pipeline.render_environment(spec, "dev")
    pipeline.write(rendered)
    web = rendered.manifest.service("web")
    with pytest.raises(UserError) as raised:
        process_env(web, rendered.ctx.out, {})
    message = str(raised.value)
    assert "STRIPE_API_KEY" in message and str(rendered.ctx.out / ".secrets.env") in message
    assert "OPS_API_KEY" not in message  # render generated that one
    env = process_env(web, rendered.ctx.out, {"STRIPE_API_KEY": "sk_test_1"}).values
    assert env["STRIPE_API_KEY"] == "sk_test_1"
    (rendered.ctx.out / ".secrets.env").write_text(
        (rendered.ctx.out / ".secrets.env").read_text() + "STRIPE_API_KEY=f\n"
    )
    assert process_env(web, rendered.ctx.out, {}).values["STRIPE_API_KEY"] == "f"
    worker = process_env(rendered.manifest.service("worker"), rendered.ctx.out, {"STRIPE_API_KEY": "x"}).values
    assert "STRIPE_API_KEY" not in worker


@pytest.mark.parametrize(
    ("overlay", "expected"),
    [
        (
            "services:\n  web:\n    secrets: [STRIPE_API_KEY]\n",
            "environments/dev.yaml:3: services.web.secrets.0: secret STRIPE_API_KEY is not in the top-level `secrets`",
        ),
        ("services:\n  web:\n    secrets: [stripe]\n", "environments/dev.yaml:3: services.web.secrets.0: String"),
        (
            "services:\n  web:\n    secrets: [OPS_API_KEY, OPS_API_KEY]\n",
            "environments/dev.yaml:3: services.web.secrets: items must be unique",
        ),
    ],
)
def test_a_bad_service_secret_is_a_spec_error_with_its_place(make_project, capsys, overlay, expected):
    spec = make_project({"dev": overlay})
    assert main(["--spec", str(spec), "validate", "dev"]) == 2
    assert expected in capsys.readouterr().err


def test_a_secret_under_env_is_told_about_service_secrets(make_project, capsys):
    spec = make_project({"dev": "services:\n  web:\n    env: {STRIPE_API_KEY: sk_live_1}\n"})
    assert main(["--spec", str(spec), "validate", "dev"]) == 1
    err = "".join(capsys.readouterr())
    assert "SECRET_LITERAL" in err and "services.web.secrets" in err


def test_a_declared_secret_no_service_gets_is_a_warning(make_project, capsys):
    spec = make_project({"dev": "secrets: [OPS_API_KEY, SECRET_KEY, WEBHOOK_SECRET, WHATSAPP_API_KEY, STRIPE]\n"})
    assert main(["--spec", str(spec), "validate", "dev"]) == 0
    err = capsys.readouterr().err
    assert "warning[SECRET_UNUSED]" in err and "STRIPE" in err and "services.<name>.secrets" in err


def test_show_lists_which_service_gets_which_secret(make_project, capsys):
    import yaml

    spec = make_project({"dev": OWN_SECRET})
    assert main(["--spec", str(spec), "show", "dev"]) == 0
    shown = yaml.safe_load(capsys.readouterr().out)
    assert shown["secrets"]["STRIPE_API_KEY"] == ["web"]
    assert shown["secrets"]["WHATSAPP_API_KEY"] == ["web", "whatsapp", "worker"]
    assert shown["secrets"]["POSTGRES_PASSWORD"] == ["postgres"]
    assert shown["your_secrets"] == ["STRIPE_API_KEY"]


# --- item 9: Redis locally, SQLite beside a worker in containers -----------------------------------------------

REDIS_LOCAL = "addons: [redis]\ntargets: [local]\n"


def test_local_redis_warns_only_where_it_applies_and_up_refuses_without_redis_url(make_project, capsys):
    spec = make_project({"dev": REDIS_LOCAL})
    for command in (["validate", "dev"], ["render", "dev"], ["show", "dev"]):  # none of them runs a process
        assert main(["--spec", str(spec), *command]) == 0
        assert "REDIS" not in capsys.readouterr().err
    rendered = pipeline.render_environment(spec, "dev")
    pipeline.write(rendered)
    web = rendered.manifest.service("web")
    with pytest.raises(UserError, match="web needs REDIS_URL"):
        process_env(web, rendered.ctx.out, {})
    env = process_env(web, rendered.ctx.out, {"REDIS_URL": "redis://127.0.0.1:6379/0"}).values
    assert env["REDIS_URL"] == "redis://127.0.0.1:6379/0"


WORKER_SQLITE = """
services:
  worker:
    kind: worker
    source: flask_service
    start: python -m flask_service worker
    local_start: exec python -m flask_service worker
database:
  engine: sqlite
"""


def test_sqlite_with_a_worker_under_compose_is_a_finding(make_project, capsys):
    spec = make_project(
        {"dev": WORKER_SQLITE + "targets: [local, compose]\n", "here": WORKER_SQLITE + "targets: [local]\n"}
    )
    assert main(["--spec", str(spec), "validate", "dev"]) == 1
    err = "".join(capsys.readouterr())
    assert "SQLITE_NOT_SHARED" in err and "environments/dev.yaml:4: services.worker: a worker" in err
    assert main(["--spec", str(spec), "validate", "here"]) == 0  # processes on one machine share the file
    assert "SQLITE_NOT_SHARED" not in "".join(capsys.readouterr())
