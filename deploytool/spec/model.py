"""The spec's shape, as typed records: unknown keys, wrong types and broken rules are rejected here."""

from __future__ import annotations

import re
from enum import Enum
from typing import Annotated, Any, Literal

from deploytool.typed import Record, Rule, field, record

TENANT_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
SERVICE_NAME_PATTERN = r"^[a-z][a-z0-9-]{0,39}$"
ENV_VAR_PATTERN = r"^[A-Z_][A-Z0-9_]*$"

Port = Annotated[int, Rule(ge=1, le=65535)]
TenantId = Annotated[str, Rule(pattern=TENANT_ID_PATTERN)]


class ServiceKind(str, Enum):
    flask = "flask"  # the web app: exactly one
    whatsapp = "whatsapp"  # the WhatsApp server, one process per tenant or shard: exactly one
    worker = "worker"  # another process of an app's image with its own start command (a queue worker)
    generic = "generic"  # anything else: your own Dockerfile or a public image


class Addon(str, Enum):
    """Managed services the targets provide (Railway's plugins, a container in compose)."""

    redis = "redis"


class Topology(str, Enum):
    per_port = "per-port"
    shared = "shared"
    sharded = "sharded"


class Stage(str, Enum):
    development = "development"
    production = "production"


class Target(str, Enum):
    """Where an environment's artifacts go. The built-in ones; `Target.add` names a plugin's own target.

    Each target's behaviour lives in one module of `deploytool/targets/` (see its registry)."""

    local = "local"
    compose = "compose"
    railway = "railway"

    @classmethod
    def add(cls, name: str) -> Target:
        """A target name for a plugin outside this file (a new target is one module, not an enum edit)."""
        if not re.match(r"^[a-z][a-z0-9-]{0,39}$", name):
            raise ValueError(f"target name {name!r}: expected lowercase letters, digits and dashes")
        existing = cls._value2member_map_.get(name)
        if existing is not None:
            return existing  # type: ignore[return-value]
        member = str.__new__(cls, name)
        member._name_ = name
        member._value_ = name
        cls._value2member_map_[name] = member
        return member

    @classmethod
    def _missing_(cls, value: object) -> Target | None:
        # `Target(name)` finds a name a plugin added after the class was built
        found = cls._value2member_map_.get(value) if isinstance(value, str) else None
        return found  # type: ignore[return-value]


def _absolute_path(value: str | None) -> None:
    if value is not None and not value.startswith("/"):
        raise ValueError("must start with '/'")


def _env_names(value: dict[str, str]) -> None:
    for name in value:
        if not re.match(ENV_VAR_PATTERN, name):
            raise ValueError(f"{name!r} is not an environment variable name (expected {ENV_VAR_PATTERN})")


def _unique_items(value: list[str]) -> None:
    if len(set(value)) != len(value):
        raise ValueError("items must be unique")


@record
class ServiceSpec(Record):
    kind: ServiceKind = field(
        doc="flask (the web app), whatsapp (the WhatsApp server), worker (another process of an app's "
        "image), generic (your own Dockerfile or a public image)."
    )
    source: str | None = field(
        default=None, doc="Folder of the service's code, relative to the spec file (the build context)."
    )
    image: str | None = field(
        default=None, pattern=r"^[a-z0-9][a-z0-9._/:@-]*$", doc="generic: a public image instead of `source`."
    )
    port: Port | None = field(
        default=None, doc="Listen port (flask and whatsapp: required; for WhatsApp the first port of the range)."
    )
    health_path: str | None = field(
        default="/health",
        check=_absolute_path,
        doc="Health endpoint; null disables healthchecks (worker, generic: off unless set).",
    )
    health_command: str | None = field(
        default=None, doc="generic: the container's healthcheck command (images differ in what they ship)."
    )
    qr_path: str = field(
        default="/tenants/{tenant}/qr", check=_absolute_path, doc="Per-tenant QR endpoint, `{tenant}` is replaced."
    )
    start: str | None = field(default=None, doc="Start command inside the service's own folder (container/Railway).")
    local_start: str | None = field(default=None, doc="Start command from the project root when run as a process.")
    pre_deploy: str | None = field(default=None, doc="Command run before each deploy (migrations).")
    dockerfile: str = field(default="Dockerfile", doc="Dockerfile path inside `source`.")
    replicas: int = field(default=1, ge=1, le=200, doc="Copies of the web app; a WhatsApp server needs exactly 1.")
    volume: bool = field(
        default=True, doc="A persistent volume: WhatsApp sessions (default on); generic: off unless set."
    )
    volume_path: str = field(
        default="/data", check=_absolute_path, doc="generic: where the volume is mounted in the container."
    )
    driver: Literal["baileys", "sandbox"] = field(default="baileys", doc="WhatsApp driver (whatsapp only).")
    max_tenants: int | None = field(default=None, ge=1, doc="MAX_TENANTS of a multi-tenant WhatsApp server.")
    env: dict[str, str] = field(factory=dict, check=_env_names, doc="Extra plain variables (never secrets).")

    @classmethod
    def _prepare(cls, data: dict[str, Any]) -> dict[str, Any]:
        # A worker or another image has no /health or volume of ours unless the spec says so.
        if data.get("kind") in ("worker", "generic"):
            data = {"health_path": None, "volume": False, **data}
        return data

    def _check(self) -> None:
        kind = self.kind
        if kind in (ServiceKind.flask, ServiceKind.whatsapp, ServiceKind.worker) and self.source is None:
            raise ValueError(f"a {kind.value} service needs `source` (its code folder)")
        if kind in (ServiceKind.flask, ServiceKind.whatsapp) and self.port is None:
            raise ValueError(f"a {kind.value} service needs `port`")
        if kind is ServiceKind.generic and (self.source is None) == (self.image is None):
            raise ValueError("a generic service needs exactly one of `source` (a Dockerfile) or `image`")
        if kind is not ServiceKind.generic and (self.image or self.health_command):
            raise ValueError("`image` and `health_command` are for generic services")
        if kind is ServiceKind.worker and self.start is None and self.local_start is None:
            raise ValueError("a worker needs `start` (else it would run the image's own command, the web server)")
        if self.health_path is not None and self.port is None:
            raise ValueError("`health_path` needs a `port` to be reached at")


