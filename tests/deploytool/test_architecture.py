"""The seams: a new target is one module, manifest and lock are typed models, runners share one interface."""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

from deploytool import pipeline, targets
from deploytool.cli import main
from deploytool.plan.model import DatabaseUrl, EnvValue, Finding, Plain, Plan, SecretRef, ServiceUrl, TenantUrls
from deploytool.render.artifacts import Artifact, RenderContext
from deploytool.spec.model import Target
from deploytool.targets.base import TargetPlugin
from tests.conftest import REPO

# --- a throw-away target, defined here and nowhere else -------------------------------------------------


class NomadTarget(TargetPlugin):
    """A made-up target: one HCL-ish job file per environment, its own spelling and its own check."""

    target: ClassVar[Target] = Target.add("nomad")

    def spell(self, plan: Plan, value: EnvValue, ctx: RenderContext) -> str | None:
        if isinstance(value, Plain):
            return value.value
        if isinstance(value, SecretRef):
            return f'{{{{ with secret "kv/{value.name}" }}}}'
        if isinstance(value, ServiceUrl):
            return f"http://{value.service}.service.consul{value.path}"
        if isinstance(value, TenantUrls):
            return value.spell(lambda s: f"http://{s}.service.consul")
        if isinstance(value, DatabaseUrl):
            return "{{ with secret 'kv/DATABASE_URL' }}"
        return "/alloc/data/auth"

    def render(self, plan: Plan, ctx: RenderContext) -> list[Artifact]:
        lines = [f'job "{plan.project}-{plan.env_name}" {{']
        for svc in plan.services:
            lines.append(f'  group "{svc.name}" {{ port = {svc.port} }}')
        lines.append("}")
        return [Artifact(ctx.in_out("nomad/job.hcl"), "\n".join(lines) + "\n")]

    def plan_findings(self, plan: Plan) -> Iterator[Finding]:
        yield Finding("NOMAD_NOTE", f"nomad: {len(plan.services)} groups", "warning")

    def check(self, plan: Plan, ctx: RenderContext, artifacts: Mapping[str, Artifact], deep: bool) -> list[Finding]:
        job = artifacts[ctx.in_out("nomad/job.hcl")].content
        return [] if job.count("group") == len(plan.services) else [Finding("NOMAD_JOB", "groups missing")]


@pytest.fixture
def nomad() -> Iterator[NomadTarget]:
    plugin = targets.register(NomadTarget())
    yield plugin
    targets.unregister(plugin.target)


def test_a_new_target_is_one_class_registered_from_anywhere(nomad, make_project, capsys):
    spec = make_project({"dev": "targets: [nomad, compose]\n"})
    rendered = pipeline.render_environment(spec, "dev")
    assert rendered.plan.targets == (nomad.target, Target.compose)
    paths = {a.path for a in rendered.artifacts}
    assert "deploy/dev/nomad/job.hcl" in paths
    assert "deploy/dev/Procfile" not in paths  # only the targets the environment has
    codes = {f.code for f in pipeline.findings_of(rendered, deep=False)}
    assert "NOMAD_NOTE" in codes and "NOMAD_JOB" not in codes
    assert main(["--spec", str(spec), "show", "dev"]) == 0
    shown = yaml.safe_load(capsys.readouterr().out)
    assert shown["targets"] == ["nomad", "compose"]
    assert shown["services"]["web"]["env"]["WHATSAPP_SERVER_URL"] == {
        "nomad": "http://whatsapp.service.consul",
        "compose": "http://whatsapp:5001",
    }
    assert shown["services"]["web"]["env"]["SECRET_KEY"]["nomad"].startswith("{{ with secret")
    assert main(["--spec", str(spec), "render", "dev"]) == 0
    assert (spec.parent / "deploy/dev/nomad/job.hcl").read_text().startswith('job "acme-dev"')
    manifest = json.loads((spec.parent / "deploy/dev/deploytool-manifest.json").read_text())
    assert "nomad/job.hcl" in manifest["artifacts"] and manifest["targets"] == ["nomad", "compose"]


def test_an_unregistered_target_name_is_a_spec_error(make_project, capsys):
    spec = make_project({"dev": "targets: [kubernetes]\n"})
    assert main(["--spec", str(spec), "validate", "dev"]) == 2
    err = capsys.readouterr().err
    assert "environments/dev.yaml:1: targets.0:" in err and "kubernetes" in err


