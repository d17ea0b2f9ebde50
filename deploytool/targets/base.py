"""What a target is: one object that spells the plan's symbolic values, renders, checks and describes.

A target (local processes, Compose, Railway, or a plugin's own) is one module under `deploytool/targets/`
holding one `TargetPlugin` subclass, registered in `deploytool.targets`. Nothing outside that module
names the target: the pipeline, the checks, `show` and `up` ask the registry.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

from deploytool.plan.model import EnvValue, Finding, Plan, ServiceInstance
from deploytool.render.artifacts import Artifact, RenderContext
from deploytool.render.manifest import ManifestProcess
from deploytool.spec.model import Target


class TargetPlugin(ABC):
    target: ClassVar[Target]
    # Name of the runner (`deploytool up --runner NAME`) that runs this target's output here, if any.
    runner: ClassVar[str | None] = None
    # True when the rendered files read secret values from the output folder's `.secrets.env`.
    uses_secrets_file: ClassVar[bool] = False
    # True when this target's consumer check is slow (a separate program reading every service): `render_all`
    # renders such a target before the others, so `validate` starts its consumer first and the rest of the
    # rendering happens while it reads.
    slow_consumer: ClassVar[bool] = False

    @abstractmethod
    def spell(self, plan: Plan, value: EnvValue, ctx: RenderContext) -> str | None:
        """The text this target gives an env value; None: not written (the runner injects it)."""

    @abstractmethod
    def render(self, plan: Plan, ctx: RenderContext) -> list[Artifact]:
        """Every file of this target, in memory. Pure: no disk, no network."""

    def plan_findings(self, plan: Plan) -> Iterator[Finding]:
        """This target's rules about the plan itself (cheap; run before anything is written or started)."""
        return iter(())

    def check(self, plan: Plan, ctx: RenderContext, artifacts: Mapping[str, Artifact], deep: bool) -> list[Finding]:
        """Findings of this target's real consumer on the rendered files (`deep`: also the slow ones).

        `artifacts` holds this target's own files at least: `validate` calls it as soon as they are rendered,
        before the other targets' files and the manifest exist."""
        return []

    def describe(self, plan: Plan, value: EnvValue, ctx: RenderContext) -> Any:
        """How `show` presents a value for this target (already spelled; secrets stay references)."""
        return self.spell(plan, value, ctx)

    def hosts(self, plan: Plan, svc: ServiceInstance) -> tuple[str, ...] | None:
        """Host names other services reach `svc` at, for the routing check; None: not checkable offline."""
        return None

    def process(self, plan: Plan, svc: ServiceInstance, ctx: RenderContext) -> ManifestProcess | None:
        """How a local runner starts `svc` (command, plain variables), when this target's output runs as processes."""
        return None


def build_source_findings(plan: Plan, root: Path) -> Iterator[Finding]:
    """For targets that build images from the user's folders: each service's source folder exists and
    holds the Dockerfile the spec names (a spec for another project with empty folders must not pass)."""
    seen: set[str] = set()
    for svc in plan.services:
        if svc.spec_name in seen:
            continue
        seen.add(svc.spec_name)
        where = f"services.{svc.spec_name}"
        if svc.source is None:
            continue  # a public image
        if not (root / svc.source).is_dir():
            yield Finding(
                "SOURCE_MISSING",
                f"{where}.source: folder {svc.source!r} does not exist (the build context)",
                field=f"{where}.source",
            )
        elif not (root / svc.source / svc.dockerfile).is_file():
            yield Finding(
                "DOCKERFILE_MISSING",
                f"{where}.dockerfile: {svc.source}/{svc.dockerfile} does not exist",
                field=f"{where}.dockerfile" if svc.dockerfile != "Dockerfile" else f"{where}.source",
            )
