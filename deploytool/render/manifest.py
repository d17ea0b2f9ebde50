"""The manifest: what `up`, `down`, `probe` and stale-file detection read back from an output folder.

One pydantic model, written with the model and read back with `model_validate`, so a hand-edited or
foreign file is refused with the field that is wrong instead of steering `render` or `up` elsewhere.
Artifact paths are relative, normalised and stay inside the output folder (`artifacts`) or are the
environment's shard lock beside the spec (`spec_artifacts`): nothing else can ever be named for removal.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from deploytool.plan.model import Plan, Role
from deploytool.render.artifacts import Artifact, RenderContext
from deploytool.safeio import whole_number
from deploytool.spec.model import ENV_VAR_PATTERN, SERVICE_NAME_PATTERN, TENANT_ID_PATTERN, Stage, Topology

MANIFEST = "deploytool-manifest.json"
MANIFEST_VERSION = 4
# Taken from the runner's environment when set: DATABASE_URL (else SQLite), REDIS_URL (the Redis add-on).
PASSTHROUGH = ("DATABASE_URL", "REDIS_URL")
LOCK_PATH = re.compile(r"^environments/[a-z][a-z0-9_-]{0,39}\.lock\.json$")
PROJECT_FILES = frozenset({".railway/railway.py"})  # beside the spec, shared by every environment
SHA256 = r"^[0-9a-f]{64}$"


def _inside(path: str) -> str:
    """A relative, normalised posix path that cannot leave the folder it is relative to.

    No part empty (so no leading, trailing or double slash), `.` or `..`: such a path is already what
    PurePosixPath would normalise it to (checked on strings: a manifest lists 2,000 env files)."""
    if not path or "\\" in path or "\0" in path or any(part in ("..", ".", "") for part in path.split("/")):
        raise ValueError(f"{path!r} is not a relative path inside the folder (no '..', no absolute path)")
    return path


def _lock_path(path: str) -> str:
    if not LOCK_PATH.match(path) and path not in PROJECT_FILES:
        raise ValueError(
            f"{path!r}: only the environment's shard lock (environments/ENV.lock.json) and the project's "
            f"{', '.join(sorted(PROJECT_FILES))} may be listed"
        )
    return path


def _relative(path: str) -> str:
    """A relative posix path, `..` allowed (the project root seen from the output folder), never absolute."""
    if not path or "\\" in path or "\0" in path or PurePosixPath(path).is_absolute() or "//" in path:
        raise ValueError(f"{path!r} is not a relative path (the project root as seen from the output folder)")
    return path


InsidePath = Annotated[str, AfterValidator(_inside)]
RelativePath = Annotated[str, AfterValidator(_relative)]
LockPath = Annotated[str, AfterValidator(_lock_path)]
EnvName = Annotated[str, Field(pattern=ENV_VAR_PATTERN)]
ServiceName = Annotated[str, Field(pattern=SERVICE_NAME_PATTERN)]
TenantId = Annotated[str, Field(pattern=TENANT_ID_PATTERN)]
Sha256 = Annotated[str, Field(pattern=SHA256)]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ManifestProcess(Model):
    """How the procfile runner starts a service (only when the environment has a process target): its
    command and its env file, relative to the output folder (the variables are there, not copied here;
    secrets and passthrough names are added at start, never written)."""

    command: str = Field(min_length=1)
    env_file: InsidePath
    health_command: str | None = None  # from the project root, with the service's environment: exit 0 = healthy


class ManifestService(Model):
    name: ServiceName
    role: Role
    port: Annotated[int | None, BeforeValidator(whole_number)] = Field(None, ge=1, le=65535)  # None: no listener
    health_path: str | None = Field(pattern=r"^/", default=None)
    health_command: str | None = None  # worker, generic: its container healthcheck (no URL to ask)
    tenants: list[TenantId]
    # where the runners on this machine expose it
    local_url: str | None = Field(None, pattern=r"^http://127\.0\.0\.1:\d+$")
    public_url: str | None = Field(pattern=r"^https?://[^\s@]+$", default=None)
    process: ManifestProcess | None = None
    secrets: list[EnvName]
    passthrough: list[EnvName]

    @property
    def health_url(self) -> str | None:
        return None if self.health_path is None or self.local_url is None else self.local_url + self.health_path

    @property
    def command(self) -> str | None:
        """The procfile runner's command; None when the environment has no target that runs processes."""
        return self.process.command if self.process else None

    @property
    def env_file(self) -> str | None:
        """The process's env file, relative to the output folder; None without a target that runs processes."""
        return self.process.env_file if self.process else None


class ProbeTargetEntry(Model):
    id: str = Field(min_length=1)
    kind: Literal["health", "qr"]
    service: ServiceName
    path: str = Field(pattern=r"^/")
    tenant: TenantId | None = None
    via: ServiceName | None = None
    auth: EnvName | None = None


