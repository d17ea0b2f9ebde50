"""build_plan: Spec (+ the shard lock) -> Plan. Pure: no files, no network, no clock."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deploytool.plan.allocate import allocate_ports, assign_shards, shard_numbers
from deploytool.plan.model import (
    SESSION_DB_SCHEMA,
    WEBHOOK_PATH,
    AuthRoot,
    DatabasePlan,
    DatabaseUrl,
    EnvValue,
    Finding,
    Plain,
    Plan,
    ProxyHops,
    RailwayPlan,
    RedisUrl,
    Role,
    SecretRef,
    ServiceInstance,
    ServiceUrl,
    SessionStore,
    TenantUrls,
)
from deploytool.spec.model import Addon, ServiceKind, ServiceSpec, Spec, Stage, Topology


def build_plan(spec: Spec, env_name: str, shard_lock: Mapping[str, int] | None = None) -> Plan:
    web_name, web_spec = spec.service_of(ServiceKind.flask)
    wa_name, wa_spec = spec.service_of(ServiceKind.whatsapp)
    tenants = spec.tenant_ids()
    secrets = set(spec.secrets)
    notes: list[Finding] = []

    reserved = {svc.port for name, svc in spec.services.items() if svc.port and name != wa_name}
    groups, lock_out = _whatsapp_groups(spec, wa_name, wa_spec, reserved, tenants, shard_lock or {})
    multi = spec.topology.kind is not Topology.per_port
    whatsapp = [
        _whatsapp_instance(spec, wa_name, wa_spec, name, port, members, multi, web_name, secrets)
        for name, port, members in groups
    ]
    routes = tuple((tenant, instance.name) for instance in whatsapp for tenant in instance.tenants)
    order = {t: i for i, t in enumerate(tenants)}
    routes = tuple(sorted(routes, key=lambda r: order[r[0]]))

    if spec.topology.ports and spec.topology.kind is not Topology.per_port:
        notes.append(Finding("PORTS_IGNORED", "topology.ports only applies to per-port; it is ignored", "warning"))
    unknown = sorted(set(spec.topology.ports) - set(tenants))
    if unknown:
        notes.append(Finding("UNKNOWN_TENANT_PORT", f"topology.ports names tenants not in tenants: {unknown}"))

    web_env = _web_env(spec, whatsapp, routes)
    web = _instance(web_name, Role.web, web_name, web_spec, web_env, depends_on=tuple(sorted(w.name for w in whatsapp)))
    workers = [_worker_instance(name, svc, web, web_env) for name, svc in spec.services_of(ServiceKind.worker)]
    generic = [_generic_instance(name, svc) for name, svc in spec.services_of(ServiceKind.generic)]
    services = tuple(sorted([web, *whatsapp, *workers, *generic], key=lambda s: s.name))
    return Plan(
        project=spec.project,
        env_name=env_name,
        stage=spec.stage,
        topology=spec.topology.kind,
        services=services,
        routes=routes,
        database=DatabasePlan(
            engine=spec.database.engine,
            name=spec.database.name,
            user=spec.database.user,
            password_secret=spec.database.password_secret,
        ),
        secrets=tuple(sorted(secrets)),
        targets=tuple(spec.targets),
        public_urls=tuple(sorted(spec.public_urls.items())),
        railway=RailwayPlan(
            repo=spec.railway.repo,
            branch=spec.railway.branch,
            environment=spec.railway.environment or env_name,
            pr_from=spec.railway.pr_environments.from_ if spec.railway.pr_environments else None,
        ),
        addons=tuple(sorted(spec.addons)),
        shard_lock=lock_out,
        notes=tuple(notes),
    )


def _whatsapp_groups(
    spec: Spec, wa_name: str, wa_spec: ServiceSpec, reserved: set[int], tenants: list[str], lock: Mapping[str, int]
) -> tuple[list[tuple[str, int, tuple[str, ...]]], dict[str, int] | None]:
    """(instance name, port, tenants) for every WhatsApp process of the topology (skipping every port another
    service listens on)."""
    kind = spec.topology.kind
    base_port = wa_spec.port or 0  # the loader guarantees a port for the WhatsApp service
    if kind is Topology.shared:
        return [(wa_name, base_port, tuple(tenants))], None
    if kind is Topology.per_port:
        ports = allocate_ports(tenants, base_port, reserved, spec.topology.ports)
        return [(f"{wa_name}-{t}", ports[t], (t,)) for t in tenants], None
    capacity = spec.topology.max_tenants_per_shard
    min_shards = spec.topology.shards or 1
    assignment = assign_shards(tenants, lock, capacity, min_shards)
    shards = shard_numbers(assignment, min_shards)
    ports = allocate_ports([str(n) for n in shards], base_port, reserved, {})
    members: dict[int, list[str]] = {number: [] for number in shards}
    for tenant in tenants:  # one pass, in spec order (not one pass per shard)
        members[assignment[tenant]].append(tenant)
    groups = [(f"{wa_name}-shard-{n}", ports[str(n)], tuple(members[n])) for n in shards]
    return groups, dict(sorted(assignment.items()))


def _env(pairs: Mapping[str, EnvValue], svc: ServiceSpec) -> tuple[tuple[str, EnvValue], ...]:
    """Generated variables, then the service's own `secrets` (by reference), then the spec's own `env` on top
    (checked later: a secret there is a finding)."""
    merged: dict[str, EnvValue] = dict(pairs)
    for name in svc.secrets:
        merged[name] = SecretRef(name)
    for key, value in svc.env.items():
        merged[key] = Plain(value)
    return tuple(sorted(merged.items()))


def _whatsapp_instance(
    spec: Spec,
    spec_name: str,
    svc: ServiceSpec,
    name: str,
    port: int,
    tenants: tuple[str, ...],
    multi: bool,
    web_name: str,
    secrets: set[str],
) -> ServiceInstance:
    env: dict[str, EnvValue] = {
        "PORT": Plain(str(port)),
        "WA_MODE": Plain("multi" if multi else "single"),
        "WA_DRIVER": Plain(svc.driver),
        # node holds its keys to the production rule unless told it runs for development, as flask does
        "APP_ENV": Plain("development" if spec.stage is Stage.development else "production"),
        "AUTH_ROOT": AuthRoot(name),
        "WHATSAPP_API_KEY": SecretRef("WHATSAPP_API_KEY"),
        "WEBHOOK_SECRET": SecretRef("WEBHOOK_SECRET"),
        "WEBHOOK_URL": ServiceUrl(web_name, WEBHOOK_PATH),
    }
    if spec.database.engine == "postgres":
        # Sessions in the environment's database: a tenant can move to another shard (release there, connect
        # here) without a new scan, and a lost container loses nothing. Each shard names itself, so a boot
        # restores only what it held and another shard's 423 says who holds a tenant.
        env["DATABASE_URL"] = DatabaseUrl()
        env["SESSION_STORE"] = SessionStore()
        env["SESSION_DB_SCHEMA"] = Plain(SESSION_DB_SCHEMA)
        env["WA_SERVICE_NAME"] = Plain(name)
    else:
        env["SESSION_STORE"] = Plain("files")  # SQLite is no session database: the AUTH_ROOT folders
    if multi:
        env["TENANTS"] = Plain(",".join(tenants))
        if svc.max_tenants is not None:
            env["MAX_TENANTS"] = Plain(str(svc.max_tenants))
    else:
        env["TENANT_ID"] = Plain(tenants[0])
    # The PostgreSQL store keeps nothing on disk: no volume, unless the spec's own env asks for the files.
    files = spec.database.engine != "postgres" or svc.env.get("SESSION_STORE") == "files"
    volume = f"{name}-data" if svc.volume and files else None
    return _instance(
        name, Role.whatsapp, spec_name, svc, env, port=port, qr_path=svc.qr_path, tenants=tenants, volume=volume
    )


def _web_env(spec: Spec, whatsapp: list[ServiceInstance], routes: tuple[tuple[str, str], ...]) -> dict[str, EnvValue]:
    """The web app's generated environment (before its own `secrets` and `env`)."""
    _, svc = spec.service_of(ServiceKind.flask)
    env: dict[str, EnvValue] = {
        "PORT": Plain(str(svc.port)),
        "APP_ENV": Plain("development" if spec.stage is Stage.development else "production"),
        "DATABASE_URL": DatabaseUrl(),
        "SECRET_KEY": SecretRef("SECRET_KEY"),
        "OPS_API_KEY": SecretRef("OPS_API_KEY"),
        "WEBHOOK_SECRET": SecretRef("WEBHOOK_SECRET"),
        "WHATSAPP_API_KEY": SecretRef("WHATSAPP_API_KEY"),
        "TRUSTED_PROXIES": ProxyHops(),
    }
    if Addon.redis in spec.addons:
        env["REDIS_URL"] = RedisUrl()
    if spec.topology.kind is Topology.shared:
        env["WHATSAPP_SERVER_URL"] = ServiceUrl(whatsapp[0].name)
    else:
        env["WHATSAPP_TENANT_URLS"] = TenantUrls(routes)
    return env


