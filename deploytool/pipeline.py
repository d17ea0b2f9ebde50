"""The pipeline as plain functions: load -> plan -> render -> check/write. The CLI only calls these."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from deploytool.checks import ArtifactChecks, check_plan, start_artifact_checks
from deploytool.errors import CheckFailed, UserError
from deploytool.plan import Plan, build_plan
from deploytool.plan.lock import lock_path, parse_lock
from deploytool.plan.model import Finding
from deploytool.render import Artifact, RenderContext
from deploytool.render.manifest import MANIFEST, Manifest, secret_names
from deploytool.spec.model import Target, Topology
from deploytool.targets import plugin, plugins_of, registered_targets, render_all
from deploytool.typed import Record, parse, record, replace

if TYPE_CHECKING:
    from deploytool.output import FileChange
    from deploytool.spec.load import LoadedSpec
    from deploytool.targets.base import Consumer

DEFAULT_OUT = "deploy"


@record(kw_only=False)
class Rendered(Record):
    loaded: LoadedSpec
    plan: Plan
    ctx: RenderContext
    artifacts: list[Artifact]

    @property
    def manifest(self) -> Manifest:
        path = self.ctx.in_out(MANIFEST)
        return parse(Manifest, json.loads(next(a.content for a in self.artifacts if a.path == path)))


def default_out(spec_path: Path, env_name: str) -> Path:
    return spec_path.parent / DEFAULT_OUT / env_name


def load_spec(spec_path: Path, env_name: str) -> LoadedSpec:
    # Imported here: the loader brings yaml, which `validate` imports after its consumers have started.
    from deploytool.spec.load import load_spec as load

    return load(spec_path, env_name)


def read_lock(loaded: LoadedSpec) -> dict[str, int]:
    from deploytool.spec.load import display

    path = loaded.root / lock_path(loaded.env_name)
    if not path.exists():
        return {}
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{display(path)}: cannot read: {exc}") from None
    spec = loaded.spec
    max_shard = max(len(spec.tenant_ids()), spec.topology.shards or 1)
    return parse_lock(text, display(path), loaded.env_name, max_shard)


def _plan(loaded: LoadedSpec) -> Plan:
    lock = read_lock(loaded) if loaded.spec.topology.kind is Topology.sharded else None
    return build_plan(loaded.spec, loaded.env_name, lock)


def render_environment(spec_path: Path, env_name: str, out: Path | None = None) -> Rendered:
    return _render(load_spec(spec_path, env_name), spec_path, out)[0]


def _render(
    loaded: LoadedSpec, spec_path: Path, out: Path | None, started: Mapping[Target, Consumer] | None = None
) -> tuple[Rendered, ArtifactChecks | None]:
    """The rendered environment; with `started` (validate), each target's deep checks already running."""
    plan = _plan(loaded)
    ctx = RenderContext(root=loaded.root, out=out or default_out(spec_path, loaded.env_name))
    checks = ArtifactChecks(plan, ctx, deep=True, started=started) if started is not None else None
    artifacts = render_all(plan, ctx, checks.start if checks is not None else None)
    return Rendered(loaded, plan, ctx, artifacts), checks


def validate_environment(spec_path: Path, env_name: str, out: Path | None = None) -> tuple[Rendered, list[Finding]]:
    """Render and run every check. The slow consumers start before the spec is read, so a program's own
    start-up (Compose v2: about half its time on a small file) overlaps reading, planning and rendering,
    and each target's checks start as soon as its files are rendered, while the next target renders."""
    with consumers_started() as started:
        loaded = load_spec(spec_path, env_name)
        for target, consumer in list(started.items()):
            if target not in loaded.spec.targets or not consumer.serves(loaded.spec):
                started.pop(target).cancel()
        rendered, running = _render(loaded, spec_path, out, started)
        return rendered, findings_of(rendered, running=running)


@contextmanager
def consumers_started() -> Iterator[dict[Target, Consumer]]:
    """Every registered target's early consumer (`TargetPlugin.start_consumer`); what no check took is stopped."""
    started: dict[Target, Consumer] = {}
    try:
        for target in registered_targets():
            consumer = plugin(target).start_consumer()
            if consumer is not None:
                started[target] = consumer
        yield started
    finally:
        for consumer in started.values():
            consumer.cancel()


def findings_of(
    rendered: Rendered, consumers: bool = True, deep: bool = True, running: ArtifactChecks | None = None
) -> list[Finding]:
    """Plan checks, then (with `consumers`) every target's files through its consumer (`deep`: all of them;
    `running`: the checks `validate` started while rendering)."""
    capacity = rendered.loaded.spec.topology.max_tenants_per_shard
    # The consumers start first: with `deep` they run in their own threads and processes meanwhile.
    pending = running
    if pending is None and consumers:
        pending = start_artifact_checks(rendered.plan, rendered.ctx, rendered.artifacts, deep)
    findings = check_plan(rendered.plan, capacity)
    if pending is not None:
        findings += pending.collect()
    loaded = rendered.loaded
    located = [replace(f, where=loaded.locate(f.field)) if f.field and not f.where else f for f in findings]
    return list(dict.fromkeys(located))  # two targets that build the same folder report it once


def errors(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity == "error"]


def write(rendered: Rendered) -> tuple[list[FileChange], list[str]]:
    """Write artifacts and make sure the local secrets file exists when a target reads it."""
    from deploytool.output import ensure_secrets_file, write_files  # not imported by `validate`

    changes = write_files(rendered.loaded.root, rendered.ctx.out, rendered.artifacts)
    added: list[str] = []
    if any(p.uses_secrets_file for p in plugins_of(rendered.plan)):
        added = ensure_secrets_file(rendered.ctx.out, secret_names(rendered.plan))
    return changes, added


def check(rendered: Rendered) -> list[FileChange]:
    from deploytool.output import check_files

    return check_files(rendered.loaded.root, rendered.ctx.out, rendered.artifacts)


def require_no_errors(findings: list[Finding]) -> None:
    failed = errors(findings)
    if failed:
        raise CheckFailed("\n".join(str(f) for f in failed))
