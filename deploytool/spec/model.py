"""The spec's shape. pydantic at the edge: unknown keys and wrong types are rejected here."""

from __future__ import annotations

import re
from collections.abc import Iterator
from enum import Enum
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError, core_schema

# The tenant-id contract, the same in node_service/src/config.js and flask_service/resolver.py (and
# docs/contract.md): ids of a range are numbers, so at most MAX_RANGE_TENANT (64 digits).
TENANT_ID_MAX_LENGTH = 64
TENANT_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
MAX_RANGE_TENANT = 10**TENANT_ID_MAX_LENGTH - 1
SERVICE_NAME_PATTERN = r"^[a-z][a-z0-9-]{0,39}$"
ENV_VAR_PATTERN = r"^[A-Z_][A-Z0-9_]*$"

Port = Annotated[int, Field(ge=1, le=65535)]
TenantId = Annotated[str, Field(pattern=TENANT_ID_PATTERN)]


def _one_line(value: str) -> str:
    # A value that reaches a Procfile line, an env file, a comment or a command must not start a new one.
    if any(ch in value for ch in LINE_BREAKS) or "\0" in value:
        raise ValueError("must be one line (no line breaks or NUL)")
    return value


def _no_nul(value: str) -> str:
    if "\0" in value:
        raise ValueError("an environment variable cannot hold a NUL character")
    return value


def _field_error(loc: tuple[str | int, ...], kind: str, message: str, value: Any) -> ValidationError:
    """An error of a check across fields, placed at the field it is about (not at the model), so the loader
    names that field's file and line."""
    error = PydanticCustomError(kind, message)
    return ValidationError.from_exception_data("Spec", [{"type": error, "loc": loc, "input": value}])


LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"  # everything str.splitlines() splits on
OneLine = Annotated[str, AfterValidator(_one_line)]
EnvValue = Annotated[str, AfterValidator(_no_nul)]
# Enum fields take their value from YAML text (strict mode would want the enum object itself).
Lax = Field(strict=False)


class Strict(BaseModel):
    # strict: no coercion, so a quoted port or `replicas: yes` is an error rather than a guess
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


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


class _TargetNames(type):
    """`list(Target)`, `name in Target`: the targets in use now, the built-in ones first, then plugins' in the
    order they were registered."""

    _active: dict[str, Target]

    def __iter__(cls) -> Iterator[Target]:
        return iter(list(cls._active.values()))

    def __contains__(cls, name: object) -> bool:
        return isinstance(name, str) and name in cls._active

    def __len__(cls) -> int:
        return len(cls._active)


class Target(str, metaclass=_TargetNames):
    """Where an environment's artifacts go: a registry of names. `Target.add` names a plugin's own target;
    registering its plugin (`deploytool.targets.register`) puts it in use, and the spec then accepts it and the
    JSON schema lists it (`deploytool schema`); unregistering takes it out again.

    Each target's behaviour lives in one module of `deploytool/targets/` (see its registry). A name is one
    object: `Target("local") is Target.local`."""

    _names: ClassVar[dict[str, Target]] = {}  # every name made, in use or not
    _active: ClassVar[dict[str, Target]] = {}
    local: ClassVar[Target]
    compose: ClassVar[Target]
    railway: ClassVar[Target]

    def __new__(cls, name: str) -> Target:
        found = cls._active.get(name) if isinstance(name, str) else None
        if found is None:
            raise ValueError(f"expected one of {', '.join(cls._active)}, got {name!r}")
        return found

    @classmethod
    def add(cls, name: str) -> Target:
        """A target name for a plugin outside this file (a new target is one module, not an edit here)."""
        if not re.fullmatch(r"[a-z][a-z0-9-]{0,39}", name):
            raise ValueError(f"target name {name!r}: expected lowercase letters, digits and dashes")
        if name not in cls._names:
            cls._names[name] = str.__new__(cls, name)
        return cls._names[name]

    @classmethod
    def use(cls, target: Target, used: bool = True) -> None:
        """Put a name in use (its plugin is registered), or out of use (`used=False`)."""
        if used:
            cls._active[target.value] = target
        else:
            cls._active.pop(target.value, None)

    @property
    def value(self) -> str:
        return str.__str__(self)

    @property
    def name(self) -> str:
        return self.value

    def __repr__(self) -> str:
        return f"Target({self.value!r})"

    def __str__(self) -> str:
        return self.value

    def __reduce__(self) -> tuple[Any, ...]:
        return (Target, (self.value,))

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        def validate(value: Any) -> Target:
            if isinstance(value, Target):
                return value
            if not isinstance(value, str) or value not in cls._active:
                raise PydanticCustomError(
                    "target", "Input should be {expected}", {"expected": " or ".join(repr(n) for n in cls._active)}
                )
            return cls._active[value]

        return core_schema.no_info_plain_validator_function(
            validate, serialization=core_schema.plain_serializer_function_ser_schema(lambda t: t.value)
        )

    @classmethod
    def __get_pydantic_json_schema__(cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler) -> Any:
        # asked at each schema generation: a plugin's name added after the model was built is listed too
        return {"type": "string", "enum": [t.value for t in cls], "title": "Target"}


