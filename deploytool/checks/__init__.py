"""Stage 4: named cross-checks over the plan, then each target's rendered files through its real consumer."""

from __future__ import annotations

from collections.abc import Mapping

from deploytool.checks.plan_checks import check_plan
from deploytool.plan.model import Finding, Plan
from deploytool.render.artifacts import Artifact, RenderContext
from deploytool.targets import plugins_of

__all__ = ["check_artifacts", "check_plan"]


def check_artifacts(plan: Plan, ctx: RenderContext, artifacts: list[Artifact], deep: bool = True) -> list[Finding]:
    """Every target's consumer checks on its files; `deep` adds the slow ones (Compose v2 itself)."""
    by_path: Mapping[str, Artifact] = {a.path: a for a in artifacts}
    findings: list[Finding] = []
    for target_plugin in plugins_of(plan):
        findings += target_plugin.check(plan, ctx, by_path, deep)
    return findings