def test_nothing_outside_a_target_module_names_a_target():
    """The built-in target names appear only in their own modules (and the enum that lists them)."""
    allowed = {"deploytool/spec/model.py", "deploytool/targets/local.py", "deploytool/targets/compose.py"}
    allowed |= {"deploytool/targets/railway.py", "deploytool/run/compose.py"}  # the compose *runner*
    offenders = []
    for path in sorted((REPO / "deploytool").rglob("*.py")):
        rel = path.relative_to(REPO).as_posix()
        if rel in allowed:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            named = isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "Target"
            if named and node.attr in ("local", "compose", "railway"):
                offenders.append(f"{rel}:{node.lineno}: Target.{node.attr}")
            if isinstance(node, ast.Compare):
                for side in [node.left, *node.comparators]:
                    if isinstance(side, ast.Constant) and side.value in ("local", "compose", "railway"):
                        offenders.append(f"{rel}:{node.lineno}: compares with {side.value!r}")
    assert offenders == []


# --- typed manifest: a hand-edited or foreign file is refused, never obeyed ------------------------------


def rendered_project(make_project: Any, overlay: str = "{}\n") -> Path:
    spec = make_project({"dev": overlay})
    assert main(["--spec", str(spec), "render", "dev"]) == 0
    return spec


def edit_manifest(spec: Path, change: Any) -> Path:
    path = spec.parent / "deploy/dev/deploytool-manifest.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(
    "entry",
    ["/etc/hostname", "../../victim.txt", "env/../../victim.txt", "./Procfile", "env//x.env", "C:\\x"],
)
def test_render_never_deletes_what_a_manifest_names_outside_its_folder(make_project, capsys, entry):
    spec = rendered_project(make_project)
    victim = spec.parent / "victim.txt"
    victim.write_text("keep me")
    edit_manifest(spec, lambda d: d["artifacts"].update({entry: "0" * 64}))
    capsys.readouterr()
    assert main(["--spec", str(spec), "render", "dev"]) == 2
    err = capsys.readouterr().err
    assert "deploytool-manifest.json: artifacts." in err and "not a relative path inside" in err
    assert victim.read_text() == "keep me"


def test_spec_artifacts_may_only_name_the_lock(make_project, capsys):
    spec = rendered_project(make_project)
    (spec.parent / "precious.yaml").write_text("x")
    edit_manifest(spec, lambda d: d.update({"spec_artifacts": {"precious.yaml": "0" * 64}}))
    assert main(["--spec", str(spec), "render", "dev"]) == 2
    assert "spec_artifacts.precious.yaml" in capsys.readouterr().err
    assert (spec.parent / "precious.yaml").exists()


def test_a_symlink_in_the_output_folder_is_not_followed_out(make_project):
    spec = rendered_project(make_project, "topology: {kind: per-port}\n")
    outside = spec.parent / "outside.env"
    outside.write_text("keep")
    stale = spec.parent / "deploy/dev/docker-compose.yml"
    stale.unlink()
    stale.symlink_to(outside)
    (spec.parent / "environments/dev.yaml").write_text("topology: {kind: per-port}\ntargets: [local]\n")
    assert main(["--spec", str(spec), "render", "dev"]) == 0
    assert outside.read_text() == "keep"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda d: d.update({"version": 9}), "version"),
        (lambda d: d.update({"surprise": 1}), "surprise"),
        (lambda d: d["services"][0].update({"port": "80; rm -rf /"}), "services.0.port"),
        (lambda d: d["services"][0].update({"local_url": "http://evil.example:1"}), "services.0.local_url"),
        (lambda d: d.pop("probe_targets"), "probe_targets"),
    ],
)
def test_up_and_probe_refuse_a_bad_manifest_naming_file_and_field(make_project, capsys, change, field):
    from deploytool.output import read_manifest
    from deploytool.run.manifest import load_manifest

    spec = rendered_project(make_project)
    path = edit_manifest(spec, change)
    for reader in (read_manifest, load_manifest):
        with pytest.raises(Exception) as caught:
            reader(path.parent)
        assert type(caught.value).__name__ == "UserError"
        assert str(path) in str(caught.value) and field in str(caught.value)


def test_an_older_manifest_is_replaced_without_removing_anything(make_project):
    spec = rendered_project(make_project)
    edit_manifest(spec, lambda d: d.update({"version": 1, "artifacts": {"../../victim.txt": "x"}}))
    victim = spec.parent / "victim.txt"
    victim.write_text("keep me")
    assert main(["--spec", str(spec), "render", "dev"]) == 0
    assert victim.exists()


# --- typed lock -------------------------------------------------------------------------------------------


SHARDED = "topology: {kind: sharded, max_tenants_per_shard: 2}\n"


