"""The pipeline as plain functions: load -> plan -> render -> check/write. The CLI only calls these."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from deploytool.checks import TargetChecks, check_plan, start_artifact_checks
from deploytool.checks.plan_checks import ports_out_of_range
from deploytool.errors import CheckFailed, UserError
from deploytool.plan import Plan, build_plan
from deploytool.plan.lock import lock_path, parse_lock
from deploytool.plan.model import Finding
from deploytool.render import Artifact, RenderContext
from deploytool.render.envfile import EnvFileError
from deploytool.render.manifest import MANIFEST, Manifest
from deploytool.spec.load import LoadedSpec, available_environments, display, load_spec, local_overlay_path
from deploytool.spec.model import Topology
from deploytool.targets import plugins_of, render_all

if TYPE_CHECKING:
    from deploytool.output import FileChange

DEFAULT_OUT = "deploy"
LOCAL_OUT_SUFFIX = ".local"  # deploy/<env>.local/: a render with this checkout's overrides (git-ignored)


@dataclass(frozen=True)
class Rendered:
    loaded: LoadedSpec
    plan: Plan
    ctx: RenderContext
    artifacts: list[Artifact]

    @property
    def manifest(self) -> Manifest:
        path = self.ctx.in_out(MANIFEST)
        return Manifest.model_validate_json(next(a.content for a in self.artifacts if a.path == path))


def committed_out(spec_path: Path, env_name: str) -> Path:
    """Where the committed spec's artifacts of ENV go: `deploy/<env>/`, what CI checks and Railway reads."""
    return spec_path.parent / DEFAULT_OUT / env_name


def local_out(spec_path: Path, env_name: str) -> Path:
    """Where a render with the local overlay or a `--set` goes: never over the committed files."""
    return spec_path.parent / DEFAULT_OUT / f"{env_name}{LOCAL_OUT_SUFFIX}"


def default_out(spec_path: Path, env_name: str) -> Path:
    """The folder the run side reads (ps, logs, restart, run, down, tenants): this checkout's local render
    while its overlay exists or it runs, else the committed one."""
    local = local_out(spec_path, env_name)
    if (local / MANIFEST).is_file() and (
        local_overlay_path(spec_path, env_name).is_file() or (local / ".run" / "state.json").is_file()
    ):
        return local
    return committed_out(spec_path, env_name)


def _out_for(loaded: LoadedSpec, spec_path: Path, out: Path | None) -> Path:
    if out is not None:
        return out
    return local_out(spec_path, loaded.env_name) if loaded.overrides else committed_out(spec_path, loaded.env_name)


def peer_plans(spec_path: Path) -> Callable[[], Mapping[str, Plan]]:
    """Every environment of the spec, planned from the committed files alone, computed on first call."""

    @cache
    def plans() -> Mapping[str, Plan]:
        return {env: plan_environment(spec_path, env, local=False)[1] for env in available_environments(spec_path)}

    return plans


def read_lock(loaded: LoadedSpec) -> dict[str, int]:
    from deploytool.safeio import read_text

    path = loaded.root / lock_path(loaded.env_name)
    text = read_text(Path(display(path)), "keeps the shard lock")  # no link followed, no FIFO waited on
    if text is None:
        return {}
    spec = loaded.spec
    max_shard = max(len(spec.tenant_ids()), spec.topology.shards or 1)
    return parse_lock(text, display(path), loaded.env_name, max_shard)


def plan_environment(
    spec_path: Path,
    env_name: str,
    sets: Sequence[str] = (),
    local: bool = True,
    lock: Mapping[str, int] | None = None,
) -> tuple[LoadedSpec, Plan]:
    """`local`: merge this checkout's `environments/<env>.local.yaml` (false: the committed spec alone).
    `lock`: plan with this shard assignment instead of the lock file's (`tenants move`)."""
    loaded = load_spec(spec_path, env_name, sets, local)
    if lock is None and loaded.spec.topology.kind is Topology.sharded:
        lock = read_lock(loaded)
    plan = build_plan(loaded.spec, env_name, lock)
    out_of_range = ports_out_of_range(plan)  # before rendering: no target, nor the manifest, holds such a port
    if out_of_range:
        raise UserError("\n".join(str(replace(f, where=loaded.locate(f.field))) for f in out_of_range))
    return loaded, plan


