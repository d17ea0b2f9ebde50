"""Hostile input against deploytool: each case once broke it (traceback, lost file, leaked secret, runaway)."""

from __future__ import annotations

import resource
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from deploytool.cli import main
from tests.conftest import BASE_SPEC, REPO


def run_cli(*args: str, cwd: Path | None = None, memory_mb: int = 1024) -> subprocess.CompletedProcess[str]:
    """The CLI in its own process, with an address-space cap: a runaway must fail, not eat the machine."""

    def cap() -> None:
        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return subprocess.run(
        [sys.executable, "-m", "deploytool", *args],
        cwd=cwd or REPO,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=cap,
        check=False,
    )


PW = "pw-" + "Secret1"


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    lines = ['a0: &a0 ["x"]']
    for level in range(1, levels + 1):
        refs = ", ".join(f"*a{level - 1}" for _ in range(width))
        lines.append(f"a{level}: &a{level} [{refs}]")
    return "\n".join(lines) + f"\ntenants: *a{levels}\n"


def test_yaml_alias_bomb_is_refused_quickly_with_a_clear_message(make_project):
    spec = make_project({"dev": alias_bomb()})
    started = time.monotonic()
    result = run_cli("--spec", str(spec), "validate", "dev", memory_mb=768)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "environments/dev.yaml:1: aliases expand this file by" in result.stderr
    assert "Traceback" not in result.stderr
    assert time.monotonic() - started < 60


def test_a_few_honest_aliases_still_load(make_project):
    spec = make_project({"dev": "services:\n  whatsapp: {env: &e {LOG_LEVEL: info}}\n  web: {env: *e}\n"})
    assert main(["--spec", str(spec), "show", "dev"]) == 0


def test_a_spec_nested_900_levels_is_exit_2_not_a_recursion_error(make_project):
    spec = make_project({"dev": "x: " + "[" * 900 + "]" * 900 + "\n"})
    result = run_cli("--spec", str(spec), "validate", "dev")
    assert result.returncode == 2 and "nested more than 64 levels deep" in result.stderr, result.stderr[-1500:]
    assert "Traceback" not in result.stderr


def test_a_50_mb_spec_still_loads(tmp_path):
    spec = tmp_path / "deploytool.yaml"
    (tmp_path / "environments").mkdir()
    (tmp_path / "environments" / "dev.yaml").write_text("topology: {kind: shared}\n")
    # 50 MB of honest YAML: a long comment block and a big `env` of plain values
    filler = "# " + "x" * 1022 + "\n"
    base = textwrap.dedent(BASE_SPEC) + "".join(filler for _ in range(41_000))
    env = "".join(f"      V{i}: '{'v' * 200}'\n" for i in range(40_000))
    anchor = "    local_start: python -m flask_service serve\n"
    base = base.replace(anchor, anchor + "    env:\n" + env, 1)
    spec.write_text(base)
    assert spec.stat().st_size > 50_000_000
    from deploytool.spec import load_spec

    loaded = load_spec(spec, "dev")
    assert len(loaded.spec.services["web"].env) == 40_000