for _builtin in ("local", "compose", "railway"):
    setattr(Target, _builtin, Target.add(_builtin))
    Target.use(getattr(Target, _builtin))


class ServiceSpec(Strict):
    kind: Annotated[ServiceKind, Lax] = Field(
        description="flask (the web app), whatsapp (the WhatsApp server), worker (another process of an app's "
        "image), generic (your own Dockerfile or a public image)."
    )
    source: OneLine | None = Field(
        None, description="Folder of the service's code, relative to the spec file (the build context)."
    )
    image: str | None = Field(
        None, pattern=r"^[a-z0-9][a-z0-9._/:@-]*$", description="generic: a public image instead of `source`."
    )
    port: Port | None = Field(
        None, description="Listen port (flask and whatsapp: required; for WhatsApp the first port of the range)."
    )
    health_path: OneLine | None = Field(
        "/health", description="Health endpoint; null disables healthchecks (worker, generic: off unless set)."
    )
    health_command: OneLine | None = Field(
        None,
        description="worker, generic: a command that exits 0 while the service is healthy (the container's "
        "healthcheck; the procfile runner and `probe` run it too). Workers have no /health to ask.",
    )
    qr_path: OneLine = Field("/tenants/{tenant}/qr", description="Per-tenant QR endpoint, `{tenant}` is replaced.")
    start: OneLine | None = Field(
        None, description="Start command inside the service's own folder (container/Railway)."
    )
    local_start: OneLine | None = Field(None, description="Start command from the project root when run as a process.")
    pre_deploy: OneLine | None = Field(None, description="Command run before each deploy (migrations).")
    dockerfile: OneLine = Field("Dockerfile", description="Dockerfile path inside `source`.")
    replicas: int = Field(1, ge=1, le=200, description="Copies of the web app; a WhatsApp server needs exactly 1.")
    volume: bool = Field(
        True, description="A persistent volume: WhatsApp sessions (default on); generic: off unless set."
    )
    volume_path: OneLine = Field("/data", description="generic: where the volume is mounted in the container.")
    driver: Literal["baileys", "sandbox"] = Field("baileys", description="WhatsApp driver (whatsapp only).")
    max_tenants: int | None = Field(None, ge=1, description="MAX_TENANTS of a multi-tenant WhatsApp server.")
    env: dict[str, EnvValue] = Field(
        default_factory=dict, description="Extra plain variables (never secrets: see `secrets`)."
    )
    secrets: list[Annotated[str, Field(pattern=ENV_VAR_PATTERN)]] = Field(
        default_factory=list,
        description="Secrets this service gets as variables, by name, each also listed in the top-level `secrets` "
        "(a team's own, e.g. STRIPE_API_KEY): compose `${NAME:?…}`, Railway `${{shared.NAME}}`, locally from the "
        "environment or `.secrets.env`. `render` generates local values only for deploytool's own secrets, never a "
        "team's.",
    )

    @model_validator(mode="before")
    @classmethod
    def _kind_defaults(cls, data: Any) -> Any:
        # A worker or another image has no /health or volume of ours unless the spec says so.
        if isinstance(data, dict) and data.get("kind") in ("worker", "generic"):
            data = {"health_path": None, "volume": False, **data}
        return data

    @model_validator(mode="after")
    def _fields_of_kind(self) -> ServiceSpec:
        kind = self.kind
        if kind in (ServiceKind.flask, ServiceKind.whatsapp, ServiceKind.worker) and self.source is None:
            raise ValueError(f"a {kind.value} service needs `source` (its code folder)")
        if kind in (ServiceKind.flask, ServiceKind.whatsapp) and self.port is None:
            raise ValueError(f"a {kind.value} service needs `port`")
        if kind is ServiceKind.generic and (self.source is None) == (self.image is None):
            raise ValueError("a generic service needs exactly one of `source` (a Dockerfile) or `image`")
        if kind is not ServiceKind.generic and self.image:
            raise ValueError("`image` and `health_command` are for generic services (`health_command`: workers too)")
        if kind not in (ServiceKind.generic, ServiceKind.worker) and self.health_command:
            raise ValueError("`health_command` is for worker and generic services (the others have /health)")
        if kind is ServiceKind.worker and self.start is None and self.local_start is None:
            raise ValueError("a worker needs `start` (else it would run the image's own command, the web server)")
        if self.health_path is not None and self.port is None:
            raise ValueError("`health_path` needs a `port` to be reached at")
        return self

    @field_validator("health_path", "qr_path", "volume_path")
    @classmethod
    def _absolute_path(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("/"):
            raise ValueError("must start with '/'")
        return value

    @field_validator("secrets")
    @classmethod
    def _unique_secrets(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("items must be unique")
        return value

    @field_validator("env")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not re.fullmatch(ENV_VAR_PATTERN, name):
                raise ValueError(f"{name!r} is not an environment variable name (expected {ENV_VAR_PATTERN})")
        return value


class TenantRange(Strict):
    start: int = Field(ge=0, le=MAX_RANGE_TENANT, alias="from", description="First tenant id (a number).")
    end: int = Field(
        ge=0,
        le=MAX_RANGE_TENANT,
        alias="to",
        description="Last tenant id, included (at most 100,000 in a range; ids have at most 64 digits).",
    )

    @model_validator(mode="after")
    def _ordered(self) -> TenantRange:
        if self.end < self.start:
            raise ValueError("'to' must be >= 'from'")
        if self.end - self.start >= 100_000:
            raise ValueError("a range holds at most 100000 tenants")
        return self


def _tenants_shape(value: Any) -> str:
    # Pick the union branch from the input's shape so errors name only the branch the user meant.
    return "range" if isinstance(value, dict) else "list"


Tenants = Annotated[
    Annotated[list[TenantId], Tag("list")] | Annotated[TenantRange, Tag("range")],
    Discriminator(_tenants_shape),
]


class TopologySpec(Strict):
    kind: Annotated[Topology, Lax] = Field(
        Topology.shared, description="per-port: a process per tenant; shared: one; sharded: pinned shards."
    )
    max_tenants_per_shard: int = Field(50, ge=1, description="sharded: tenants per shard at most.")
    shards: int | None = Field(None, ge=1, description="sharded: minimum number of shards (at most one per tenant).")
    ports: dict[TenantId, Port] = Field(default_factory=dict, description="per-port: explicit tenant ports.")


class DatabaseSpec(Strict):
    engine: Literal["postgres", "sqlite"] = Field(
        "postgres", description="postgres (compose runs one; Railway's plugin) or sqlite (local only)."
    )
    name: str = Field("app", pattern=r"^[a-z_][a-z0-9_]{0,62}$", description="Database name.")
    user: str = Field("app", pattern=r"^[a-z_][a-z0-9_]{0,62}$", description="Database user.")
    password_secret: str = Field(
        "POSTGRES_PASSWORD", pattern=ENV_VAR_PATTERN, description="Secret holding the compose database's password."
    )


class PrEnvironments(Strict):
    # `from` is a Python keyword: the field is from_ and the spec spells it `from`
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True)
    from_: str = Field(
        alias="from",
        pattern=r"^[a-z][a-z0-9_-]*$",
        description="The deploytool environment (with the railway target) whose layout a PR environment gets.",
    )


class RailwaySpec(Strict):
    repo: str | None = Field(
        None, pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", description="GitHub owner/name Railway builds from."
    )
    branch: str = Field("main", pattern=r"^[A-Za-z0-9._/-]{1,200}$", description="Git branch Railway deploys.")
    environment: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
        description="Railway environment name (default: the env name).",
    )
    legacy_config: bool = Field(
        False,
        description="Removed: Railway stopped reading railway.json on 2026-12-01; `true` is a spec error "
        "(deploytool writes .railway/railway.py).",
    )
    pr_environments: PrEnvironments | None = Field(
        None,
        description="Railway PR environments: the layout of environment `from`, with the sandbox WhatsApp driver.",
    )

    @field_validator("legacy_config")
    @classmethod
    def _no_legacy_config(cls, value: bool) -> bool:
        if value:
            raise ValueError(
                "Railway stopped reading config-as-code files (railway.json) on 2026-12-01; deploytool writes "
                "Railway Infrastructure as Code (.railway/railway.py) instead: remove railway.legacy_config"
            )
        return value


