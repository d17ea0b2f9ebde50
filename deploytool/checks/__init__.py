"""Stage 4: named cross-checks over the plan, then each target's rendered files through its real consumer."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType

from deploytool.checks.plan_checks import check_plan
from deploytool.plan.model import Finding, Plan
from deploytool.render.artifacts import Artifact, RenderContext
from deploytool.targets import TargetPlugin, plugins_of

__all__ = ["TargetChecks", "check_plan", "start_artifact_checks"]


class TargetChecks:
    """Each target's consumer checks, started target by target (`start`), collected in target order.

    With `deep`, each check runs in its own thread from the moment it is started; without, only a slow one
    (`check_is_slow`) does, and the others run when collected. The slow ones are other processes (Compose v2,
    a Go binary, with `deep`; railway-sdk's evaluation of a big Railway file, in a child interpreter), so they
    work while the
    caller renders the other targets and runs its own checks. `validate` and `render` start a target as soon as
    its own files are rendered (`render_all`'s `on_target`). Used as a context manager, leaving it waits for
    every check started (each reaps its own process), whatever raised meanwhile."""

    def __init__(self, plan: Plan, ctx: RenderContext, deep: bool = True) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.plan, self.ctx, self.deep = plan, ctx, deep
        self._pool = ThreadPoolExecutor(max_workers=max(1, len(plan.targets)), thread_name_prefix="check")
        self._started: dict[TargetPlugin, Callable[[], list[Finding]]] = {}  # each returns its target's findings

    def start(self, target: TargetPlugin, artifacts: list[Artifact]) -> None:
        """Check `target` on `artifacts`: at least its own files (a full render's other files may be there)."""
        by_path = {a.path: a for a in artifacts}
        args = (self.plan, self.ctx, by_path, self.deep)
        if self.deep or target.check_is_slow(by_path):
            self._started[target] = self._pool.submit(target.check, *args).result
        else:  # a quick check, run when collected: a thread would only take turns with the caller's rendering
            self._started[target] = lambda: target.check(*args)

    def collect(self) -> list[Finding]:
        """Every started target's findings, in the environment's target order (whatever order they started in)."""
        return [f for each in plugins_of(self.plan) if each in self._started for f in self._started[each]()]

    def __enter__(self) -> TargetChecks:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def start_artifact_checks(
    plan: Plan, ctx: RenderContext, artifacts: list[Artifact], deep: bool = True
) -> Callable[[], list[Finding]]:
    """Every target's consumer checks on its files (`deep` adds the slow ones, Compose v2 itself), started at once
    on every file: returns what collects the findings."""
    checks = TargetChecks(plan, ctx, deep)
    for target in plugins_of(plan):
        checks.start(target, artifacts)

    def collect() -> list[Finding]:
        with checks:
            return checks.collect()

    return collect
