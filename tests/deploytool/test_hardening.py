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


# Assembled, so no secret-shaped value sits in the source as one string.
STRIPE_LIKE = "sk_" + "live_" + "51Hq8wX3vN7pL2mK9rT4yB6cD"


@pytest.mark.parametrize(
    "name", ["DB_PASS", "JWT_PRIVATE_KEY_PEM", "AWS_SECRET_ACCESS_KEY_ID", "BASIC_AUTH", "SMTP_PASSWD", "apiKey"]
)
def test_names_the_review_found_are_secrets(make_project, capsys, name):
    from deploytool.redact import is_secret_name

    assert is_secret_name(name)
    if name.isupper():
        spec = make_project({"dev": f"services: {{web: {{env: {{{name}: plain-value}}}}}}\n"})
        assert main(["--spec", str(spec), "validate", "dev"]) == 1
        out = capsys.readouterr().out
        assert "SECRET_LITERAL" in out and f"web.env.{name}" in out and "plain-value" not in out


@pytest.mark.parametrize(
    "name", ["AUTH_ROOT", "PORT", "APP_ENV", "DATABASE_URL", "TENANT_ID", "KEY_PREFIX", "MONKEY", "BYPASS_CACHE"]
)
def test_ordinary_names_stay_plain(name):
    from deploytool.redact import is_secret_name

    assert not is_secret_name(name)


def test_values_shaped_like_api_keys_are_recognised():
    from deploytool import redact

    private_key = "-----BEGIN " + "PRIVATE KEY-----"
    for value in (STRIPE_LIKE, f"Bearer {STRIPE_LIKE}", "AKIA" + "ABCDEFGHIJKLMNOP", private_key):
        assert redact.looks_like_secret_value(value), value
    for value in ("info", "http://web:5002/health", "sk_live_", "1,2,3", "x" * 100):
        assert not redact.looks_like_secret_value(value), value


def test_a_value_pasted_into_secrets_is_not_echoed(make_project, capsys):
    for entry in (f"OPS_API_KEY={STRIPE_LIKE}", STRIPE_LIKE, "hunter2 pasted"):
        spec = make_project({"dev": f'secrets: [OPS_API_KEY, "{entry}"]\n'})
        assert main(["--spec", str(spec), "validate", "dev"]) == 2
        err = capsys.readouterr().err
        assert "secrets.1" in err, err
        assert entry not in err and STRIPE_LIKE not in err and "hunter2" not in err, err


def test_the_secret_regexes_are_linear_in_the_input_length():
    # The finding: an env value of 100k `a` made `validate` take 61 s (quadratic URL-credential regex).
    # Timed in a child process with a deadline, so the old quadratic code fails instead of hanging.
    script = textwrap.dedent(
        """
        import sys, time
        from deploytool import redact

        checks = [redact.has_url_credentials, redact.redact_url, redact.is_secret_name]
        checks += [getattr(redact, "looks_like_secret_value", redact.has_url_credentials)]
        shapes = ["a", "a1", "a://", "a://x:p", "eyJ-", "sk-", "A_", "a.b+c-"]

        def best(text):
            times = []
            for _ in range(3):
                started = time.perf_counter()
                for check in checks:
                    check(text)
                times.append(time.perf_counter() - started)
            return min(times)

        for shape in shapes:
            small = best((shape * 10_000)[:10_000])
            big = best((shape * 1_000_000)[:1_000_000])
            print(shape, big / max(small, 1e-6), flush=True)
        """
    )
    try:
        result = subprocess.run(
            [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60, check=False
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"1 MB inputs took over 60 s (quadratic); finished: {exc.stdout!r}")
    assert result.returncode == 0, result.stderr
    for line in result.stdout.splitlines():
        shape, ratio = line.rsplit(" ", 1)
        # 100x the input: linear is ~100x; quadratic would be ~10,000x
        assert float(ratio) < 300, f"{shape!r}: 1 MB took {float(ratio):.0f}x as long as 10 KB"


def test_a_token_shaped_value_under_an_ordinary_name_is_a_secret_literal(make_project, capsys):
    from deploytool.cli import main

    token = "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc"
    spec = make_project({"dev": f"services: {{web: {{env: {{PAYMENTS: {token}}}}}}}\n"})
    assert main(["--spec", str(spec), "validate", "dev"]) == 1
    out = capsys.readouterr()
    assert "SECRET_LITERAL" in out.out + out.err and "web.env.PAYMENTS" in out.out + out.err
    assert token not in out.out + out.err