@pytest.mark.parametrize("kind", ["file", "below-file", "proc"])
def test_out_that_cannot_be_a_folder_is_exit_2(make_project, capsys, kind):
    spec = make_project()
    blocker = spec.parent / "blocker"
    blocker.write_text("mine")
    out = {"file": blocker, "below-file": blocker / "x", "proc": Path("/proc")}[kind]
    assert main(["--spec", str(spec), "render", "dev", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    assert blocker.read_text() == "mine"


def test_local_service_without_a_start_command_is_a_finding(make_project, capsys):
    base = BASE_SPEC.replace("    start: node src/server.js\n", "").replace(
        "    local_start: exec node node_service/src/server.js\n", ""
    )
    spec = make_project(base=base)
    for command in ("validate", "render"):
        assert main(["--spec", str(spec), command, "dev"]) == 1
        out = capsys.readouterr().out
        assert "error[NO_START_COMMAND]: " in out and "deploytool.yaml:12: services.whatsapp" in out
        assert ": services.whatsapp: no local_start or start command" in out
    assert main(["--spec", str(spec), "show", "dev"]) == 0


@pytest.mark.parametrize(
    "value",
    # assembled, so no credential-looking URL sits in the source as one string
    [f"redis://:{PW}@cache:6379/0", f"postgresql://app:{PW}@db/app", "https://tok-Secret1" + "@h.io/x"],
)
def test_urls_with_credentials_in_env_are_secret_literals(make_project, capsys, value):
    spec = make_project({"dev": f"services: {{web: {{env: {{CACHE_URL: '{value}'}}}}}}\n"})
    assert main(["--spec", str(spec), "render", "dev"]) == 1
    out = capsys.readouterr().out
    assert "SECRET_LITERAL" in out and "pw-Secret1" not in out and "tok-Secret1" not in out
    assert not (spec.parent / "deploy").exists()


def test_public_url_with_credentials_is_refused(make_project, capsys):
    spec = make_project({"dev": "public_urls: {web: 'https://user:pw-Secret1@web.example.com'}\n"})
    assert main(["--spec", str(spec), "validate", "dev"]) == 2
    err = capsys.readouterr().err
    assert "public_urls.web" in err and "pw-Secret1" not in err


def test_a_literal_key_is_never_echoed_in_a_spec_error(make_project, capsys):
    spec = make_project({"dev": "services: {web: {env: {API_KEY: 98765432109876}}}\n"})
    assert main(["--spec", str(spec), "validate", "dev"]) == 2
    err = capsys.readouterr().err
    assert "services.web.env.API_KEY" in err and "98765432109876" not in err


def test_a_field_path_with_a_newline_is_printed_escaped(make_project, capsys):
    spec = make_project({"dev": 'services: {"web\\nerror: forged": {}}\n'})
    assert main(["--spec", str(spec), "validate", "dev"]) == 2
    err = capsys.readouterr().err
    assert "\nerror: forged" not in err and "'web\\nerror: forged'" in err


def test_an_overlay_that_is_a_folder_says_so(make_project, capsys):
    spec = make_project()
    (spec.parent / "environments" / "qa.yaml").mkdir()
    assert main(["--spec", str(spec), "validate", "qa"]) == 2
    assert "environments/qa.yaml: is a folder" in capsys.readouterr().err


def test_down_checks_the_environment_name(make_project, capsys):
    spec = make_project()
    assert main(["--spec", str(spec), "down", "../../etc"]) == 2
    assert "environment name '../../etc' is invalid" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("overlay", "code"),
    [
        ("topology: {kind: per-port, ports: {'1': 5432}}\n", "PORT_RESERVED"),
        ("services: {web: {port: 80}}\n", "PORT_PRIVILEGED"),
        ("topology: {kind: per-port, ports: {'1': 22}}\n", "PORT_PRIVILEGED"),
    ],
)
def test_ports_the_machine_already_uses_are_findings(make_project, capsys, overlay, code):
    spec = make_project({"dev": overlay})
    assert main(["--spec", str(spec), "validate", "dev"]) == 1
    assert f"error[{code}]" in capsys.readouterr().out


def test_privileged_ports_are_fine_for_a_cloud_only_environment(make_project, capsys):
    spec = make_project({"prod": "targets: [railway]\nrailway: {repo: acme/chat}\nservices: {web: {port: 80}}\n"})
    assert main(["--spec", str(spec), "validate", "prod"]) == 0, capsys.readouterr()


def test_run_logs_are_private(tmp_path):
    from tests.deploytool.test_run import Folder

    folder = Folder(tmp_path)
    folder.add("web")
    from deploytool.run.supervisor import down, up

    try:
        up(folder.out, folder.environ, deadline_s=30)
        log = folder.out / ".run" / "logs" / "web.log"
        assert stat.S_IMODE(log.stat().st_mode) == 0o600
        assert stat.S_IMODE(log.parent.stat().st_mode) == 0o700
    finally:
        down(folder.out, grace_s=2)


def test_a_failing_up_masks_the_database_password(tmp_path):
    from deploytool.errors import CheckFailed
    from deploytool.run.supervisor import up
    from tests.deploytool.test_run import Folder

    folder = Folder(tmp_path)
    folder.environ["DATABASE_URL"] = "postgresql://app:" + "db-Secret-77" + "@127.0.0.1/app"
    folder.add("web", command='echo "cannot reach $DATABASE_URL"; exit 4', passthrough=("DATABASE_URL",))
    with pytest.raises(CheckFailed) as failed:
        up(folder.out, folder.environ, deadline_s=10)
    assert "cannot reach postgresql://app:***@127.0.0.1/app" in str(failed.value)
    assert "db-Secret-77" not in str(failed.value)


def test_a_project_with_empty_service_folders_does_not_validate(make_project, capsys):
    """A spec for another app (acme-chat) whose folders hold no Dockerfile validated: compose builds them."""
    spec = make_project({"dev": "targets: [compose]\n"}, sources=False)
    (spec.parent / "flask_service").mkdir()
    assert main(["--spec", str(spec), "validate", "dev"]) == 1
    out = capsys.readouterr().out
    assert "error[DOCKERFILE_MISSING]" in out and "services.web.dockerfile: flask_service/Dockerfile" in out
    assert "error[SOURCE_MISSING]" in out and "deploytool.yaml:" in out and "services.whatsapp.source" in out


def test_a_compose_check_that_runs_too_long_is_a_finding_not_a_traceback(make_project, monkeypatch, capsys):
    """`validate` of 100,000 per-port tenants ended in an uncaught TimeoutExpired after 291 s."""
    from deploytool.targets import compose as compose_target

    monkeypatch.setattr(compose_target, "COMPOSE_CONFIG_TIMEOUT_S", 0.001)
    spec = make_project({"dev": "topology: {kind: per-port}\n"})
    assert main(["--spec", str(spec), "validate", "dev"]) == 1
    out = capsys.readouterr().out
    assert "error[COMPOSE_CONFIG]" in out and "did not finish within" in out
