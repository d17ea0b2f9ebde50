"""Stage 4: named cross-checks over the plan, then each target's rendered files through its real consumer."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from deploytool.checks.plan_checks import check_plan
from deploytool.plan.model import Finding, Plan
from deploytool.render.artifacts import Artifact, RenderContext
from deploytool.targets import TargetPlugin, plugins_of

if TYPE_CHECKING:
    from deploytool.spec.model import Target
    from deploytool.targets.base import Consumer

__all__ = ["check_artifacts", "check_plan", "start_artifact_checks"]


def check_artifacts(plan: Plan, ctx: RenderContext, artifacts: list[Artifact], deep: bool = True) -> list[Finding]:
    """Every target's consumer checks on its files; `deep` adds the slow ones (Compose v2 itself)."""
    return start_artifact_checks(plan, ctx, artifacts, deep)()


def start_artifact_checks(
    plan: Plan,
    ctx: RenderContext,
    artifacts: list[Artifact],
    deep: bool = True,
    started: Mapping[Target, Consumer] | None = None,
) -> Callable[[], list[Finding]]:
    """`check_artifacts`, started: returns what collects the findings (in target order).

    With `deep`, the targets' checks run at once, each in a thread, from now on: the slow consumers are
    other processes (Compose v2 is a Go binary), so they work while the caller and the other targets do.
    `started` holds the consumers the targets started early (`TargetPlugin.start_consumer`)."""
    by_path: Mapping[str, Artifact] = {a.path: a for a in artifacts}
    plugins = plugins_of(plan)
    early = started or {}
    if not deep or len(plugins) < 2:
        return lambda: [
            finding for each in plugins for finding in each.check(plan, ctx, by_path, deep, early.get(each.target))
        ]
    import threading  # plain threads: concurrent.futures would import logging for nothing

    results: list[list[Finding] | BaseException] = [[] for _ in plugins]

    def run(index: int, each: TargetPlugin) -> None:
        try:
            results[index] = each.check(plan, ctx, by_path, deep, early.get(each.target))
        except BaseException as exc:  # handed to the caller, who raises it
            results[index] = exc

    threads = [
        threading.Thread(target=run, args=(i, each), name=f"check-{each.target.value}", daemon=True)
        for i, each in enumerate(plugins)
    ]
    for thread in threads:
        thread.start()

    def collect() -> list[Finding]:
        for thread in threads:
            thread.join()
        findings: list[Finding] = []
        for result in results:
            if isinstance(result, BaseException):
                raise result
            findings += result
        return findings

    return collect
