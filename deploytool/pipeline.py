"""The pipeline as plain functions: load -> plan -> render -> check/write. The CLI only calls these."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from deploytool.checks import check_artifacts, check_plan
from deploytool.errors import CheckFailed, UserError
from deploytool.output import FileChange, check_files, ensure_secrets_file, write_files
from deploytool.plan import Plan, build_plan
from deploytool.plan.model import Finding
from deploytool.render import Artifact, RenderContext, lock_path, render_all
from deploytool.render.manifest import MANIFEST
from deploytool.spec.load import LoadedSpec, available_environments, display, load_spec
from deploytool.spec.model import Target, Topology

DEFAULT_OUT = "deploy"


@dataclass(frozen=True)
class Rendered:
    loaded: LoadedSpec
    plan: Plan
    ctx: RenderContext
    artifacts: list[Artifact]
    railway_plans: list[Plan]

    @property
    def manifest_rel(self) -> str:
        return self.ctx.in_out(MANIFEST)


def default_out(spec_path: Path, env_name: str) -> Path:
    return spec_path.parent / DEFAULT_OUT / env_name


def read_lock(root: Path, env_name: str) -> dict[str, int]:
    path = root / lock_path(env_name)
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
        assignments = data["assignments"]
        if not isinstance(assignments, dict) or not all(
            isinstance(t, str) and isinstance(s, int) and s >= 1 for t, s in assignments.items()
        ):
            raise ValueError
    except (OSError, ValueError, KeyError, TypeError):
        raise UserError(
            f'{display(path)}: assignments: expected a JSON object {{"assignments": {{tenant: shard number >= 1}}}}'
        ) from None
    return dict(assignments)


def plan_environment(spec_path: Path, env_name: str) -> tuple[LoadedSpec, Plan]:
    loaded = load_spec(spec_path, env_name)
    lock = read_lock(loaded.root, env_name) if loaded.spec.topology.kind is Topology.sharded else None
    return loaded, build_plan(loaded.spec, env_name, lock)


def railway_plans(spec_path: Path, current: Plan) -> list[Plan]:
    """Every environment that targets Railway: they share one .railway/railway.py."""
    if "railway" not in current.targets:
        return []
    plans = [current]
    for name in available_environments(spec_path):
        if name == current.env_name:
            continue
        loaded = load_spec(spec_path, name)
        if Target.railway in loaded.spec.targets:
            plans.append(plan_environment(spec_path, name)[1])
    environments = [p.railway.environment for p in plans]
    duplicates = sorted({e for e in environments if environments.count(e) > 1})
    if duplicates:
        raise UserError(f"railway.environment {duplicates[0]!r} is used by more than one deploytool environment")
    return plans


def render_environment(spec_path: Path, env_name: str, out: Path | None = None) -> Rendered:
    loaded, plan = plan_environment(spec_path, env_name)
    ctx = RenderContext(root=loaded.root, out=out or default_out(spec_path, env_name))
    railway = railway_plans(spec_path, plan)
    return Rendered(loaded, plan, ctx, render_all(plan, ctx, railway), railway)


def findings_of(rendered: Rendered, consumers: bool = True, compose_binary: bool = True) -> list[Finding]:
    """Plan checks, then (with `consumers`) the rendered files through their consumers."""
    capacity = rendered.loaded.spec.topology.max_tenants_per_shard
    findings = check_plan(rendered.plan, capacity)
    if consumers:
        findings += check_artifacts(
            rendered.plan, rendered.artifacts, rendered.ctx.out_rel, rendered.railway_plans, compose_binary
        )
    return findings


def errors(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity == "error"]


def write(rendered: Rendered) -> tuple[list[FileChange], list[str]]:
    """Write artifacts (refusing when checks fail) and make sure the local secrets file exists."""
    changes = write_files(rendered.loaded.root, rendered.artifacts, rendered.manifest_rel)
    added: list[str] = []
    if {"local", "compose"} & set(rendered.plan.targets):
        names = list(rendered.plan.secrets)
        if rendered.plan.database.engine == "postgres":
            names.append(rendered.plan.database.password_secret)
        added = ensure_secrets_file(rendered.ctx.out, names)
    return changes, added


def check(rendered: Rendered) -> list[FileChange]:
    return check_files(rendered.loaded.root, rendered.artifacts, rendered.manifest_rel)


def require_no_errors(findings: list[Finding]) -> None:
    failed = errors(findings)
    if failed:
        raise CheckFailed("\n".join(str(f) for f in failed))
