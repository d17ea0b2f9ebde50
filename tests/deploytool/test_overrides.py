"""A newcomer's first day: per-run overrides (a local overlay, `--set`), the spec found from a subfolder,
a Railway CLI answer that is not what we read, and the README's CLI block against the real command line."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import typer
import yaml

from deploytool.cli import app, main
from deploytool.errors import UserError
from deploytool.railway_cli import linked_environment
from tests.conftest import REPO


def run(args, capsys):
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def web_port(show_output: str) -> int:
    return int(yaml.safe_load(show_output)["services"]["web"]["port"])


# --- item 6: environments/<env>.local.yaml and --set ---------------------------------------------------


def test_a_local_overlay_is_merged_last_and_said(make_project, capsys):
    spec = make_project({"dev": "services:\n  web:\n    port: 5102\n"})
    (spec.parent / "environments" / "dev.local.yaml").write_text("services:\n  web:\n    port: 5202\n")
    code, out, err = run(["--spec", str(spec), "show", "dev"], capsys)
    assert code == 0, err
    assert web_port(out) == 5202
    assert "dev: local overrides applied: " in err and "environments/dev.local.yaml" in err


def test_an_error_in_the_local_overlay_names_its_file_and_line(make_project, capsys, monkeypatch):
    monkeypatch.delenv("CI", raising=False)  # under CI=true validate reads the committed spec alone
    spec = make_project({"dev": "{}\n"})
    (spec.parent / "environments" / "dev.local.yaml").write_text("# mine\nservices:\n  web:\n    port: 99999\n")
    code, _, err = run(["--spec", str(spec), "validate", "dev"], capsys)
    assert code == 2
    assert "environments/dev.local.yaml:4: services.web.port: Input should be less than or equal to 65535" in err


def test_local_overlays_are_not_environments(make_project, capsys):
    spec = make_project({"dev": "{}\n"})
    (spec.parent / "environments" / "dev.local.yaml").write_text("{}\n")
    code, _, err = run(["--spec", str(spec), "show", "nope"], capsys)
    assert code == 2 and "(known: dev)" in err


@pytest.mark.parametrize("command", ["validate", "render", "show", "up", "probe"])
def test_set_overrides_one_field_with_a_yaml_value(make_project, capsys, command):
    spec = make_project({"dev": "{}\n"})
    # a quoted port stays a string: the spec is strict, and the error names the --set argument
    code, _, err = run(["--spec", str(spec), command, "dev", "--set", "services.web.port='5202'"], capsys)
    assert code == 2
    assert "error: --set services.web.port: services.web.port: Input should be a valid integer" in err
    assert "5202" not in err.split("Input should")[0]  # the argument is named by its key, not its value


def test_set_applies_in_order_after_the_local_overlay(make_project, capsys):
    spec = make_project({"dev": "{}\n"})
    (spec.parent / "environments" / "dev.local.yaml").write_text("services:\n  web:\n    port: 5202\n")
    args = ["--spec", str(spec), "show", "dev", "--set", "services.web.port=5302"]
    code, out, err = run([*args, "--set", "tenants=[a, b]", "--set", "services.web.env={EXTRA: x}"], capsys)
    assert code == 0, err
    assert web_port(out) == 5302
    assert "environments/dev.local.yaml, --set services.web.port, --set tenants, --set services.web.env" in err
    assert sorted(yaml.safe_load(out)["tenants"]) == ["a", "b"]


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        ("services.web.port", "--set services.web.port: expected PATH=VALUE"),
        ("=5", "--set : expected PATH=VALUE"),
        ("services..port=5", "--set services..port: expected PATH=VALUE"),
        ("services.web.port=[", "--set services.web.port: invalid YAML value"),
        ("services.web.portz=5", "--set services.web.portz: services.web.portz: unknown key 'portz'"),
    ],
)
def test_a_bad_set_names_the_argument(make_project, capsys, argument, message):
    spec = make_project({"dev": "{}\n"})
    code, _, err = run(["--spec", str(spec), "validate", "dev", "--set", argument], capsys)
    assert code == 2 and message in err, err


def test_set_never_echoes_a_value_that_may_be_a_secret(make_project, capsys):
    spec = make_project({"dev": "{}\n"})
    code, _, err = run(["--spec", str(spec), "show", "dev", "--set", "services.web.env.X=[hunter2]"], capsys)
    assert code == 2 and "--set services.web.env.X" in err and "hunter2" not in err


def test_local_overrides_never_change_a_committed_file(make_project, capsys):
    spec = make_project({"dev": "{}\n"})
    assert run(["--spec", str(spec), "render", "dev"], capsys)[0] == 0
    committed = spec.parent / "deploy" / "dev"
    before = {p: p.read_bytes() for p in committed.rglob("*") if p.is_file()}
    (spec.parent / "environments" / "dev.local.yaml").write_text("services:\n  web:\n    port: 5202\n")
    code, _, err = run(["--spec", str(spec), "render", "dev"], capsys)
    assert code == 0 and "files in deploy/dev.local/" in err
    code, _, err = run(["--spec", str(spec), "render", "dev", "--set", "services.web.port=5303"], capsys)
    assert code == 0
    assert {p: p.read_bytes() for p in committed.rglob("*") if p.is_file()} == before
    local = spec.parent / "deploy" / "dev.local" / "deploytool-manifest.json"
    assert '"local_url": "http://127.0.0.1:5303"' in local.read_text()
    # --check compares the committed spec with the committed files: the overlay does not make drift
    code, out, err = run(["--spec", str(spec), "render", "dev", "--check"], capsys)
    assert code == 0, out + err
    # the run side reads the local render while the overlay exists, the committed one after
    from deploytool import pipeline

    assert pipeline.default_out(spec, "dev") == spec.parent / "deploy" / "dev.local"
    (spec.parent / "environments" / "dev.local.yaml").unlink()
    assert pipeline.default_out(spec, "dev") == committed


def test_validate_under_ci_reads_the_committed_spec_alone(make_project, capsys, monkeypatch):
    monkeypatch.delenv("CI", raising=False)  # CI itself runs this suite with CI=true
    spec = make_project({"dev": "{}\n"})
    (spec.parent / "environments" / "dev.local.yaml").write_text("services:\n  web:\n    port: 70000\n")
    assert run(["--spec", str(spec), "validate", "dev"], capsys)[0] == 2  # here: the overlay's error shows
    monkeypatch.setenv("CI", "true")
    code, out, err = run(["--spec", str(spec), "validate", "dev"], capsys)
    assert code == 0, out + err
    assert "local overrides applied" not in err


def test_local_overlays_are_git_ignored():
    result = subprocess.run(
        ["git", "check-ignore", "-q", "--no-index", "environments/dev.local.yaml"], cwd=REPO, check=False
    )
    assert result.returncode == 0, "environments/*.local.yaml must be in .gitignore"


# --- item 11: the spec from a subfolder ------------------------------------------------------------------


def test_the_spec_is_found_in_a_folder_above(make_project, monkeypatch, capsys):
    spec = make_project({"dev": "{}\n"})
    below = spec.parent / "flask_service" / "deeper"
    below.mkdir(parents=True)
    monkeypatch.chdir(below)
    code, out, err = run(["show", "dev"], capsys)
    assert code == 0 and web_port(out) == 5002, err
    assert f"spec: {spec.resolve()} (found above the current folder)" in err
    monkeypatch.chdir(spec.parent)
    code, _, err = run(["show", "dev"], capsys)
    assert code == 0 and "spec:" not in err  # here: nothing to say


def test_without_a_spec_anywhere_above_the_error_says_where_it_looked(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(["validate", "dev"], capsys)
    assert code == 2 and "spec file not found here" in err and "or in any folder above (pass --spec PATH)" in err


def test_a_subfolder_process_uses_the_repository_spec():
    environ = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-m", "deploytool", "ps", "dev"],
        cwd=REPO / "flask_service",
        env=environ,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert f"spec: {REPO / 'deploytool.yaml'}" in result.stderr
    assert result.stdout.startswith("SERVICE")


# --- item 10: what `railway environment list --json` must print --------------------------------------------


@pytest.mark.parametrize("printed", ["[]", "Not JSON at all", '{"data": {"environments": []}}'])
def test_an_unreadable_environment_list_names_the_expected_shape_and_version(tmp_path, printed):
    cli = tmp_path / "railway"
    cli.write_text(f"#!/bin/sh\ncat <<'EOF'\n{printed}\nEOF\n")
    cli.chmod(0o755)
    with pytest.raises(UserError) as caught:
        linked_environment(str(cli), {"PATH": os.defpath})
    message = str(caught.value)
    assert '{"environments": [{"id": "...", "name": "...", "isLinked": true|false}, ...]}' in message
    assert "Railway CLI 5.43.1" in message and "railway --version" in message
    assert printed[:10] in message


# --- item 12a: the README's CLI block names every option of every command --------------------------------


def readme_cli_entries() -> dict[str, str]:
    text = (REPO / "README.md").read_text()
    block = re.search(r"## CLI\n\n```\n(.*?)```", text, flags=re.S)
    assert block is not None
    entries: dict[str, str] = {}
    current = ""
    for line in block.group(1).splitlines():
        if line.startswith("deploytool"):
            words = line.replace("[--spec PATH]", "").split()[1:]
            names = [w for w in words[:2] if re.match(r"^[a-z]+$", w)]
            groups = {name.split()[0] for name in cli_commands() if " " in name}  # railway, tenants
            current = " ".join(names[:2] if names[:1] and names[0] in groups else names[:1])
            entries[current] = entries.get(current, "") + line
        elif current:
            entries[current] += line
    return entries


def cli_commands() -> dict[str, list[str]]:
    root = typer.main.get_command(app)
    found: dict[str, list[str]] = {}

    def walk(command, prefix: str) -> None:
        for name, sub in getattr(command, "commands", {}).items():
            if hasattr(sub, "commands"):
                walk(sub, f"{prefix}{name} ")
                continue
            longs = [o for p in sub.params for o in p.opts if o.startswith("--") and o != "--help"]
            found[f"{prefix}{name}"] = longs

    walk(root, "")
    return found


@pytest.mark.parametrize("command", sorted(cli_commands()))
def test_the_readme_cli_block_lists_every_command_and_option(command):
    entries = readme_cli_entries()
    assert command in entries, f"README's CLI block has no line for `deploytool {command}`"
    for option in cli_commands()[command]:
        assert option in entries[command], f"README: `deploytool {command}` lacks {option}"
