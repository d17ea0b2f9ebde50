"""The tenant impact of a deploy (issue 30): which WhatsApp services restart, and which tenants reconnect.

Each release records, per service, a hash of the service as planned (`config`) and a WhatsApp service's tenants.
Before `up`, and in `render` / `railway plan` of an environment with a live release, the plan is compared with
that release: a WhatsApp service whose hash differs (or that is new) restarts, and every tenant it serves drops
its connection until the new process has loaded the session; a tenant now on another service moves. A tenant's
link state is shown when `tenants list` knows it (a running environment), else left out.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

from deploytool.plan.model import Plan, Role, ServiceInstance
from deploytool.releases import Release, ServiceRelease


def service_config(svc: ServiceInstance) -> str:
    """A stable hash of what the service runs with: its spec, port, tenants, volume and variables (a secret
    appears as its reference, never a value)."""
    document = {
        "name": svc.name,
        "port": svc.port,
        "tenants": list(svc.tenants),
        "volume": svc.volume,
        "env": [[name, repr(value)] for name, value in svc.env],
        "spec": svc.spec.model_dump(mode="json"),
        "depends_on": list(svc.depends_on),
    }
    return hashlib.sha256(json.dumps(document, sort_keys=True, default=str).encode()).hexdigest()


def planned_services(plan: Plan) -> dict[str, ServiceRelease]:
    return {
        svc.name: ServiceRelease(
            config=service_config(svc), tenants=tuple(svc.tenants) if svc.role == Role.whatsapp else ()
        )
        for svc in plan.services
    }


def impact_lines(plan: Plan, live: Release | None, states: Mapping[str, str] | None = None) -> list[str]:
    """`whatsapp-shard-2 restarts: tenants 3, 7 (linked) reconnect` per WhatsApp service the plan changes,
    and a line per tenant that moves to another service. Nothing when there is no live release to compare."""
    if live is None or not any(r.config for r in live.services.values()):
        return []
    states = states or {}

    def named(tenants: tuple[str, ...] | list[str]) -> str:
        shown = [f"{t} ({states[t]})" if t in states else t for t in tenants]
        return f"tenant{'s' if len(shown) > 1 else ''} {', '.join(shown)}"

    lines = []
    before = {t: name for name, r in live.services.items() for t in r.tenants}
    for svc in plan.services:
        if svc.role != Role.whatsapp:
            continue
        was = live.services.get(svc.name)
        if was is not None and was.config == service_config(svc):
            continue
        what = "starts (new)" if was is None else "restarts"
        lines.append(f"{svc.name} {what}: {named(svc.tenants)} reconnect" if svc.tenants else f"{svc.name} {what}")
        for tenant in svc.tenants:
            old = before.get(tenant)
            if old is not None and old != svc.name:
                lines.append(f"  tenant {tenant} moves from {old} to {svc.name} (its session must move with it)")
    return lines
