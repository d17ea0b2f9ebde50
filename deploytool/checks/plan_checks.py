"""Cross-checks over the plan, each a small named function returning findings, run in a fixed order.

They look at the environment each process will actually see (after the spec's own `env` overrides),
so a hand-written WHATSAPP_SERVER_URL pointing at a port nobody serves — the seed-002 bug — is caught.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

from deploytool.plan.model import Finding, Plain, Plan, Role, SecretRef, ServiceInstance
from deploytool.redact import has_url_credentials, is_secret_name, looks_like_secret_value
from deploytool.render.artifacts import RenderContext
from deploytool.spec.model import Addon, Topology
from deploytool.targets import TargetPlugin, plugins_of

Check = Callable[[Plan], Iterator[Finding]]


POSTGRES_PORT = 5432
REDIS_PORT = 6379


def _port_field(plan: Plan, svc: ServiceInstance) -> str:
    """Where a service's port comes from: an explicit per-tenant port, else the service's base port."""
    if len(svc.tenants) == 1 and plan.topology is Topology.per_port:
        return f"topology.ports.{svc.tenants[0]}"
    return f"services.{svc.spec_name}.port"


def _reserved_ports(plan: Plan) -> dict[int, str]:
    """Ports the environment's own backing services listen on where it runs (its database, its add-ons)."""
    reserved: dict[int, str] = {}
    if plan.database.engine == "postgres":
        reserved[POSTGRES_PORT] = "PostgreSQL's, which this environment uses as its database"
    if Addon.redis in plan.addons:
        reserved[REDIS_PORT] = "Redis', which this environment uses as its `redis` add-on"
    return reserved


def _out_of_range(plan: Plan, svc: ServiceInstance) -> Finding:
    counted = len(svc.tenants) == 1 or svc.name.startswith(f"{svc.spec_name}-shard-")
    why = " (ports are counted up from the WhatsApp base port, one per process)" if counted else ""
    return Finding(
        "PORT_OUT_OF_RANGE",
        f"{svc.name}: port {svc.port} is outside 1-65535{why}; lower the base port",
        field=_port_field(plan, svc),
    )


def ports_out_of_range(plan: Plan) -> list[Finding]:
    """PORT_OUT_OF_RANGE for every port the plan reached (explicit or counted up past 65535): checked before any
    artifact is built, since no target (nor the manifest) can hold such a port."""
    return [_out_of_range(plan, svc) for svc in plan.services if svc.port is not None and not 1 <= svc.port <= 65535]


def check_ports(plan: Plan) -> Iterator[Finding]:
    owners: dict[int, list[str]] = defaultdict(list)
    runs_here = [p.target.value for p in plugins_of(plan) if p.runner is not None]
    reserved = _reserved_ports(plan)
    for svc in plan.services:
        if svc.port is None:
            continue  # listens nowhere (a worker)
        owners[svc.port].append(svc.name)
        if not 1 <= svc.port <= 65535:
            yield _out_of_range(plan, svc)
        elif svc.port < 1024 and runs_here:
            yield Finding(
                "PORT_PRIVILEGED",
                f"{svc.name}: port {svc.port} is privileged (below 1024): {', '.join(runs_here)} would need root "
                "to listen or publish there; pick a port from 1024 up",
                field=_port_field(plan, svc),
            )
        if svc.port in reserved and runs_here:
            yield Finding(
                "PORT_RESERVED",
                f"{svc.name}: port {svc.port} is {reserved[svc.port]}",
                field=_port_field(plan, svc),
            )
    for port, names in sorted(owners.items()):
        if len(names) > 1:
            yield Finding("PORT_COLLISION", f"port {port} is used by {', '.join(sorted(names))}")


def check_names(plan: Plan) -> Iterator[Finding]:
    seen: dict[str, int] = defaultdict(int)
    for svc in plan.services:
        seen[svc.name] += 1
    if plan.database.engine == "postgres":
        seen["postgres"] += 1
    for name, count in sorted(seen.items()):
        if count > 1:
            yield Finding("DUPLICATE_SERVICE_NAME", f"service name {name!r} is generated {count} times")
    known = {svc.name for svc in plan.services} | {svc.spec_name for svc in plan.services}
    for name, _ in plan.public_urls:
        if name not in known:
            yield Finding(
                "UNKNOWN_SERVICE",
                f"public_urls.{name}: no such service (known: {', '.join(sorted(known))})",
                field=f"public_urls.{name}",
            )