def render_environment(
    spec_path: Path,
    env_name: str,
    out: Path | None = None,
    sets: Sequence[str] = (),
    local: bool = True,
    lock: Mapping[str, int] | None = None,
) -> Rendered:
    """`sets`: `--set PATH=VALUE` arguments, merged after the overlays (and the local overlay, if any, unless
    `local` is false). With either applied, the default output folder is `deploy/<env>.local/`. `lock`: a shard
    assignment to plan with instead of the lock file's."""
    loaded, plan = plan_environment(spec_path, env_name, sets, local, lock)
    ctx = RenderContext(root=loaded.root, out=_out_for(loaded, spec_path, out), peers=peer_plans(spec_path))
    with located_env_errors(loaded):
        return Rendered(loaded, plan, ctx, render_all(plan, ctx))


@contextmanager
def located_env_errors(loaded: LoadedSpec) -> Iterator[None]:
    """A value no env file quoting carries is a spec error at the line that set it (exit 2)."""
    try:
        yield
    except EnvFileError as exc:
        where = loaded.locate(exc.var.field) + ": " if exc.var.field else ""
        raise UserError(f"{where}{exc}") from None


def validate_environment(
    spec_path: Path,
    env_name: str,
    out: Path | None = None,
    sets: Sequence[str] = (),
    local: bool = True,
    deep: bool = True,
) -> tuple[Rendered, list[Finding]]:
    """`render_environment`, then `findings_of` with every consumer (`deep`: the slow ones too, as `validate`;
    without, what `render` checks); each target's consumer starts as soon as that target's own files are
    rendered (Compose reads a 1,000-service file, and a child interpreter evaluates the Railway file, while the
    env files and the manifest are rendered)."""
    loaded, plan = plan_environment(spec_path, env_name, sets, local)
    ctx = RenderContext(root=loaded.root, out=_out_for(loaded, spec_path, out), peers=peer_plans(spec_path))
    with TargetChecks(plan, ctx, deep) as checks, located_env_errors(loaded):
        rendered = Rendered(loaded, plan, ctx, render_all(plan, ctx, on_target=checks.start, deep=deep))
        return rendered, _findings(rendered, checks.collect)


def findings_of(rendered: Rendered, consumers: bool = True, deep: bool = True) -> list[Finding]:
    """Plan checks, then (with `consumers`) every target's files through its consumer (`deep`: all of them)."""
    # The consumers start first: with `deep` they run in their own threads and processes meanwhile.
    pending = start_artifact_checks(rendered.plan, rendered.ctx, rendered.artifacts, deep) if consumers else None
    return _findings(rendered, pending)


def _findings(rendered: Rendered, consumers: Callable[[], list[Finding]] | None) -> list[Finding]:
    """The plan checks, then what `consumers` collects; each finding placed at its spec line, once."""
    findings = check_plan(rendered.plan, rendered.loaded.spec.topology.max_tenants_per_shard)
    if consumers is not None:
        findings += consumers()
    loaded = rendered.loaded
    located = [replace(f, where=loaded.locate(f.field)) if f.field and not f.where else f for f in findings]
    return list(dict.fromkeys(located))  # two targets that build the same folder report it once


def errors(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity == "error"]


def write(rendered: Rendered) -> tuple[list[FileChange], list[str]]:
    """Write artifacts and make sure the local secrets file exists when a target reads it."""
    from deploytool.output import ensure_secrets_file, write_files  # only the commands that write pay for it

    changes = write_files(rendered.loaded.root, rendered.ctx.out, rendered.artifacts)
    added: list[str] = []
    if any(p.uses_secrets_file for p in plugins_of(rendered.plan)):
        # values only for deploytool's own secrets: a team's own (a Stripe key) is theirs to set
        added = ensure_secrets_file(rendered.ctx.out, rendered.plan.generated_secrets)
    return changes, added


def check(rendered: Rendered) -> list[FileChange]:
    from deploytool.output import check_files

    return check_files(rendered.loaded.root, rendered.ctx.out, rendered.artifacts)


def require_no_errors(findings: list[Finding]) -> None:
    failed = errors(findings)
    if failed:
        raise CheckFailed("\n".join(str(f) for f in failed))