class TenantRoute(Model):
    tenant: TenantId
    service: ServiceName


class Manifest(Model):
    version: Annotated[Literal[4], BeforeValidator(whole_number)]
    project: ServiceName
    environment: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,39}$")]
    stage: Stage
    topology: Topology
    targets: list[str]
    root: RelativePath  # the project root as seen from the output folder (processes run there)
    services: list[ManifestService] = Field(min_length=1)
    tenants: list[TenantRoute]
    secrets: list[EnvName]
    probe_targets: list[ProbeTargetEntry]
    artifacts: dict[InsidePath, Sha256]  # relative to the output folder
    spec_artifacts: dict[LockPath, Sha256] = Field(default_factory=dict)  # relative to the spec's folder

    def service(self, name: str) -> ManifestService | None:
        return next((s for s in self.services if s.name == name), None)


class ManifestFiles(BaseModel):
    """Only the files an older manifest (version 2: env files per process; 3: variables in the manifest)
    lists, for stale-file removal: the same path rules, so an upgrade removes what the new layout no longer
    writes (version 2's env files in their places are rewritten, not removed)."""

    # built on first use: only a folder an older deploytool wrote is read with it
    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)
    version: Annotated[Literal[2, 3], BeforeValidator(whole_number)]
    artifacts: dict[InsidePath, Sha256]
    spec_artifacts: dict[LockPath, Sha256] = Field(default_factory=dict)


def probe_targets(plan: Plan) -> list[ProbeTargetEntry]:
    """Every check `probe` makes: each health endpoint, each tenant's QR on its server and via flask."""
    targets: list[ProbeTargetEntry] = []
    for svc in plan.services:
        if svc.health_path:
            targets.append(
                ProbeTargetEntry(id=f"health:{svc.name}", kind="health", service=svc.name, path=svc.health_path)
            )
    for tenant, server in plan.routes:
        qr_path = plan.service(server).qr_path or "/tenants/{tenant}/qr"
        targets.append(
            ProbeTargetEntry(
                id=f"qr:{tenant}@{server}",
                kind="qr",
                service=server,
                tenant=tenant,
                path=qr_path.replace("{tenant}", tenant),
                auth="WHATSAPP_API_KEY",
            )
        )
        targets.append(
            ProbeTargetEntry(
                id=f"qr:{tenant}@{plan.web.name}",
                kind="qr",
                service=plan.web.name,
                tenant=tenant,
                via=server,
                path=f"/api/qr?user_id={tenant}",
                auth="OPS_API_KEY",
            )
        )
    return targets


def secret_names(plan: Plan) -> list[str]:
    """Every secret the environment needs, the generated Postgres password included."""
    extra = [plan.database.password_secret] if plan.database.engine == "postgres" else []
    return sorted({*plan.secrets, *extra})


def build_manifest(
    plan: Plan, ctx: RenderContext, artifacts: list[Artifact], processes: dict[str, ManifestProcess]
) -> Manifest:
    public = dict(plan.public_urls)
    services = [
        ManifestService(
            name=svc.name,
            role=svc.role,
            port=svc.port,
            health_path=svc.health_path,
            health_command=svc.health_command,
            tenants=list(svc.tenants),
            local_url=None if svc.port is None else f"http://127.0.0.1:{svc.port}",
            public_url=public.get(svc.name),
            process=processes.get(svc.name),
            secrets=list(svc.secret_names()),
            passthrough=[n for n in PASSTHROUGH if n in svc.env_dict()],
        )
        for svc in plan.services
    ]
    prefix = ctx.out_prefix
    inside = {a.path[len(prefix) :]: a.sha256 for a in artifacts if a.path.startswith(prefix)}
    beside = {a.path: a.sha256 for a in artifacts if not a.path.startswith(prefix)}
    return Manifest(
        version=MANIFEST_VERSION,
        project=plan.project,
        environment=plan.env_name,
        stage=plan.stage,
        topology=plan.topology,
        targets=[t.value for t in plan.targets],
        root=ctx.source_from_out("."),
        services=services,
        tenants=[TenantRoute(tenant=t, service=s) for t, s in plan.routes],
        secrets=secret_names(plan),
        probe_targets=probe_targets(plan),
        artifacts=dict(sorted(inside.items())),
        spec_artifacts=dict(sorted(beside.items())),
    )


def manifest_text(manifest: Manifest) -> str:
    return manifest.model_dump_json(indent=2) + "\n"


def render_manifest(
    plan: Plan, ctx: RenderContext, artifacts: list[Artifact], processes: dict[str, ManifestProcess]
) -> Artifact:
    return Artifact(ctx.in_out(MANIFEST), manifest_text(build_manifest(plan, ctx, artifacts, processes)))