def _served_tenants(svc: ServiceInstance) -> set[str] | None:
    """Tenants a WhatsApp process accepts, from its own env; None = any id (multi without allow-list)."""
    env = svc.env_dict()
    mode = env.get("WA_MODE")
    if isinstance(mode, Plain) and mode.value == "single":
        tenant = env.get("TENANT_ID")
        return {tenant.value} if isinstance(tenant, Plain) else set()
    allow = env.get("TENANTS")
    if isinstance(allow, Plain) and allow.value.strip():
        return {t.strip() for t in allow.value.split(",") if t.strip()}
    return None


def _listeners(plan: Plan, target: TargetPlugin) -> dict[tuple[str, int], ServiceInstance]:
    out: dict[tuple[str, int], ServiceInstance] = {}
    for svc in plan.services:
        if svc.port is None:
            continue
        for host in target.hosts(plan, svc) or ():
            out[(host, svc.port)] = svc
    return out


def _flask_routes(plan: Plan, target: TargetPlugin) -> dict[str, str | None]:
    """tenant -> base URL exactly as flask_service resolves it from its env (map wins, then server URL)."""
    ctx = RenderContext(root=Path("."), out=Path("."))
    # a plain value is what the process sees, however a target escapes it in its files (Compose: `$$`)
    resolved = {
        name: value.value if isinstance(value, Plain) else target.spell(plan, value, ctx)
        for name, value in plan.web.env
    }
    try:
        mapping = json.loads(resolved.get("WHATSAPP_TENANT_URLS") or "{}")
    except json.JSONDecodeError:
        mapping = None
    server = resolved.get("WHATSAPP_SERVER_URL")
    routes: dict[str, str | None] = {}
    for tenant in plan.tenants:
        url = mapping.get(tenant) if isinstance(mapping, dict) else None
        routes[tenant] = url if isinstance(url, str) else server
    return routes


def check_routing(plan: Plan) -> Iterator[Finding]:
    """Every tenant must reach a process that listens at the URL flask uses and accepts that tenant."""
    web_env = plan.web.env_dict()
    raw_map = web_env.get("WHATSAPP_TENANT_URLS")
    if isinstance(raw_map, Plain):
        try:
            if not isinstance(json.loads(raw_map.value), dict):
                raise ValueError
        except ValueError:
            yield Finding("BAD_TENANT_URLS", f"{plan.web.name}: WHATSAPP_TENANT_URLS is not a JSON object")
    # Only targets whose addresses are known offline can be checked (not a cloud's private domains).
    checkable = [p for p in plugins_of(plan) if p.hosts(plan, plan.web) is not None]
    served_by: dict[str, set[str] | None] = {}  # parsed once per process, not once per tenant
    for target_plugin in checkable:
        target = target_plugin.target.value
        listeners = _listeners(plan, target_plugin)
        for tenant, url in _flask_routes(plan, target_plugin).items():
            if not url:
                yield Finding("TENANT_UNROUTED", f"tenant {tenant}: flask has no WhatsApp URL for it ({target})")
                continue
            parts = urlsplit(url)
            try:
                port = parts.port or (443 if parts.scheme == "https" else 80)
            except ValueError:
                port = -1
            svc = listeners.get((parts.hostname or "", port))
            if svc is None or svc.role is not Role.whatsapp:
                yield Finding(
                    "URL_NO_LISTENER",
                    f"tenant {tenant}: flask would call {url} ({target}) but no WhatsApp service listens there",
                )
                continue
            if svc.name not in served_by:
                served_by[svc.name] = _served_tenants(svc)
            served = served_by[svc.name]
            if served is not None and tenant not in served:
                yield Finding(
                    "TENANT_UNROUTED",
                    f"tenant {tenant}: routed to {svc.name} ({url}, {target}), which does not serve it",
                )


def check_whatsapp_services(plan: Plan) -> Iterator[Finding]:
    for svc in plan.by_role(Role.whatsapp):
        if svc.replicas != 1:
            yield Finding(
                "WHATSAPP_REPLICAS",
                f"{svc.name}: replicas={svc.replicas}; a WhatsApp session can only live in one process "
                "(and Railway cannot attach a volume to replicas): use the sharded topology instead",
            )
        # Only the file store keeps sessions on disk; the PostgreSQL store keeps them in the database.
        if svc.volume is None and svc.session_store == "files" and plan.stage.value != "development":
            yield Finding(
                "WHATSAPP_NO_VOLUME",
                f"{svc.name}: no volume outside development with the file session store (SESSION_STORE=files); "
                "every session is lost on redeploy",
            )
        if plan.topology is not Topology.per_port and not svc.tenants:
            yield Finding("EMPTY_SHARD", f"{svc.name}: holds no tenant", "warning")


