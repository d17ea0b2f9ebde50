"""The machine-readable plan: what `up`, `probe` and `render --check` read back from the output folder."""

from __future__ import annotations

import json
from typing import Any

from deploytool.plan.model import Plan
from deploytool.render.artifacts import Artifact, RenderContext
from deploytool.render.local import PASSTHROUGH, local_command, local_env_file
from deploytool.render.resolve import compose_url, local_url

MANIFEST = "deploytool-manifest.json"
MANIFEST_VERSION = 1


def probe_targets(plan: Plan) -> list[dict[str, Any]]:
    """Every check `probe` makes: each health endpoint, each tenant's QR on its server and via flask."""
    targets: list[dict[str, Any]] = []
    for svc in plan.services:
        if svc.health_path:
            targets.append({"id": f"health:{svc.name}", "kind": "health", "service": svc.name, "path": svc.health_path})
    for tenant, server in plan.routes:
        qr_path = plan.service(server).qr_path or "/tenants/{tenant}/qr"
        targets.append(
            {
                "id": f"qr:{tenant}@{server}",
                "kind": "qr",
                "service": server,
                "tenant": tenant,
                "path": qr_path.replace("{tenant}", tenant),
                "auth": "WHATSAPP_API_KEY",
            }
        )
        targets.append(
            {
                "id": f"qr:{tenant}@{plan.web.name}",
                "kind": "qr",
                "service": plan.web.name,
                "tenant": tenant,
                "via": server,
                "path": f"/api/qr?user_id={tenant}",
                "auth": "OPS_API_KEY",
            }
        )
    return targets


def manifest_data(plan: Plan, ctx: RenderContext, artifacts: list[Artifact]) -> dict[str, Any]:
    public = dict(plan.public_urls)
    services = []
    for svc in plan.services:
        services.append(
            {
                "name": svc.name,
                "role": svc.role.value,
                "port": svc.port,
                "health_path": svc.health_path,
                "tenants": list(svc.tenants),
                "local_url": local_url(plan, svc.name),
                "compose_url": compose_url(plan, svc.name),
                "public_url": public.get(svc.name),
                "command": local_command(svc) if (svc.local_start or svc.start) else None,
                "env_file": local_env_file(svc.name),
                "secrets": list(svc.secret_names()),
                "passthrough": [n for n in PASSTHROUGH if n in svc.env_dict()],
            }
        )
    return {
        "version": MANIFEST_VERSION,
        "project": plan.project,
        "environment": plan.env_name,
        "stage": plan.stage,
        "topology": plan.topology,
        "root": ctx.source_from_out("."),
        "services": services,
        "tenants": [{"tenant": t, "service": s} for t, s in plan.routes],
        "secrets": list(plan.secrets) + ([plan.database.password_secret] if plan.database.engine == "postgres" else []),
        "probe_targets": probe_targets(plan),
        "artifacts": {a.path: a.sha256 for a in sorted(artifacts, key=lambda a: a.path)},
    }


def render_manifest(plan: Plan, ctx: RenderContext, artifacts: list[Artifact]) -> Artifact:
    text = json.dumps(manifest_data(plan, ctx, artifacts), indent=2, sort_keys=True) + "\n"
    return Artifact(ctx.in_out(MANIFEST), text)