class Spec(Strict):
    """One environment's resolved spec (base file + overlay)."""

    project: str = Field(pattern=SERVICE_NAME_PATTERN, description="Project name: lowercase letters, digits, dashes.")
    stage: Annotated[Stage, Lax] = Field(
        Stage.production, description="development allows WhatsApp services without a volume (APP_ENV)."
    )
    services: dict[Annotated[str, Field(pattern=SERVICE_NAME_PATTERN)], ServiceSpec] = Field(
        description="The services, by name: exactly one flask and one whatsapp, any number of worker and generic."
    )
    database: DatabaseSpec = Field(DatabaseSpec(), description="The environment's database.")
    tenants: Tenants = Field(description="Tenant ids, as a list or as a range {from: 1, to: 3}.")
    topology: TopologySpec = Field(TopologySpec(), description="How tenants map to WhatsApp processes.")
    targets: list[Target] = Field(
        default_factory=lambda: [Target.local, Target.compose], description="Where the artifacts go."
    )
    secrets: list[Annotated[str, Field(pattern=ENV_VAR_PATTERN)]] = Field(
        default_factory=lambda: ["OPS_API_KEY", "SECRET_KEY", "WEBHOOK_SECRET", "WHATSAPP_API_KEY"],
        description="Names of secrets; their values never live in the spec. deploytool generates local values for "
        "its own (OPS_API_KEY, SECRET_KEY, WEBHOOK_SECRET, WHATSAPP_API_KEY); a team's own secret reaches a service "
        "through `services.<name>.secrets`.",
    )
    # No user info (`user:password@`): the manifest and the probe report would carry it.
    public_urls: dict[str, Annotated[str, Field(pattern=r"^https?://[^\s/@]+(/[^\s@]*)?$")]] = Field(
        default_factory=dict, description="Service name -> public base URL, for probing a remote deployment."
    )
    railway: RailwaySpec = Field(RailwaySpec(), description="Railway settings (railway target).")
    addons: list[Annotated[Addon, Lax]] = Field(
        default_factory=list,
        description="Managed services beside the database: `redis` gives the web app and workers REDIS_URL.",
    )

    @field_validator("tenants")
    @classmethod
    def _unique_tenants(cls, value: list[str] | TenantRange) -> list[str] | TenantRange:
        if isinstance(value, list):
            seen: set[str] = set()
            for tenant in value:
                if tenant in seen:
                    raise ValueError(f"tenant {tenant!r} is listed twice")
                seen.add(tenant)
            if not value:
                raise ValueError("at least one tenant is required")
        return value

    @model_validator(mode="after")
    def _shards_bounded(self) -> Spec:
        # Each shard is a service with its own process and volume: more shards than tenants serves nobody,
        # and a million of them exhausts memory while planning.
        shards, tenants = self.topology.shards, self.tenant_count()
        if shards is not None and shards > tenants:
            raise _field_error(
                ("topology", "shards"),
                "shards_bounded",
                f"at most one shard per tenant ({tenants:,} tenant(s)); more shards than tenants serves nobody",
                shards,
            )
        return self

    @model_validator(mode="after")
    def _per_port_service_names(self) -> Spec:
        # per-port gives every tenant its own service, `<whatsapp>-<tenant>`, and that is a service name in every
        # target (Compose, Railway, the manifest): an id the tenant pattern allows but a service name does not
        # (uppercase, `_`, too long) is refused here, at its line, not deep in rendering
        if self.topology.kind is not Topology.per_port:
            return self
        whatsapp = next((name for name, svc in self.services.items() if svc.kind is ServiceKind.whatsapp), None)
        if whatsapp is None:
            return self  # the loader says a WhatsApp service is missing
        if isinstance(self.tenants, TenantRange):
            too_long = f"{whatsapp}-{self.tenants.end}"
            if not re.fullmatch(SERVICE_NAME_PATTERN, too_long):
                raise _field_error(
                    ("tenants", "to"),
                    "per_port_service_name",
                    f"per-port gives each tenant a service `{whatsapp}-<id>`; {too_long!r} is longer than a service "
                    "name may be (40 characters): fewer digits, or topology shared or sharded",
                    self.tenants.end,
                )
            return self
        room = 40 - len(whatsapp) - 1
        for index, tenant in enumerate(self.tenants):
            if not re.fullmatch(SERVICE_NAME_PATTERN, f"{whatsapp}-{tenant}"):
                raise _field_error(
                    ("tenants", index),
                    "per_port_service_name",
                    f"per-port gives each tenant a service `{whatsapp}-<id>`, so here a tenant id is at most {room} "
                    "lowercase letters, digits and dashes (service names; uppercase and `_` are not): rename it, or "
                    "use topology shared or sharded, which take every id",
                    tenant,
                )
        return self

    def tenant_count(self) -> int:
        if isinstance(self.tenants, TenantRange):
            return self.tenants.end - self.tenants.start + 1
        return len(self.tenants)

    @field_validator("targets", "secrets", "addons")
    @classmethod
    def _unique_items(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("items must be unique")
        return value

    @model_validator(mode="after")
    def _service_secrets_declared(self) -> Spec:
        """A service's secret must be declared at the top level (the one list every target and check reads)."""
        declared = set(self.secrets)
        errors = [
            InitErrorDetails(
                type=PydanticCustomError(
                    "secret_undeclared",
                    "secret {name} is not in the top-level `secrets` list; add it there too",
                    {"name": name},
                ),
                loc=("services", service, "secrets", index),
                input=name,
            )
            for service, svc in self.services.items()
            for index, name in enumerate(svc.secrets)
            if name not in declared
        ]
        if errors:
            raise ValidationError.from_exception_data(type(self).__name__, errors)
        return self

    def tenant_ids(self) -> list[str]:
        if isinstance(self.tenants, TenantRange):
            return [str(i) for i in range(self.tenants.start, self.tenants.end + 1)]
        return list(self.tenants)

    def service_of(self, kind: ServiceKind) -> tuple[str, ServiceSpec]:
        """The one service of `kind` (flask, whatsapp); the loader has checked there is exactly one."""
        return next((name, svc) for name, svc in self.services.items() if svc.kind is kind)

    def services_of(self, kind: ServiceKind) -> list[tuple[str, ServiceSpec]]:
        return sorted((name, svc) for name, svc in self.services.items() if svc.kind is kind)
