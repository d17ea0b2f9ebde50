"""Stage 3: render a Plan to files in memory. Nothing here touches the disk."""

from __future__ import annotations

import json

from deploytool.plan.model import Plan
from deploytool.render.artifacts import Artifact, RenderContext
from deploytool.render.compose import render_compose
from deploytool.render.local import render_env_example, render_local
from deploytool.render.manifest import render_manifest
from deploytool.render.railway import RAILWAY_FILE, render_railway, render_railway_legacy

__all__ = ["Artifact", "RenderContext", "lock_path", "render_all"]


def lock_path(env_name: str) -> str:
    return f"environments/{env_name}.lock.json"


def render_all(plan: Plan, ctx: RenderContext, railway_plans: list[Plan]) -> list[Artifact]:
    """Every artifact of one environment, sorted by path; the manifest last-computed over the rest."""
    artifacts: list[Artifact] = []
    targets = set(plan.targets)
    if "local" in targets:
        artifacts += render_local(plan, ctx)
    if "compose" in targets:
        artifacts += render_compose(plan, ctx)
    if "railway" in targets:
        artifacts.append(render_railway(railway_plans or [plan]))
        if plan.railway.legacy_config:
            artifacts += render_railway_legacy(plan, ctx)
    artifacts.append(render_env_example(plan, ctx))
    if plan.shard_lock is not None:
        lock = {"version": 1, "env": plan.env_name, "assignments": plan.shard_lock}
        artifacts.append(Artifact(lock_path(plan.env_name), json.dumps(lock, indent=2, sort_keys=True) + "\n"))
    # railway.py is shared by every Railway environment: hashing it here would make rendering one
    # environment mark the others' manifests stale. `render --check` still compares its content.
    own = [a for a in artifacts if a.path != RAILWAY_FILE]
    artifacts.append(render_manifest(plan, ctx, own))
    return sorted(artifacts, key=lambda a: a.path)
