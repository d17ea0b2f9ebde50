"""The plan: every service instance, port, tenant route and env var, independent of any target.

Env values stay symbolic (a secret by name, "the URL of service X") so each renderer can spell them
for its target: `127.0.0.1:PORT` locally, `name:PORT` in compose, private domains on Railway.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from functools import cached_property
from typing import Literal, assert_never

from deploytool.spec.model import Addon, ServiceSpec, Stage, Target, Topology

Severity = Literal["error", "warning"]

# Where WhatsApp session state lives inside a container: the service's volume is mounted at VOLUME_MOUNT.
VOLUME_MOUNT = "/data"
CONTAINER_AUTH_ROOT = "/data/auth"
WEBHOOK_PATH = "/webhook/whatsapp"
# node_service's own tables (wa_sessions, ...) in the environment's database: their own schema keeps them apart
# from flask's tables and migrations.
SESSION_DB_SCHEMA = "whatsapp"
# The secrets deploytool itself wires into its services and generates local values for (with the Postgres
# password). Any other name in `secrets` is a team's own: given only to the services that list it under
# `services.<name>.secrets`, and never generated (a random Stripe key is no key).
GENERATED_SECRETS = ("OPS_API_KEY", "SECRET_KEY", "WEBHOOK_SECRET", "WHATSAPP_API_KEY")


class Role(str, Enum):
    web = "web"
    whatsapp = "whatsapp"
    worker = "worker"  # a process of an app's image with its own command: the web app's env, no route
    generic = "generic"  # the user's own image or Dockerfile: its own env only


@dataclass(frozen=True)
class Plain:
    """A value written as is (ports, modes, tenant lists, the spec's own `env`)."""

    value: str


@dataclass(frozen=True)
class SecretRef:
    name: str


@dataclass(frozen=True)
class ServiceUrl:
    """Base URL of a service instance as seen from another service, plus an optional path."""

    service: str
    path: str = ""


@dataclass(frozen=True)
class TenantUrls:
    """JSON object tenant id -> base URL of the instance serving it (WHATSAPP_TENANT_URLS)."""

    routes: tuple[tuple[str, str], ...]

    def spell(self, url_of: Callable[[str], str]) -> str:
        """The JSON text, each instance's base URL spelled by the target (`url_of(instance name)`)."""
        urls = {service: url_of(service) for service in {s for _, s in self.routes}}
        return json.dumps({tenant: urls[service] for tenant, service in self.routes}, separators=(",", ":"))


@dataclass(frozen=True)
class DatabaseUrl:
    """SQLAlchemy URL of the environment's database; unset locally means embedded SQLite."""


@dataclass(frozen=True)
class AuthRoot:
    """Folder for WhatsApp session state: a volume in containers, a folder of the output locally."""

    service: str


@dataclass(frozen=True)
class SessionStore:
    """node_service's SESSION_STORE where the environment's database is PostgreSQL: `postgres` wherever the
    target provides that database (compose, Railway). Locally DATABASE_URL comes from the runner's environment,
    so the variable stays unset there and node's own rule follows it (DATABASE_URL set: postgres, else files),
    as flask falls back to SQLite."""


@dataclass(frozen=True)
class RedisUrl:
    """URL of the environment's Redis add-on (REDIS_URL); locally taken from the runner's environment."""


@dataclass(frozen=True)
class ProxyHops:
    """How many reverse proxies stand in front of a service (flask's TRUSTED_PROXIES): 0 where clients
    connect directly, 1 behind a cloud's edge. Trusting X-Forwarded-For without a proxy lets any client
    pick the address the login throttle counts; not trusting it behind one locks everyone out at once."""


EnvValue = Plain | SecretRef | ServiceUrl | TenantUrls | DatabaseUrl | AuthRoot | ProxyHops | RedisUrl | SessionStore


# What in the spec makes each generated plain variable ({spec}: the instance's spec service), for env file headers.
_PLAIN_ORIGINS = {
    "PORT": "services.{spec}.port",
    "APP_ENV": "stage",
    "WA_MODE": "topology.kind",
    "WA_DRIVER": "services.{spec}.driver",
    "TENANT_ID": "tenants (this process's one, topology per-port)",
    "TENANTS": "tenants (the ones this process serves)",
    "MAX_TENANTS": "services.{spec}.max_tenants",
    "SESSION_STORE": "database.engine: sqlite (sessions in files under AUTH_ROOT)",
    "SESSION_DB_SCHEMA": "node_service's own schema in the database",
    "WA_SERVICE_NAME": "this process's name (the sessions it holds in the database)",
}


@dataclass(frozen=True)
class ServiceInstance:
    """One process (or shard, or tenant's server) of a spec service. What differs per instance is a field;
    what every instance takes from its spec as is is read from `spec`, so a new spec field is one model field
    plus the target that uses it (`svc.spec.<field>`), never a copy through the plan."""

    name: str
    role: Role
    spec_name: str  # the service of the spec it was made from
    spec: ServiceSpec = field(compare=False, repr=False)
    port: int | None  # None: listens nowhere (a worker)
    health_path: str | None
    qr_path: str | None
    tenants: tuple[str, ...]
    env: tuple[tuple[str, EnvValue], ...]  # sorted by name
    volume: str | None
    depends_on: tuple[str, ...] = ()

    @property
    def source(self) -> str | None:
        """Code folder relative to the project root (None: a public image)."""
        return self.spec.source

    @property
    def replicas(self) -> int:
        return self.spec.replicas

    @property
    def start(self) -> str | None:
        return self.spec.start

    @property
    def local_start(self) -> str | None:
        return self.spec.local_start

    @property
    def pre_deploy(self) -> str | None:
        return self.spec.pre_deploy

    @property
    def dockerfile(self) -> str:
        return self.spec.dockerfile

    @property
    def image(self) -> str | None:
        """generic: a public image instead of a build."""
        return self.spec.image

    @property
    def volume_path(self) -> str:
        return self.spec.volume_path

    @property
    def health_command(self) -> str | None:
        """worker, generic: a command that exits 0 while the service is healthy."""
        return self.spec.health_command

    def env_dict(self) -> dict[str, EnvValue]:
        return dict(self.env)

    def secret_names(self) -> tuple[str, ...]:
        return tuple(sorted({v.name for _, v in self.env if isinstance(v, SecretRef)}))

    @property
    def session_store(self) -> Literal["postgres", "files"] | None:
        """A WhatsApp service's session store as the plan chose it (None: not a WhatsApp service). The spec's
        own `env` may still say SESSION_STORE=files: it wins, and so does the volume it then needs."""
        if self.role is not Role.whatsapp:
            return None
        value = self.env_dict().get("SESSION_STORE")
        return "files" if isinstance(value, Plain) and value.value == "files" else "postgres"


@dataclass(frozen=True)
class DatabasePlan:
    engine: Literal["postgres", "sqlite"]
    name: str
    user: str
    password_secret: str


@dataclass(frozen=True)
class RailwayPlan:
    repo: str | None
    branch: str
    environment: str
    pr_from: str | None = None  # railway.pr_environments.from: the environment a PR environment copies


@dataclass(frozen=True)
class Finding:
    """A cross-check result. `error` findings fail `validate` (exit 1); warnings are printed."""

    code: str
    message: str
    severity: Severity = "error"
    field: str = ""  # dotted spec path the finding is about, when there is one (located by the pipeline)
    where: str = ""  # file:line of that field, filled in by the pipeline from the loaded spec

    def __str__(self) -> str:
        at = f"{self.where}: " if self.where else ""
        return f"{self.severity}[{self.code}]: {at}{self.message}"


# A consumer check that could not run (its tool is not installed). A warning on a person's machine, so a
# quick `validate` still works there; `validate` under CI=true makes it an error, because a green CI run
# must mean every consumer saw the files.
CHECK_SKIPPED = "CHECK_SKIPPED"
CONSUMERS_INSTALL = "`pip install 'deploytool[consumers]'` (in this repo: `bash scripts/bootstrap --dev`)"


def skipped_check(file: str, consumer: str, why: str) -> Finding:
    """The finding that says `file` was not checked by `consumer`, why, and how to install it."""
    return Finding(
        CHECK_SKIPPED,
        f"{file}: not checked by {consumer}: {why}; install it with {CONSUMERS_INSTALL}",
        severity="warning",
    )


@dataclass(frozen=True)
class Plan:
    project: str
    env_name: str
    stage: Stage
    topology: Topology
    services: tuple[ServiceInstance, ...]  # sorted by name
    routes: tuple[tuple[str, str], ...]  # tenant -> instance name, in spec order
    database: DatabasePlan
    secrets: tuple[str, ...]  # sorted
    targets: tuple[Target, ...]
    public_urls: tuple[tuple[str, str], ...]
    railway: RailwayPlan
    addons: tuple[Addon, ...] = ()
    shard_lock: dict[str, int] | None = None  # sharded: tenant -> shard number, to persist
    notes: tuple[Finding, ...] = field(default=())  # findings found while planning

    @cached_property
    def _by_name(self) -> dict[str, ServiceInstance]:
        return {svc.name: svc for svc in self.services}

    def service(self, name: str) -> ServiceInstance:
        return self._by_name[name]

    def by_role(self, role: Role) -> tuple[ServiceInstance, ...]:
        return tuple(s for s in self.services if s.role is role)

    @cached_property
    def web(self) -> ServiceInstance:
        return self.by_role(Role.web)[0]

    @property
    def tenants(self) -> tuple[str, ...]:
        return tuple(t for t, _ in self.routes)

    @cached_property
    def generated_secrets(self) -> tuple[str, ...]:
        """The secrets deploytool owns and generates local values for: its own, and the Postgres password."""
        own = {name for name in self.secrets if name in GENERATED_SECRETS}
        if self.database.engine == "postgres":
            own.add(self.database.password_secret)
        return tuple(sorted(own))

    @property
    def user_secrets(self) -> tuple[str, ...]:
        """A team's own secrets: declared in the spec, set by the team (environment, .secrets.env, Railway)."""
        return tuple(name for name in self.secrets if name not in self.generated_secrets)

    @cached_property
    def _origins(self) -> dict[tuple[object, ...], tuple[str, str]]:
        return {}

    def env_origin(self, svc: ServiceInstance, name: str, value: EnvValue) -> tuple[str, str]:
        """(what in the spec made variable `name` of `svc`, the spec field a value the spec holds came from), for
        env file headers and error locations. The field is "" for a value deploytool derives.

        Worked out once per spec service, variable and kind of value (a URL: per URL): the 1,000 processes of
        a per-port environment share them."""
        kind = value if isinstance(value, ServiceUrl) else type(value)
        key = (id(svc.spec), svc.spec_name, svc.role, name, kind)
        found = self._origins.get(key)
        if found is None:
            found = self._origins[key] = self._env_origin(svc, name, value)
        return found

    def _env_origin(self, svc: ServiceInstance, name: str, value: EnvValue) -> tuple[str, str]:
        spec = svc.spec_name
        for owner in (svc, self.web) if svc.role is Role.worker else (svc,):
            if name in owner.spec.env:  # the spec's own `env` wins over anything generated
                field = f"services.{owner.spec_name}.env.{name}"
                return (field if owner is svc else f"{field} (the web app's)"), field
        match value:
            case SecretRef():
                if name in svc.spec.secrets:
                    return f"services.{spec}.secrets: a secret of yours", ""
                return "secrets: one deploytool wires", ""
            case Plain():
                if name == "PORT" and svc.role is Role.whatsapp:
                    return f"services.{spec}.port, counted up per process (skipping ports other services use)", ""
                return _PLAIN_ORIGINS.get(name, "generated by deploytool").format(spec=spec), ""
            case ServiceUrl():
                return f"the URL of {value.service}{value.path} on this target", ""
            case TenantUrls():
                return "tenants + topology: each tenant's WhatsApp server on this target", ""
            case AuthRoot():
                return "this process's WhatsApp session folder", ""
            case ProxyHops():
                return "the proxies in front of it on this target", ""
            case DatabaseUrl():
                return f"database.engine: {self.database.engine}", ""
            case RedisUrl():
                return "addons: redis", ""
            case SessionStore():
                return "database.engine: postgres (sessions in the database)", ""
            case _:
                assert_never(value)

    def secret_users(self) -> dict[str, list[str]]:
        """Each declared secret (and the generated Postgres password) -> the services that get it."""
        users: dict[str, list[str]] = {name: [] for name in (*self.secrets, *self.generated_secrets)}
        for svc in self.services:
            for name in svc.secret_names():
                users.setdefault(name, []).append(svc.name)
        return dict(sorted(users.items()))
