"""Railway: `deploytool railway plan|apply` against a stand-in `railway` CLI, and the builder's health-path rule.

The stand-in is a small Python program put first on PATH. It records every call (arguments, working
folder, Railway variables), answers `railway environment list --json` with a configurable link, refuses
the flags the real CLI 5.43.1 refuses, and for `railway config plan|apply --file F` evaluates F exactly
the way the real CLI does: `python3 -c <the script of src/iac/eval.rs> F` (python3 from PATH, `main()`
called with no context), then prints the graph's resource addresses. So a test sees which graph would
have been applied to the linked environment.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from deploytool import pipeline
from tests.conftest import REPO

SPEC = str(REPO / "deploytool.yaml")

# Verbatim from railwayapp/cli 5.43.1, src/iac/eval.rs (`evaluate_python`).
CLI_EVAL_SCRIPT = r"""
import importlib.util, json, sys
path = sys.argv[1]
spec = importlib.util.spec_from_file_location("railway_iac_user", path)
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
partial = getattr(mod, "PARTIAL", None) or getattr(mod, "Partial", None) or getattr(mod, "partial", None)
candidate = getattr(mod, "main", None) or getattr(mod, "Railway", None) or getattr(mod, "default", None)
project = candidate() if callable(candidate) else candidate
if hasattr(project, "to_graph"):
    project = project.to_graph()
