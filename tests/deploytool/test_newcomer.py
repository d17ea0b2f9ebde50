"""A newcomer's first day: the secrets file stays out of git, a team's own secret reaches the service that
lists it (and only that one), and the Redis add-on and SQLite say what they need where they run."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from deploytool.cli import main

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
    assert ensure_gitignore(tmp_path) is False
    assert (tmp_path / ".gitignore").read_text() == text  # idempotent
    assert "created   " + str(tmp_path / ".gitignore") not in capsys.readouterr().out  # extended, not created


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