def check_shards(plan: Plan, capacity: int | None = None) -> Iterator[Finding]:
    if plan.shard_lock is None or capacity is None:
        return
    load: dict[int, int] = defaultdict(int)
    for shard in plan.shard_lock.values():
        load[shard] += 1
    for shard, count in sorted(load.items()):
        if count > capacity:
            yield Finding(
                "SHARD_OVER_CAPACITY",
                f"shard {shard} holds {count} tenants (max {capacity}); a render never moves a tenant on its own "
                "(its session must follow it): `deploytool tenants rebalance ENV --apply` or `tenants move` does",
            )


def check_secrets(plan: Plan) -> Iterator[Finding]:
    declared = set(plan.secrets)
    for svc in plan.services:
        for name, value in svc.env:
            if isinstance(value, SecretRef):
                if value.name not in declared:
                    yield Finding(
                        "SECRET_UNDECLARED",
                        f"{svc.name}: {name} needs secret {value.name}, which is not in `secrets`",
                    )
                continue
            if not isinstance(value, Plain):
                continue
            if name in declared or is_secret_name(name):
                yield Finding(
                    "SECRET_LITERAL",
                    f"{svc.spec_name}.env.{name}: a secret written as a plain value; list its name under the "
                    f"top-level `secrets` and under `services.{svc.spec_name}.secrets` (instead of `env`), and give "
                    "the value through the environment or .secrets.env",
                    field=f"services.{svc.spec_name}.env.{name}",
                )
            elif has_url_credentials(value.value):
                yield Finding(
                    "SECRET_LITERAL",
                    f"{svc.spec_name}.env.{name}: a URL with credentials in the spec; declare it under `secrets`",
                    field=f"services.{svc.spec_name}.env.{name}",
                )
            elif looks_like_secret_value(value.value):
                yield Finding(
                    "SECRET_LITERAL",
                    f"{svc.spec_name}.env.{name}: a value shaped like an API key or token in the spec; declare it "
                    f"under `secrets` and `services.{svc.spec_name}.secrets`",
                    field=f"services.{svc.spec_name}.env.{name}",
                )


def check_unused_secrets(plan: Plan) -> Iterator[Finding]:
    """A declared secret that reaches no service is a name someone meant to give one (a warning: an overlay may
    drop the service that uses it)."""
    used = {name for svc in plan.services for name in svc.secret_names()}
    if plan.database.engine == "postgres":
        used.add(plan.database.password_secret)  # the database the tool runs reads it
    for name in plan.secrets:
        if name not in used:
            yield Finding(
                "SECRET_UNUSED",
                f"secrets: {name} is declared but no service gets it; list it under `services.<name>.secrets` "
                "of the service that needs it (or remove it)",
                "warning",
                field="secrets",
            )


def check_sqlite_shared(plan: Plan) -> Iterator[Finding]:
    """With SQLite the database is a file beside the web app: a worker must run where it can open that file.
    A target that reaches two services at different host names runs them apart (containers), each with its
    own file system, so the worker would get a database file of its own."""
    if plan.database.engine != "sqlite":
        return
    for target_plugin in plugins_of(plan):
        web_hosts = target_plugin.hosts(plan, plan.web)
        if web_hosts is None:
            continue  # a cloud: its own rule (RAILWAY_SQLITE)
        for svc in plan.by_role(Role.worker):
            if target_plugin.hosts(plan, svc) != web_hosts:
                yield Finding(
                    "SQLITE_NOT_SHARED",
                    f"services.{svc.spec_name}: a worker with database.engine sqlite on the "
                    f"{target_plugin.target.value} target gets a SQLite file of its own, not {plan.web.name}'s "
                    "(separate containers share no file); use database.engine postgres there",
                    field=f"services.{svc.spec_name}",
                )


def check_targets(plan: Plan) -> Iterator[Finding]:
    """Each target's own rules about the plan (start commands, databases it cannot keep, …)."""
    for target_plugin in plugins_of(plan):
        yield from target_plugin.plan_findings(plan)


PLAN_CHECKS: tuple[Check, ...] = (
    check_ports,
    check_names,
    check_routing,
    check_whatsapp_services,
    check_secrets,
    check_unused_secrets,
    check_sqlite_shared,
    check_targets,
)


def check_plan(plan: Plan, shard_capacity: int | None = None) -> list[Finding]:
    findings = list(plan.notes)
    for check in PLAN_CHECKS:
        findings.extend(check(plan))
    findings.extend(check_shards(plan, shard_capacity))
    return findings
