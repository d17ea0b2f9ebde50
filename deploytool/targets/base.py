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
from deploytool.render.envfile import EnvFileError, EnvVar, Unquotable, env_file_path, env_file_text, refusal
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

    def slow_check(self, plan: Plan) -> bool:
        """The same for `render`, which runs no slow consumer: True when this target's check of `plan` is likely
        slow even so (Railway: railway-sdk's evaluation of a big file, in a child interpreter), so it is
        rendered, and its check started, before the other targets render."""
        return False

    def check_is_slow(self, artifacts: Mapping[str, Artifact]) -> bool:
        """Whether `render` runs this target's check of these files in a thread of its own (a child's wait)."""
        return False

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
        """How a local runner starts `svc` (command, env file), when this target's output runs as processes."""
        return None

    def env_vars(self, plan: Plan, svc: ServiceInstance, ctx: RenderContext) -> list[EnvVar] | None:
        """Every variable `svc`'s process gets on this target, as the process sees it (not as the target's own
        file spells it), secrets and runner-provided values as notes. None: the target runs no processes (it
        gets no env files, and `deploytool env` refuses it)."""
        return None

    def env_title(self, plan: Plan, svc: ServiceInstance) -> list[str]:
        """The first lines of `svc`'s env file on this target: what runs with it."""
        return [f"{svc.name} ({self.target.value}): the variables of this process."]


ENV_FILE_DIALECT = [
    "One dialect, read alike by docker compose (--env-file, env_file:), python-dotenv, node --env-file",
    "and systemd EnvironmentFile=.",
]


def render_env_files(target: TargetPlugin, plan: Plan, ctx: RenderContext) -> list[Artifact]:
    """`env/<target>/<service>.env` for every process of a target that runs processes (none otherwise).

    EnvFileError (with the spec field, when the spec holds the value) for a value no quoting carries."""
    files: list[Artifact] = []
    for svc in plan.services:
        variables = target.env_vars(plan, svc, ctx)
        if variables is None:
            return []
        text = env_file_of(target, plan, svc, variables)
        files.append(Artifact(ctx.out_prefix + env_file_path(target.target.value, svc.name), text))
    return files


def env_file_of(target: TargetPlugin, plan: Plan, svc: ServiceInstance, variables: list[EnvVar]) -> str:
    """The text of `svc`'s env file on `target` with these variables (EnvFileError: a value no quoting carries)."""
    title = [
        *target.env_title(plan, svc),
        f"Generated by deploytool from deploytool.yaml ({plan.env_name}); do not edit: run "
        f"`deploytool render {plan.env_name}`.",
        *ENV_FILE_DIALECT,
    ]
    try:
        return env_file_text(title, variables)
    except Unquotable as exc:
        bad = next(v for v in variables if v.value is not None and refusal(v.value) is not None)
        raise EnvFileError(svc.name, target.target.value, bad, str(exc)) from None


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