@pytest.mark.parametrize(
    ("lock", "expected"),
    [
        ({"version": 1, "env": "dev", "assignments": {"1": 1000000000}}, "assignments.1: shard 1000000000"),
        ({"version": 1, "env": "dev", "assignments": {"1": 99}}, "assignments.1: shard 99"),
        ({"version": 1, "env": "dev", "assignments": {"1": True}}, "assignments.1"),
        ({"version": 1, "env": "dev", "assignments": {"1": 0}}, "assignments.1"),
        ({"version": 1, "env": "prod", "assignments": {"1": 1}}, "env: the lock is for environment 'prod'"),
        ({"version": 2, "env": "dev", "assignments": {"1": 1}}, "version"),
        ({"env": "dev", "assignments": {"1": 1}}, "version"),
        ({"version": 1, "env": "dev", "assignments": {"../x": 1}}, "assignments"),
        ([1, 2], "(top level)"),
    ],
)
def test_a_bad_lock_is_exit_2_naming_file_and_entry(make_project, capsys, lock, expected):
    spec = make_project({"dev": SHARDED})
    (spec.parent / "environments/dev.lock.json").write_text(json.dumps(lock))
    assert main(["--spec", str(spec), "validate", "dev"]) == 2
    err = capsys.readouterr().err
    assert "environments/dev.lock.json" in err and expected in err
    assert "Traceback" not in err


def test_a_good_lock_round_trips(make_project):
    spec = make_project({"dev": SHARDED})
    assert main(["--spec", str(spec), "render", "dev"]) == 0
    lock = json.loads((spec.parent / "environments/dev.lock.json").read_text())
    assert lock == {"assignments": {"1": 1, "2": 1, "3": 2}, "env": "dev", "version": 1}
    assert main(["--spec", str(spec), "render", "dev", "--check"]) == 0


# --- runners ----------------------------------------------------------------------------------------------


def test_runners_are_chosen_through_the_target_registry():
    from deploytool import run

    for name, runner in run.RUNNERS.items():
        target = targets.target_of_runner(name)
        assert target is not None and targets.plugin(target).runner == name == runner.name
        for method in ("up", "down", "status", "logs"):
            assert callable(getattr(runner, method))


def test_up_names_the_target_a_runner_needs(make_project, capsys):
    spec = make_project({"dev": "targets: [compose]\n"})
    assert main(["--spec", str(spec), "up", "dev", "--runner", "procfile"]) == 2
    assert "--runner procfile needs the 'local' target" in capsys.readouterr().err
    assert main(["--spec", str(spec), "up", "dev", "--runner", "helm"]) == 2
    assert "--runner: expected one of compose, procfile" in capsys.readouterr().err


def test_import_graph_has_no_cycle_between_runners():
    runners = ast.parse((REPO / "deploytool/run/compose.py").read_text())
    supervisor = ast.parse((REPO / "deploytool/run/supervisor.py").read_text())

    def imports(tree: ast.Module) -> set[str]:
        return {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}

    assert "deploytool.run.supervisor" not in imports(runners)
    assert "deploytool.run.compose" not in imports(supervisor)


# --- env values: every target spells every kind ---------------------------------------------------------


def test_mypy_names_a_target_that_misses_a_kind_of_env_value(tmp_path):
    """Each target dispatches env values with `match` + `assert_never`: drop one kind's case from a built-in
    target and mypy (strict, as CI runs it) names the kind left unhandled, instead of a silent None."""
    import re
    import subprocess
    import sys

    sources = {
        "local": (REPO / "deploytool/targets/local.py", "ProxyHops"),
        "compose": (REPO / "deploytool/targets/compose.py", "RedisUrl"),
        "railway": (REPO / "deploytool/targets/railway.py", "AuthRoot"),
    }
    for name, (path, kind) in sources.items():
        text = path.read_text()
        case = re.search(rf"\n( +)case {kind}\(\):\n(\1 +.*\n)+", text)
        assert case is not None, f"{path}: no `case {kind}():` (env values dispatched by match?)"
        (tmp_path / f"broken_{name}.py").write_text(text[: case.start()] + "\n" + text[case.end() :])
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--ignore-missing-imports", "--no-incremental", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    for name, (_, kind) in sources.items():
        assert re.search(rf"broken_{name}\.py:\d+: error: .*assert_never.*{kind}", result.stdout), result.stdout


def test_a_plugin_target_reaches_the_json_schema_and_the_list_of_targets(nomad, capsys):
    """`Target.add` registers a name (no enum internals written): `list(Target)`, the spec's validation and
    `deploytool schema` all know the plugin's target, and forget it with no trace in the built-in ones."""
    assert nomad.target in list(Target) and "nomad" in Target
    assert Target("nomad") is nomad.target and Target("local") is Target.local
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert "nomad" in schema["properties"]["targets"]["items"]["enum"]
    assert [t.value for t in Target][:3] == ["local", "compose", "railway"]