def _instance(
    name: str, role: Role, spec_name: str, svc: ServiceSpec, env: Mapping[str, EnvValue], **fields: Any
) -> ServiceInstance:
    """A service instance with what every role takes from its spec as is; `fields` for what differs."""
    common: dict[str, Any] = {
        "port": svc.port,
        "health_path": svc.health_path,
        "qr_path": None,
        "tenants": (),
        "volume": None,
    }
    return ServiceInstance(
        name=name, role=role, spec_name=spec_name, spec=svc, env=_env(env, svc), **{**common, **fields}
    )


def _worker_instance(
    name: str, svc: ServiceSpec, web: ServiceInstance, web_env: Mapping[str, EnvValue]
) -> ServiceInstance:
    """The web app's environment (database, secrets, WhatsApp routes) without its PORT, and its own command.
    The web app's own `secrets` stay its own: a worker that needs one lists it under its `secrets` too."""
    own = set(web.spec.secrets) - set(web_env)
    env = {k: v for k, v in web.env if k != "PORT" and k not in own}
    if svc.port is not None:
        env["PORT"] = Plain(str(svc.port))
    return _instance(name, Role.worker, name, svc, env, depends_on=web.depends_on)


def _generic_instance(name: str, svc: ServiceSpec) -> ServiceInstance:
    env: dict[str, EnvValue] = {} if svc.port is None else {"PORT": Plain(str(svc.port))}
    return _instance(name, Role.generic, name, svc, env, volume=f"{name}-data" if svc.volume else None)
