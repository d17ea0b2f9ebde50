"""Railway: `deploytool railway plan|apply` against a stand-in `railway` CLI, the project file under the
current CLI's evaluation and scope rules, and the builder's health-path rule.

The stand-in (tests/fake_railway/railway) is written from railwayapp/cli's current source (its docstring
says which files and what it leaves out): it evaluates `.railway/railway.py` in a fresh `python3` for the
linked environment and every other persistent one, applies `plan_scope`, and prints what the linked
environment keeps, so a test sees what Railway would plan there.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from deploytool import pipeline
from deploytool.plan.model import Plain
from deploytool.spec.model import Target
from deploytool.targets import plugin, railway_iac, render_all
from deploytool.targets.railway import RAILWAY_FILE, check_project_file, layouts_of, start_project_file_check
from tests.conftest import REPO

SPEC = str(REPO / "deploytool.yaml")
FAKE = Path(__file__).resolve().parents[1] / "fake_railway" / "railway"
PROD_SERVICES = {"service.web", "service.whatsapp-shard-1", "service.whatsapp-shard-2"}


def _repo_state() -> str:
    """What git sees of the checkout, ignored files included (a release history is git-ignored)."""
    done = subprocess.run(
        ["git", "-C", str(REPO), "status", "--porcelain", "--ignored", "--", "deploy", ".railway"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout if done.returncode == 0 else ""


@pytest.fixture(autouse=True)
def _checkout_untouched():
    before = _repo_state()
    yield
    assert _repo_state() == before, "a railway test wrote into the repository checkout"


@pytest.fixture
def railway(tmp_path):
    """Install the stand-in as `railway` on a PATH that also finds this interpreter's `python3`."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shutil.copy(FAKE, bin_dir / "railway")
    shutil.copy(FAKE.with_name("deployments.py"), bin_dir / "deployments.py")  # its deployments (issue 30)
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
            return [json.loads(line) for line in log.read_text().splitlines() if '"argv"' in line]

        @staticmethod
        def scoped() -> list[dict]:
            if not log.exists():
                return []
            return [json.loads(line)["scoped"] for line in log.read_text().splitlines() if '"scoped"' in line]

        @staticmethod
        def run(*args: str, spec: str = SPEC, **extra: str) -> subprocess.CompletedProcess[str]:
            if args[:1] == ("apply",) and spec == SPEC and "--out" not in args:
                # an apply records a release in its output folder: the repository's own stays untouched
                out = tmp_path / "out" / args[1]
                pipeline.write(pipeline.render_environment(Path(SPEC), args[1], out, local=False))
                args = (*args, "--out", str(out))
            return subprocess.run(
                [sys.executable, "-m", "deploytool", "--spec", spec, "railway", *args],
                env={**env, **extra},
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )

        @staticmethod
        def cli(*args: str, cwd: Path = REPO, **extra: str) -> subprocess.CompletedProcess[str]:
            """The stand-in itself, as a user runs `railway ...` in `cwd`."""
            return subprocess.run(
                [str(bin_dir / "railway"), *args],
                env={**env, **extra},
                cwd=cwd,
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


def three_environments(extra: dict | None = None) -> str:
    listed = [
        {"id": "env-production", "name": "production"},
        {"id": "env-staging", "name": "staging"},
        {"id": "env-qa", "name": "qa"},  # a persistent environment the spec does not describe
    ]
    return json.dumps(listed + ([extra] if extra else []))


# --- the project file under the current CLI ----------------------------------------------------------------


def test_plan_prod_and_staging_from_the_repository_root_as_a_signed_in_user(railway):
    """Every persistent environment is evaluated (a signed-in user sees them all), a third one included."""
    environments = three_environments()
    prod = railway.run("plan", "prod", FAKE_RAILWAY_LINKED="production", FAKE_RAILWAY_ENVIRONMENTS=environments)
    staging = railway.run("plan", "staging", FAKE_RAILWAY_LINKED="staging", FAKE_RAILWAY_ENVIRONMENTS=environments)
    assert prod.returncode == 0, prod.stderr
    assert staging.returncode == 0, staging.stderr
    assert addresses(prod.stdout) == {"database.Postgres", *PROD_SERVICES}
    assert addresses(staging.stdout) == {"database.Postgres", "service.web", "service.whatsapp"}
    for call in [c for c in railway.calls() if c["argv"][:1] == ["config"]]:
        assert call["argv"] == ["config", "plan"]  # the CLI finds .railway/railway.py itself
        assert call["cwd"] == str(REPO)
    by_env = {s["environment"]: s for s in railway.scoped()}
    staging_web = next(r for r in by_env["staging"]["resources"] if r["address"] == "service.web")
    prod_web = next(r for r in by_env["production"]["resources"] if r["address"] == "service.web")
    assert "WHATSAPP_SERVER_URL" in staging_web["variables"] and "WHATSAPP_TENANT_URLS" not in staging_web["variables"]
    assert "WHATSAPP_TENANT_URLS" in prod_web["variables"] and "WHATSAPP_SERVER_URL" not in prod_web["variables"]


def test_an_environment_the_spec_does_not_describe_evaluates_and_keeps_nothing(railway):
    result = railway.cli("config", "plan", FAKE_RAILWAY_LINKED="qa", FAKE_RAILWAY_ENVIRONMENTS=three_environments())
    assert result.returncode == 0, result.stderr
    assert addresses(result.stdout) == set()
    [scoped] = railway.scoped()
    assert scoped["resources"] == [] and "service.web" in scoped["excluded"]


def test_the_per_environment_file_fails_for_a_signed_in_user_as_the_issue_reported(railway, tmp_path):
    """The stand-in reproduces what broke: the old per-environment file refuses the staging evaluation."""
    project = tmp_path / "old"
    (project / ".railway").mkdir(parents=True)
    shutil.copy(Path(__file__).parent / "data" / "railway_per_environment_file.py", project / ".railway/railway.py")
    result = railway.cli("config", "plan", cwd=project, FAKE_RAILWAY_LINKED="production")
    assert result.returncode == 1
    assert "describes Railway environment 'production', not 'staging'" in result.stderr
    # A project token sees its own environment only, which is why CI kept working.
    token = railway.cli("config", "plan", cwd=project, FAKE_RAILWAY_LINKED="production", RAILWAY_TOKEN="t")
    assert token.returncode == 0, token.stderr


def test_a_project_token_evaluates_its_own_environment_only(railway):
    result = railway.run("plan", "prod", FAKE_RAILWAY_LINKED="production", RAILWAY_TOKEN="project-token")
    assert result.returncode == 0, result.stderr
    assert addresses(result.stdout) == {"database.Postgres", *PROD_SERVICES}


def test_a_pr_environment_gets_the_from_layout_with_the_sandbox_driver(railway, make_project, tmp_path):
    spec = make_project(
        {
            "prod": "targets: [railway]\nrailway: {repo: acme/chat, environment: production}\n"
            "topology: {kind: sharded, max_tenants_per_shard: 2}\ntenants: ['1', '2', '3']\n",
            "staging": "targets: [railway]\nrailway: {repo: acme/chat, pr_environments: {from: staging}}\n",
        }
    )
    for env in ("prod", "staging"):
        pipeline.write(pipeline.render_environment(spec, env))
    pr = {"id": "env-pr-7", "name": "chat-pr-7", "pr": {"number": 7, "branch": "feat", "base": "main"}}
    pr["source"] = "staging"
    result = railway.cli(
        "config",
        "plan",
        cwd=spec.parent,
        FAKE_RAILWAY_LINKED="chat-pr-7",
        FAKE_RAILWAY_ENVIRONMENTS=json.dumps(
            [{"id": "env-production", "name": "production"}, {"id": "env-staging", "name": "staging"}, pr]
        ),
    )
    assert result.returncode == 0, result.stderr
    assert addresses(result.stdout) == {"database.Postgres", "service.web", "service.whatsapp"}
    [scoped] = railway.scoped()
    whatsapp = next(r for r in scoped["resources"] if r["address"] == "service.whatsapp")
    assert whatsapp["variables"]["WA_DRIVER"] == {"type": "literal", "value": "sandbox"}
    # staging itself keeps its own driver (baileys by the base spec)
    staging = railway.cli("config", "plan", cwd=spec.parent, FAKE_RAILWAY_LINKED="staging")
    assert staging.returncode == 0, staging.stderr
    kept = next(r for r in railway.scoped()[-1]["resources"] if r["address"] == "service.whatsapp")
    assert kept["variables"]["WA_DRIVER"]["value"] == "baileys"


def test_pr_environments_from_an_environment_without_railway_is_a_spec_error(make_project):
    spec = make_project(
        {"dev": "targets: [local]\n", "staging": "targets: [railway]\nrailway: {pr_environments: {from: dev}}\n"}
    )
    result = subprocess.run(
        [sys.executable, "-m", "deploytool", "--spec", str(spec), "render", "staging"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "railway.pr_environments.from: 'dev' is not an environment with the railway target" in result.stderr
    assert "Traceback" not in result.stderr


def test_pinned_plans_pass_through_and_are_tied_to_the_railway_folder(railway, make_project, tmp_path):
    spec = make_project({"staging": "targets: [railway]\nrailway: {repo: acme/chat}\n"})
    pipeline.write(pipeline.render_environment(spec, "staging"))
    plan_file = tmp_path / "staging.plan"
    planned = railway.run("plan", "staging", "--plan-out", str(plan_file), spec=str(spec))
    assert planned.returncode == 0, planned.stderr
    assert plan_file.is_file()
    applied = railway.run("apply", "staging", "--yes", "--plan", str(plan_file), spec=str(spec))
    assert applied.returncode == 0, applied.stderr
    plan_call, apply_call = config_calls(railway)
    assert plan_call == ["config", "plan", "--out", str(plan_file)]
    assert apply_call == ["config", "apply", "--yes", "--plan", str(plan_file)]
    # The folder changes after the plan (another render): the CLI refuses the pinned plan.
    (spec.parent / ".railway" / "notes.txt").write_text("changed\n")
    refused = railway.run("apply", "staging", "--yes", "--plan", str(plan_file), spec=str(spec))
    assert refused.returncode == 1 and "different .railway/ folder" in refused.stderr


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        # a resource only where its layout is: the CLI's "Use environments: [...]" error
        (
            lambda s: s.replace(
                '        service("whatsapp", **bodies.get("whatsapp", {})).with_fields(environments=["staging"]),\n',
                '        *([service("whatsapp", **bodies.get("whatsapp", {}))]'
                ' if ctx.environment == "staging" else []),\n',
            ),
            "is declared when evaluating",
        ),
        # environments that depend on the evaluation
        (
            lambda s: s.replace(
                '.with_fields(environments=["staging"])', ".with_fields(environments=[ctx.environment])", 1
            ),
            "environments differ across evaluations",
        ),
        # not an array of names
        (
            lambda s: s.replace('.with_fields(environments=["staging"])', '.with_fields(environments="staging")', 1),
            "must be an array of environment names",
        ),
        # a name no environment of the project has
        (
            lambda s: s.replace('.with_fields(environments=["staging"])', '.with_fields(environments=["stagging"])', 1),
            'Unknown environment "stagging"',
        ),
        # no environments: every environment keeps it, the unknown one too
        (lambda s: s.replace('.with_fields(environments=["staging"])', "", 1), "Railway would keep"),
        # an evaluation that raises
        (
            lambda s: s.replace(
                "    layout = PR_LAYOUT",
                "    assert ctx.environment != 'deploytool-check-unknown'\n    layout = PR_LAYOUT",
                1,
            ),
            "evaluation for a Railway environment the spec does not describe failed",
        ),
        # a body that drops a variable
        (lambda s: s.replace('            "TENANTS": "1,2,3",\n', "", 1), "has variables"),
    ],
)
def test_the_check_applies_each_rule_of_the_current_cli(mutate, message):
    _, plan = pipeline.plan_environment(Path(SPEC), "staging", local=False)
    rendered = pipeline.render_environment(Path(SPEC), "staging", local=False)
    source = next(a.content for a in rendered.artifacts if a.path == RAILWAY_FILE)
    layouts = layouts_of(plan, rendered.ctx)
    assert check_project_file(source, layouts) == []
    broken = mutate(source)
    assert broken != source
    findings = check_project_file(broken, layouts)
    assert any(message in f.message for f in findings), findings


def test_scope_rules_keep_exclude_and_refuse():
    web = {"address": "service.web", "name": "web", "environments": ["production"]}
    db = {"address": "database.Postgres", "name": "Postgres"}
    scope = railway_iac.plan_scope(
        [("staging", [web, db], True), ("production", [web, db], False)], ["production", "staging"], "staging"
    )
    assert scope.diagnostics == [] and scope.excluded == ["service.web"]
    assert scope.resources == [{"address": "database.Postgres", "name": "Postgres"}]
    kept = railway_iac.plan_scope([("production", [web], True)], ["production"], "production")
    assert kept.resources == [{"address": "service.web", "name": "web"}]  # `environments` is not part of the body
    partial = railway_iac.plan_scope(
        [("staging", [db], True), ("production", [web, db], False)], ["production"], "staging"
    )
    assert partial.resources == [] and 'Use environments: ["production"]' in partial.diagnostics[0]


# --- deploytool railway plan|apply -------------------------------------------------------------------------


def test_plan_staging_runs_the_cli_in_the_spec_folder(railway):
    result = railway.run("plan", "staging", FAKE_RAILWAY_LINKED="staging")
    assert result.returncode == 0, result.stderr
    assert "Environment staging" in result.stdout
    assert addresses(result.stdout) == {
        "database.Postgres",
        "service.web",
        "service.whatsapp",
    }  # sessions in Postgres: no volume
    [call] = [c for c in railway.calls() if c["argv"][:1] == ["config"]]
    assert call["argv"] == ["config", "plan"] and call["cwd"] == str(REPO)


def test_apply_prod_with_yes_applies_the_shards(railway):
    result = railway.run("apply", "prod", "--yes", FAKE_RAILWAY_LINKED="production")
    assert result.returncode == 0, result.stderr
    services = {a for a in addresses(result.stdout) if a.startswith("service.")}
    assert services == {"service.web", "service.whatsapp-shard-1", "service.whatsapp-shard-2"}
    [argv] = config_calls(railway)
    assert argv == ["config", "apply", "--yes"]


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
    assert argv[2:] == flags


def test_apply_passes_confirm_destructive_and_json_only_when_asked(railway):
    result = railway.run("apply", "staging", "--json", "--confirm-destructive", "--yes", FAKE_RAILWAY_LINKED="staging")
    assert result.returncode == 0, result.stderr
    [argv] = config_calls(railway)
    assert argv[2:] == ["--json", "--yes", "--confirm-destructive"]


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
    assert "missing: .railway/railway.py" in result.stdout + result.stderr
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


# --- local overrides never reach Railway ---------------------------------------------------------------------


def test_a_local_overlay_or_a_set_is_refused_before_anything_runs(railway, make_project):
    spec = make_project({"staging": "targets: [railway]\nrailway: {repo: acme/chat}\n"})
    pipeline.write(pipeline.render_environment(spec, "staging"))
    local = spec.parent / "environments" / "staging.local.yaml"
    local.write_text("services:\n  whatsapp:\n    driver: sandbox\n")
    for action in ("plan", "apply"):
        result = railway.run(action, "staging", spec=str(spec))
        assert result.returncode == 2, result.stderr
        assert "environments/staging.local.yaml would change what reaches Railway" in result.stderr
    local.unlink()
    result = railway.run("plan", "staging", "--set", "services.web.port=6000", spec=str(spec))
    assert result.returncode == 2 and "--set services.web.port would change what reaches Railway" in result.stderr
    assert railway.calls() == []
    assert railway.run("plan", "staging", spec=str(spec)).returncode == 0


def test_legacy_config_is_a_spec_error_naming_the_cutoff(make_project):
    spec = make_project({"prod": "targets: [railway]\nrailway: {legacy_config: true, repo: acme/chat}\n"})
    result = subprocess.run(
        [sys.executable, "-m", "deploytool", "--spec", str(spec), "validate", "prod"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert "2026-12-01" in result.stderr and ".railway/railway.py" in result.stderr
    assert "environments/prod.yaml:2" in result.stderr and "railway.legacy_config" in result.stderr


@pytest.mark.parametrize("value", ["${{shared.OPS_API_KEY}}", "x ${{Postgres.DATABASE_URL}}", "${{ web.PORT }}"])
def test_a_railway_reference_in_a_plain_value_is_refused(make_project, value):
    overlay = "targets: [railway]\nrailway: {repo: acme/chat}\n"
    overlay += f"services:\n  whatsapp:\n    env:\n      Y: {json.dumps(value)}\n"
    spec = make_project({"staging": overlay})
    rendered = pipeline.render_environment(spec, "staging")
    [finding] = [f for f in pipeline.findings_of(rendered, deep=False) if f.code == "RAILWAY_REFERENCE"]
    assert finding.severity == "error" and "services.whatsapp.env.Y" in str(finding)
    assert "environments/staging.yaml:6" in str(finding)


def test_a_dollar_without_braces_reaches_the_variable_literally(make_project):
    overlay = (
        "targets: [railway]\nrailway: {repo: acme/chat}\nservices:\n  whatsapp:\n    env:\n      Y: 'a$b ${c} {{d}}'\n"
    )
    spec = make_project({"staging": overlay})
    rendered = pipeline.render_environment(spec, "staging")
    source = next(a.content for a in rendered.artifacts if a.path == RAILWAY_FILE)
    [context] = [railway_iac.Context("staging")]
    graphs = railway_iac.evaluate(source, [context])
    whatsapp = next(r for r in graphs[context] if r["address"] == "service.whatsapp")
    assert whatsapp["variables"]["Y"] == {"type": "literal", "value": "a$b ${c} {{d}}"}


def test_whatsapp_redeploys_never_overlap_and_drain_for_the_shutdown_timeout(make_project):
    overlay = (
        "targets: [railway]\nrailway: {repo: acme/chat}\n"
        "services:\n  whatsapp:\n    env:\n      SHUTDOWN_TIMEOUT_MS: '30000'\n"
    )
    spec = make_project({"staging": overlay})
    rendered = pipeline.render_environment(spec, "staging")
    source = next(a.content for a in rendered.artifacts if a.path == RAILWAY_FILE)
    context = railway_iac.Context("staging")
    graph = railway_iac.evaluate(source, [context])[context]
    deploy = next(r for r in graph if r["address"] == "service.whatsapp")["deploy"]
    assert deploy["overlapSeconds"] == 0 and deploy["drainingSeconds"] >= 30
    web = next(r for r in graph if r["address"] == "service.web")["deploy"]
    assert "overlapSeconds" not in web  # the web app may overlap: it holds no session
    broken = source.replace('"overlapSeconds": 0', '"overlapSeconds": 20')
    findings = check_project_file(broken, layouts_of(rendered.plan, rendered.ctx))
    assert any("must not overlap its old deployment" in f.message for f in findings)


def test_a_railway_file_deploytool_did_not_write_is_never_overwritten(make_project):
    spec = make_project({"staging": "targets: [railway]\nrailway: {repo: acme/chat}\n"})
    (spec.parent / ".railway").mkdir()
    (spec.parent / ".railway" / "railway.py").write_text("# ours\n")
    rendered = pipeline.render_environment(spec, "staging")
    codes = {f.code for f in pipeline.findings_of(rendered, deep=False) if f.severity == "error"}
    assert "RAILWAY_FILE_OWNER" in codes


# A file that notices the globals of an earlier evaluation: each one must start in a new module.
_COUNTING_FILE = """\
from railway_sdk import project

assert "SEEN" not in globals(), SEEN  # the module of an earlier evaluation
SEEN = []


def main(ctx):
    SEEN.append(ctx.environment)
    return project("p")
"""


def test_the_file_is_compiled_once_and_run_in_a_new_module_for_every_context(monkeypatch):
    import importlib.machinery

    compiled: list[str] = []
    original = importlib.machinery.SourceFileLoader.source_to_code

    def counting(self, data, path, *args, **kwargs):  # type: ignore[no-untyped-def]
        compiled.append(str(path))
        return original(self, data, path, *args, **kwargs)

    monkeypatch.setattr(importlib.machinery.SourceFileLoader, "source_to_code", counting)
    contexts = [railway_iac.Context("staging"), railway_iac.Context(railway_iac.UNKNOWN_ENVIRONMENT)]
    graphs = railway_iac.evaluate(_COUNTING_FILE, contexts)
    assert set(graphs) == set(contexts)
    assert len(compiled) == 1 and compiled[0].endswith(".railway/railway.py")


def test_a_file_that_does_not_compile_is_an_evaluation_failure():
    with pytest.raises(railway_iac.EvaluationFailed, match=r"evaluation for staging failed: SyntaxError"):
        railway_iac.evaluate("def main(ctx:\n", [railway_iac.Context("staging")])


# A file that says which process evaluated it.
_PID_FILE = """\
import os

from railway_sdk import project, service


def main(ctx):
    print("noise on stdout")  # not the child's answer
    return project("p", resources=[service("web", variables={"PID": str(os.getpid())})])
"""


def test_a_big_file_is_evaluated_in_a_child_interpreter_with_the_same_graphs():
    contexts = [railway_iac.Context("staging"), railway_iac.Context(railway_iac.UNKNOWN_ENVIRONMENT)]
    here = railway_iac.start_evaluate(_PID_FILE, contexts)()  # smaller than the threshold: in this process
    child = railway_iac.start_evaluate(_PID_FILE, contexts, child_min_bytes=0)()

    def pids(graphs: dict) -> list:
        return [[r["variables"]["PID"] for r in graph] for graph in graphs.values()]

    assert list(child) == contexts and pids(here) == [[{"type": "literal", "value": str(os.getpid())}]] * 2
    [[child_pid], [again]] = pids(child)
    assert child_pid == again and child_pid["value"] != str(os.getpid())

    def without_pid(graphs: dict) -> list:
        return [[{**r, "variables": {}} for r in graph] for graph in graphs.values()]

    assert without_pid(child) == without_pid(here)


@pytest.mark.parametrize(
    ("broken", "code"),
    [
        (lambda source: source.replace('"overlapSeconds": 0', '"overlapSeconds": 20'), "RAILWAY_GRAPH"),
        (lambda source: source + "\nraise ValueError('broken on purpose')\n", "RAILWAY_EVAL"),  # fails at run time
        (lambda source: source.replace("def main(", "def main(("), "RAILWAY_EVAL"),  # does not compile
    ],
)
def test_findings_from_a_child_evaluation_are_the_findings_of_one_here(make_project, broken, code):
    spec = make_project({"staging": "targets: [railway]\nrailway: {repo: acme/chat}\n"})
    rendered = pipeline.render_environment(spec, "staging")
    source = broken(next(a.content for a in rendered.artifacts if a.path == RAILWAY_FILE))
    layouts = layouts_of(rendered.plan, rendered.ctx)
    here = start_project_file_check(source, layouts, child_min_bytes=len(source) + 1)()
    child = start_project_file_check(source, layouts, child_min_bytes=0)()

    def scrub(findings: list) -> list[str]:  # a SyntaxError names the scratch copy, a new folder each time
        return [re.sub(r"deploytool-railway-[^/]+", "SCRATCH", str(f)) for f in findings]

    assert scrub(child) == scrub(here) and {f.code for f in child} == {code}
    assert all(f.severity == "error" for f in child)


@pytest.mark.parametrize(("child_min_bytes", "render_first"), [(0, "railway"), (railway_iac.CHILD_MIN_BYTES, "local")])
def test_render_starts_a_big_railway_check_first_and_validate_starts_compose_first(
    make_project, monkeypatch, child_min_bytes, render_first
):
    monkeypatch.setattr(railway_iac, "CHILD_MIN_BYTES", child_min_bytes)  # 0: every file is big
    overlay = "targets: [local, compose, railway]\nrailway: {repo: acme/chat}\n"
    spec = make_project({"staging": overlay})
    loaded, plan = pipeline.plan_environment(spec, "staging")
    ctx = pipeline.RenderContext(root=loaded.root, out=spec.parent / "deploy" / "staging")
    for deep, first in ((False, render_first), (True, "compose")):
        started: list[str] = []

        def record(target, _files, started=started):  # type: ignore[no-untyped-def]
            started.append(target.target.value)

        artifacts = render_all(plan, ctx, on_target=record, deep=deep)
        assert started[0] == first and sorted(started) == ["compose", "local", "railway"]
        # the order of rendering changes no file
        assert [(a.path, a.content) for a in artifacts] == [(a.path, a.content) for a in render_all(plan, ctx)]


def test_the_services_of_one_spec_service_share_a_body_and_pass_what_differs(make_project):
    overlay = "topology: {kind: per-port}\ntargets: [railway]\nrailway: {repo: acme/chat}\n"
    spec = make_project({"staging": overlay})
    rendered = pipeline.render_environment(spec, "staging")
    source = next(a.content for a in rendered.artifacts if a.path == RAILWAY_FILE)
    # one body for the three tenants' servers, called with each one's own values
    assert source.count("def _staging_whatsapp(") == 1
    assert "def _staging_whatsapp(ctx, db, cache, volumes, *, port, tenant_id, wa_service_name):" in source
    assert '_staging_whatsapp(ctx, db, cache, volumes, port="5003", tenant_id="2", wa_service_name="whatsapp-2")' in (
        source
    )
    ctx = dataclasses.replace(rendered.ctx, peers=None)
    assert check_project_file(source, layouts_of(rendered.plan, ctx)) == []
    # A service with a variable the others lack: arguments cannot say that, so it gets a body of its own, and
    # each environment's graph is still its plan's.
    plan = rendered.plan
    odd = next(s for s in plan.services if s.name == "whatsapp-3")
    extra = (*odd.env, ("ONLY_HERE", Plain("3")))
    changed = dataclasses.replace(
        plan, services=tuple(dataclasses.replace(s, env=extra) if s is odd else s for s in plan.services)
    )
    [artifact] = plugin(Target.railway).render(changed, ctx)
    assert "def _staging_whatsapp_1(ctx, db, cache, volumes):" in artifact.content
    assert "def _staging_whatsapp_3(ctx, db, cache, volumes):" in artifact.content
    assert "_staging_whatsapp(" not in artifact.content
    assert check_project_file(artifact.content, layouts_of(changed, ctx)) == []
    broken = artifact.content.replace('"ONLY_HERE": "3",', "", 1)
    assert any("has variables" in f.message for f in check_project_file(broken, layouts_of(changed, ctx)))
