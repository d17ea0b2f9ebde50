"""The target registry: one plugin per `Target`, and the render stage that asks each for its files.

register(MyTarget())       # a new target is one module with one TargetPlugin subclass
plugins_of(plan)           # the plugins of the environment's `targets`, in spec order
render_all(plan, ctx)      # every artifact of one environment (env files of the targets that run processes), the
                           # manifest last
"""

from __future__ import annotations

from collections.abc import Callable

from deploytool.errors import UserError
from deploytool.plan.model import Plan
from deploytool.render.artifacts import Artifact, RenderContext
from deploytool.render.env_example import render_env_example
from deploytool.render.lock import render_lock
from deploytool.render.manifest import ManifestProcess, render_manifest
from deploytool.spec.model import Target
from deploytool.targets.base import TargetPlugin, render_env_files
from deploytool.targets.compose import ComposeTarget
from deploytool.targets.local import LocalTarget
from deploytool.targets.railway import RailwayTarget

__all__ = [
    "TargetPlugin",
    "plugin",
    "plugins_of",
    "register",
    "render_all",
    "target_of_runner",
    "unregister",
]

_REGISTRY: dict[Target, TargetPlugin] = {}


def register(target_plugin: TargetPlugin) -> TargetPlugin:
    """Put a target in use: the spec accepts its name and `deploytool schema` lists it."""
    _REGISTRY[target_plugin.target] = target_plugin
    Target.use(target_plugin.target)
    return target_plugin


def unregister(target: Target) -> None:
    _REGISTRY.pop(target, None)
    Target.use(target, used=False)


for _builtin in (LocalTarget(), ComposeTarget(), RailwayTarget()):
    register(_builtin)


def plugin(target: Target) -> TargetPlugin:
    try:
        return _REGISTRY[target]
    except KeyError:
        raise UserError(f"target {target.value!r} has no plugin registered") from None


def plugins_of(plan: Plan) -> list[TargetPlugin]:
    return [plugin(t) for t in plan.targets]


def target_of_runner(runner: str) -> Target | None:
    """The target whose output the runner `runner` runs (`up --runner NAME`)."""
    return next((t for t, p in sorted(_REGISTRY.items()) if p.runner == runner), None)


def render_all(
    plan: Plan,
    ctx: RenderContext,
    on_target: Callable[[TargetPlugin, list[Artifact]], None] | None = None,
    deep: bool = True,
) -> list[Artifact]:
    """Every artifact of one environment, sorted by path; the manifest is computed over all the rest.

    `on_target(plugin, files)` is told each target's own files as soon as they are rendered (`validate`
    starts that target's consumer then, while the other targets render). The targets whose checks are slow
    (`deep`: `slow_consumer`, as `validate` runs them; else `slow_check(plan)`, as `render`) are rendered first."""
    plugins = plugins_of(plan)
    rendered: dict[Target, list[Artifact]] = {}
    # stable: otherwise in spec order
    for each in sorted(plugins, key=lambda p: not (p.slow_consumer if deep else p.slow_check(plan))):
        rendered[each.target] = own = each.render(plan, ctx)
        if on_target is not None:
            on_target(each, own)
    artifacts: list[Artifact] = []
    processes: dict[str, ManifestProcess] = {}
    for each in plugins:  # in spec order: the first target that runs a service as a process names it
        # each process's env file, after every target's own files: a slow consumer is already reading those
        artifacts += rendered[each.target] + render_env_files(each, plan, ctx)
        for svc in plan.services:
            entry = each.process(plan, svc, ctx)
            if entry is not None:
                processes.setdefault(svc.name, entry)
    artifacts.append(render_env_example(plan, ctx))
    lock = render_lock(plan)
    if lock is not None:
        artifacts.append(lock)
    artifacts.append(render_manifest(plan, ctx, artifacts, processes))
    return sorted(artifacts, key=lambda a: a.path)