@record
class TenantRange(Record):
    start: int = field(ge=0, key="from", doc="First tenant id (a number).")
    end: int = field(ge=0, key="to", doc="Last tenant id, included (at most 100,000 in a range).")

    def _check(self) -> None:
        if self.end < self.start:
            raise ValueError("'to' must be >= 'from'")
        if self.end - self.start >= 100_000:
            raise ValueError("a range holds at most 100000 tenants")


def _unique_tenants(value: list[str] | TenantRange) -> None:
    if isinstance(value, list):
        seen: set[str] = set()
        for tenant in value:
            if tenant in seen:
                raise ValueError(f"tenant {tenant!r} is listed twice")
            seen.add(tenant)
        if not value:
            raise ValueError("at least one tenant is required")


# The union's branch is picked by the value's shape (a mapping is a range), so errors name only that branch.
Tenants = list[TenantId] | TenantRange


@record
class TopologySpec(Record):
    kind: Topology = field(
        default=Topology.shared, doc="per-port: a process per tenant; shared: one; sharded: pinned shards."
    )
    max_tenants_per_shard: int = field(default=50, ge=1, doc="sharded: tenants per shard at most.")
    shards: int | None = field(default=None, ge=1, doc="sharded: minimum number of shards.")
    ports: dict[TenantId, Port] = field(factory=dict, doc="per-port: explicit tenant ports.")


@record
class DatabaseSpec(Record):
    engine: Literal["postgres", "sqlite"] = field(
        default="postgres", doc="postgres (compose runs one; Railway's plugin) or sqlite (local only)."
    )
    name: str = field(default="app", pattern=r"^[a-z_][a-z0-9_]{0,62}$", doc="Database name.")
    user: str = field(default="app", pattern=r"^[a-z_][a-z0-9_]{0,62}$", doc="Database user.")
    password_secret: str = field(
        default="POSTGRES_PASSWORD", pattern=ENV_VAR_PATTERN, doc="Secret holding the compose database's password."
    )


@record
class RailwaySpec(Record):
    repo: str | None = field(
        default=None, pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", doc="GitHub owner/name Railway builds from."
    )
    branch: str = field(default="main", doc="Git branch Railway deploys.")
    environment: str | None = field(default=None, doc="Railway environment name (default: the env name).")
    legacy_config: bool = field(default=False, doc="Also write per-service railway.json (deprecated).")


@record
class Spec(Record):
    """One environment's resolved spec (base file + overlay)."""

    project: str = field(pattern=SERVICE_NAME_PATTERN, doc="Project name: lowercase letters, digits, dashes.")
    stage: Stage = field(
        default=Stage.production, doc="development allows WhatsApp services without a volume (APP_ENV)."
    )
    services: dict[Annotated[str, Rule(pattern=SERVICE_NAME_PATTERN)], ServiceSpec] = field(
        doc="The services, by name: exactly one flask and one whatsapp, any number of worker and generic."
    )
    database: DatabaseSpec = field(default=DatabaseSpec(), doc="The environment's database.")
    tenants: Tenants = field(check=_unique_tenants, doc="Tenant ids, as a list or as a range {from: 1, to: 3}.")
    topology: TopologySpec = field(default=TopologySpec(), doc="How tenants map to WhatsApp processes.")
    targets: list[Target] = field(
        check=_unique_items, factory=lambda: [Target.local, Target.compose], doc="Where the artifacts go."
    )
    secrets: list[Annotated[str, Rule(pattern=ENV_VAR_PATTERN)]] = field(
        factory=lambda: ["OPS_API_KEY", "SECRET_KEY", "WEBHOOK_SECRET", "WHATSAPP_API_KEY"],
        check=_unique_items,
        doc="Names of secrets; their values never live in the spec.",
    )
    # No user info (`user:password@`): the manifest and the probe report would carry it.
    public_urls: dict[str, Annotated[str, Rule(pattern=r"^https?://[^\s/@]+(/[^\s@]*)?$")]] = field(
        factory=dict, doc="Service name -> public base URL, for probing a remote deployment."
    )
    railway: RailwaySpec = field(default=RailwaySpec(), doc="Railway settings (railway target).")
    addons: list[Addon] = field(
        factory=list,
        check=_unique_items,
        doc="Managed services beside the database: `redis` gives the web app and workers REDIS_URL.",
    )

    def tenant_ids(self) -> list[str]:
        if isinstance(self.tenants, TenantRange):
            return [str(i) for i in range(self.tenants.start, self.tenants.end + 1)]
        return list(self.tenants)

    def service_of(self, kind: ServiceKind) -> tuple[str, ServiceSpec]:
        """The one service of `kind` (flask, whatsapp); the loader has checked there is exactly one."""
        return next((name, svc) for name, svc in self.services.items() if svc.kind is kind)

    def services_of(self, kind: ServiceKind) -> list[tuple[str, ServiceSpec]]:
        return sorted((name, svc) for name, svc in self.services.items() if svc.kind is kind)