print(json.dumps({"partial": partial, "project": project}, default=str))
"""

STAND_IN = textwrap.dedent(
    '''\
    #!{python}
    """Stand-in for Railway's CLI 5.43.1 (only what `deploytool railway` uses)."""
    import json, os, subprocess, sys

    EVAL = {script!r}
    ENVIRONMENTS = [("env-production", "production"), ("env-staging", "staging")]
    argv = sys.argv[1:]
    with open(os.environ["FAKE_RAILWAY_LOG"], "a") as log:
        recorded = {{k: v for k, v in os.environ.items() if k.startswith("RAILWAY_") or k == "CI"}}
        log.write(json.dumps({{"argv": argv, "cwd": os.getcwd(), "env": recorded}}) + "\\n")

    def fail(message):
        print("error: " + message, file=sys.stderr)
        sys.exit(1)

    if os.environ.get("FAKE_RAILWAY_LOGGED_IN", "1") != "1":
        token = os.environ.get("RAILWAY_TOKEN", "")
        fail(f"Unauthorized. Please login with `railway login` (token {{token!r}} rejected)")

    def linked_id():
        # As Configs::get_linked_project: RAILWAY_ENVIRONMENT_ID (with RAILWAY_PROJECT_ID) over the local link
        if os.environ.get("RAILWAY_ENVIRONMENT_ID"):
            return os.environ["RAILWAY_ENVIRONMENT_ID"]
        name = os.environ.get("FAKE_RAILWAY_LINKED", "")
        return next((i for i, n in ENVIRONMENTS if n == name), None)

    if argv[:3] == ["environment", "list", "--json"]:
        print(json.dumps({{"environments": [
            {{"id": i, "name": n, "isEphemeral": False, "isLinked": i == linked_id(), "restricted": False}}
            for i, n in ENVIRONMENTS
        ]}}, indent=2))
        sys.exit(0)

    if argv[:1] == ["config"] and argv[1:2] in (["plan"], ["apply"]):
        action, flags = argv[1], argv[2:]
        if action == "plan" and "--yes" in flags:
            fail("--yes is only valid with `railway config apply`.")
        if action == "plan" and "--confirm-destructive" in flags:
            fail("--confirm-destructive is only valid with `railway config apply`.")
        if action == "apply" and "--detailed-exit-code" in flags:
            fail("--detailed-exit-code is only valid with `railway config plan`.")
        if "--file" not in flags:
            fail("no --file")
        path = flags[flags.index("--file") + 1]
        evaluated = subprocess.run(["python3", "-c", EVAL, path], capture_output=True, text=True)
        if evaluated.returncode != 0:
            fail("python3 evaluation failed: " + evaluated.stderr)
        graph = json.loads(evaluated.stdout)["project"]
        name = next(n for i, n in ENVIRONMENTS if i == linked_id())
        print(f"Environment {{name}}")
        for resource in graph["resources"]:
            print(f"  + {{resource['address']}}")
        sys.exit(int(os.environ.get("FAKE_RAILWAY_EXIT", "0")))

    fail("unexpected command: " + " ".join(argv))
    '''
)


@pytest.fixture
def railway(tmp_path):
    """Install the stand-in as `railway` on a PATH that also finds this interpreter's `python3`."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stand_in = bin_dir / "railway"
    stand_in.write_text(STAND_IN.format(python=sys.executable, script=CLI_EVAL_SCRIPT))
    stand_in.chmod(0o755)
    log = tmp_path / "railway-calls.jsonl"
    # python3 of this venv (it has railway-sdk): the real CLI also takes python3 from PATH.
    path = os.pathsep.join([str(bin_dir), str(Path(sys.executable).parent), os.environ.get("PATH", os.defpath)])
    base = {k: v for k, v in os.environ.items() if not k.startswith("RAILWAY_") and k != "CI"}
    env = {**base, "PATH": path, "FAKE_RAILWAY_LOG": str(log), "FAKE_RAILWAY_LINKED": "staging"}

    class Railway:
        environ = env

        @staticmethod
        def calls() -> list[dict]:
            if not log.exists():
                return []
            return [json.loads(line) for line in log.read_text().splitlines()]

        @staticmethod
        def run(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "deploytool", "--spec", SPEC, "railway", *args],
                env={**env, **extra},
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )

    return Railway


def config_calls(railway) -> list[list[str]]:
    return [c["argv"] for c in railway.calls() if c["argv"][:1] == ["config"]]


def addresses(out: str) -> set[str]:
    return {line.split("+ ", 1)[1] for line in out.splitlines() if line.startswith("  + ")}


def test_plan_staging_evaluates_stagings_own_file(railway):
    result = railway.run("plan", "staging", FAKE_RAILWAY_LINKED="staging")
    assert result.returncode == 0, result.stderr
    assert "Environment staging" in result.stdout
    assert addresses(result.stdout) == {
        "database.Postgres",
        "service.web",
        "service.whatsapp",
    }  # sessions in Postgres: no volume
    [argv] = config_calls(railway)
    assert argv == ["config", "plan", "--file", str(REPO / "deploy/staging/.railway/railway.py")]


def test_apply_prod_with_yes_applies_the_shards(railway):
    result = railway.run("apply", "prod", "--yes", FAKE_RAILWAY_LINKED="production")
    assert result.returncode == 0, result.stderr
    services = {a for a in addresses(result.stdout) if a.startswith("service.")}
    assert services == {"service.web", "service.whatsapp-shard-1", "service.whatsapp-shard-2"}
    [argv] = config_calls(railway)
    assert argv == ["config", "apply", "--file", str(REPO / "deploy/prod/.railway/railway.py"), "--yes"]


def test_yes_only_when_asked(railway):
    asked = railway.run("apply", "staging", FAKE_RAILWAY_LINKED="staging")
    in_ci = railway.run("apply", "staging", FAKE_RAILWAY_LINKED="staging", CI="true")
    planned = railway.run("plan", "staging", "--json", FAKE_RAILWAY_LINKED="staging", CI="true")
    assert (asked.returncode, in_ci.returncode, planned.returncode) == (0, 0, 0), asked.stderr + in_ci.stderr
    first, second, third = config_calls(railway)
    assert "--yes" not in first  # no --yes and no CI: the Railway CLI asks (or refuses without a terminal)
    assert second[-1] == "--yes"  # CI=true: nobody can answer the prompt
    assert third[:2] == ["config", "plan"] and "--json" in third and "--yes" not in third  # plan never gets --yes


def test_link_to_another_environment_is_refused_before_anything_is_evaluated(railway):
    result = railway.run("apply", "staging", "--yes", FAKE_RAILWAY_LINKED="production")
    assert result.returncode == 2
    assert "linked to environment 'production'" in result.stderr
    assert "Railway environment 'staging'" in result.stderr
    assert "Traceback" not in result.stderr
    assert config_calls(railway) == []  # only `environment list --json` ran: nothing was evaluated
    assert [c["argv"] for c in railway.calls()] == [["environment", "list", "--json"]]


def test_railway_environment_id_overrides_the_local_link_as_in_the_cli(railway):
    # The local link says staging, RAILWAY_ENVIRONMENT_ID says production: the CLI acts on production.
    refused = railway.run(
        "plan",
        "staging",
        FAKE_RAILWAY_LINKED="staging",
        RAILWAY_PROJECT_ID="p",
        RAILWAY_ENVIRONMENT_ID="env-production",
    )
    assert refused.returncode == 2 and "linked to environment 'production'" in refused.stderr
    allowed = railway.run(
        "plan", "prod", FAKE_RAILWAY_LINKED="staging", RAILWAY_PROJECT_ID="p", RAILWAY_ENVIRONMENT_ID="env-production"
    )
    assert allowed.returncode == 0, allowed.stderr
    assert "service.whatsapp-shard-1" in addresses(allowed.stdout)


def test_no_linked_environment_is_refused(railway):
    result = railway.run("plan", "staging", FAKE_RAILWAY_LINKED="")
    assert result.returncode == 2 and "linked to no environment" in result.stderr
    assert config_calls(railway) == []


def test_railway_cli_missing(railway, tmp_path):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    result = railway.run("plan", "staging", PATH=str(empty))
    assert result.returncode == 2
    assert "Railway CLI (`railway`) is not on PATH" in result.stderr and "@railway/cli" in result.stderr
    assert railway.calls() == []


def test_not_logged_in_is_a_clear_error_without_the_token(railway):
    token = "rw-token-d41d8cd98f00b204"
    result = railway.run("plan", "staging", FAKE_RAILWAY_LOGGED_IN="0", RAILWAY_TOKEN=token)
    assert result.returncode == 2
    assert "Unauthorized" in result.stderr and "railway login" in result.stderr
    assert token not in result.stdout + result.stderr
    assert railway.calls()[0]["env"]["RAILWAY_TOKEN"] == token  # the CLI itself still gets it
    assert config_calls(railway) == []


@pytest.mark.parametrize(("railway_exit", "flags"), [(2, ["--detailed-exit-code"]), (1, []), (0, [])])
def test_plan_returns_the_railway_exit_code(railway, railway_exit, flags):
    result = railway.run("plan", "staging", *flags, FAKE_RAILWAY_LINKED="staging", FAKE_RAILWAY_EXIT=str(railway_exit))
    assert result.returncode == railway_exit, result.stderr
    [argv] = config_calls(railway)
    assert argv[4:] == flags


def test_apply_passes_confirm_destructive_and_json_only_when_asked(railway):
    result = railway.run("apply", "staging", "--json", "--confirm-destructive", "--yes", FAKE_RAILWAY_LINKED="staging")
    assert result.returncode == 0, result.stderr
    [argv] = config_calls(railway)
    assert argv[4:] == ["--json", "--yes", "--confirm-destructive"]


def test_environment_without_the_railway_target(railway):
    result = railway.run("plan", "dev")
    assert result.returncode == 2
    assert "dev: targets are local, compose" in result.stderr and "railway target" in result.stderr
    assert railway.calls() == []


def test_a_stale_render_is_refused(railway, make_project):
    spec = make_project({"staging": "targets: [railway]\nrailway: {repo: acme/chat}\n"})
    result = subprocess.run(
        [sys.executable, "-m", "deploytool", "--spec", str(spec), "railway", "apply", "staging", "--yes"],
        env=railway.environ,
        cwd=spec.parent,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert "missing: deploy/staging/.railway/railway.py" in result.stdout + result.stderr
    assert "run `deploytool render staging`" in result.stderr
    assert railway.calls() == []
    # Rendered, the same project goes through.
    pipeline.write(pipeline.render_environment(spec, "staging"))
    result = subprocess.run(
        [sys.executable, "-m", "deploytool", "--spec", str(spec), "railway", "apply", "staging", "--yes"],
        env={**railway.environ, "FAKE_RAILWAY_LINKED": "staging"},
        cwd=spec.parent,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert {"service.web", "service.whatsapp"} <= addresses(result.stdout)


# --- the builder's rule: Railway polls the service's health path while a deploy goes live ------------------


@pytest.mark.parametrize("service", ["web", "whatsapp"])
def test_health_path_other_than_health_is_a_railway_finding(make_project, service):
    overlay = f"targets: [railway]\nrailway: {{repo: acme/chat}}\nservices:\n  {service}:\n    health_path: /healthz\n"
    spec = make_project({"prod": overlay})
    rendered = pipeline.render_environment(spec, "prod")
    findings = [f for f in pipeline.findings_of(rendered, deep=False) if f.code == "RAILWAY_HEALTH_PATH"]
    assert len(findings) == 1 and findings[0].severity == "error"
    assert f"services.{service}.health_path: '/healthz' is not /health" in str(findings[0])


def test_health_path_default_and_disabled_are_fine_for_railway(make_project):
    spec = make_project(
        {
            "prod": "targets: [railway]\nrailway: {repo: acme/chat}\n",
            "off": "targets: [railway]\nrailway: {repo: acme/chat}\nservices:\n  web:\n    health_path: null\n",
            "local": "targets: [local]\nservices:\n  web:\n    health_path: /healthz\n",
        }
    )
    for env in ("prod", "off", "local"):  # a local-only environment is not Railway's business
        rendered = pipeline.render_environment(spec, env)
        assert "RAILWAY_HEALTH_PATH" not in {f.code for f in pipeline.findings_of(rendered, deep=False)}
