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

__all__ = ["ArtifactChecks", "check_plan", "start_artifact_checks"]


def start_artifact_checks(
    plan: Plan, ctx: RenderContext, artifacts: list[Artifact], deep: bool = True
) -> ArtifactChecks:
    """Every target's consumer checks on its files, started at once (`deep` adds the slow ones, Compose v2
    itself); `collect()` returns the findings."""
    checks = ArtifactChecks(plan, ctx, deep)
    for each in plugins_of(plan):
        checks.start(each, artifacts)
    return checks


class ArtifactChecks:
    """Each target's consumer checks, started one target at a time (`start`, as soon as its files exist:
    `validate` starts each while the next target renders), collected in the plan's target order.

    With `deep`, each check runs in a thread of its own from its start: the slow consumers are other
    processes (Compose v2 is a Go binary), so they work while the caller and the other targets do.
    `started` holds the consumers the targets started early (`TargetPlugin.start_consumer`)."""

    def __init__(
        self, plan: Plan, ctx: RenderContext, deep: bool, started: Mapping[Target, Consumer] | None = None
    ) -> None:
        self.plan, self.ctx, self.deep = plan, ctx, deep
        self.started = started or {}
        self.results: dict[Target, Callable[[], list[Finding]]] = {}

    def start(self, each: TargetPlugin, artifacts: list[Artifact]) -> None:
        if each.target not in self.plan.targets or each.target in self.results:
            return
        by_path: Mapping[str, Artifact] = {a.path: a for a in artifacts}
        consumer = self.started.get(each.target)
        if not self.deep:  # cheap checks: run when collected, in order
            self.results[each.target] = lambda: each.check(self.plan, self.ctx, by_path, False, consumer)
            return
        import threading  # plain threads: concurrent.futures would import logging for nothing

        outcome: list[list[Finding] | BaseException] = []

        def run() -> None:
            try:
                outcome.append(each.check(self.plan, self.ctx, by_path, True, consumer))
            except BaseException as exc:  # handed to the caller, who raises it
                outcome.append(exc)

        thread = threading.Thread(target=run, name=f"check-{each.target.value}", daemon=True)
        thread.start()

        def result() -> list[Finding]:
            thread.join()
            if isinstance(outcome[0], BaseException):
                raise outcome[0]
            return outcome[0]

        self.results[each.target] = result

    def collect(self) -> list[Finding]:
        """Every started check's findings, in the plan's target order (waiting for the running ones)."""
        return [finding for target in self.plan.targets if target in self.results for finding in self.results[target]()]
