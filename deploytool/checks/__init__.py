"""Stage 4: named cross-checks over the plan, then each target's rendered files through its real consumer."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from deploytool.checks.plan_checks import check_plan
from deploytool.plan.model import Finding, Plan
from deploytool.render.artifacts import Artifact, RenderContext
from deploytool.targets import plugins_of

__all__ = ["check_artifacts", "check_plan", "start_artifact_checks"]


def check_artifacts(plan: Plan, ctx: RenderContext, artifacts: list[Artifact], deep: bool = True) -> list[Finding]:
    """Every target's consumer checks on its files; `deep` adds the slow ones (Compose v2 itself)."""
    return start_artifact_checks(plan, ctx, artifacts, deep)()


def start_artifact_checks(
    plan: Plan, ctx: RenderContext, artifacts: list[Artifact], deep: bool = True
) -> Callable[[], list[Finding]]:
    """`check_artifacts`, started: returns what collects the findings (in target order).

    With `deep`, the targets' checks run at once, each in a thread, from now on: the slow consumers are
    other processes (Compose v2 is a Go binary), so they work while the caller and the other targets do."""
    by_path: Mapping[str, Artifact] = {a.path: a for a in artifacts}
    plugins = plugins_of(plan)
    if not deep or len(plugins) < 2:
        return lambda: [finding for each in plugins for finding in each.check(plan, ctx, by_path, deep)]
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=len(plugins), thread_name_prefix="check")
    running = [pool.submit(each.check, plan, ctx, by_path, deep) for each in plugins]

    def collect() -> list[Finding]:
        try:
            return [finding for future in running for finding in future.result()]
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    return collect
