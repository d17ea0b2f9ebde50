"""`.railway/railway.py` (Railway IaC, one file for every Railway environment) and legacy railway.json."""

from __future__ import annotations

import json
import re
from typing import Any

from deploytool.plan.build import VOLUME_MOUNT
from deploytool.plan.model import Plan, Role, ServiceInstance
from deploytool.render.artifacts import Artifact, RenderContext
from deploytool.render.resolve import railway_expr
from deploytool.render.templating import render_template

RAILWAY_FILE = ".railway/railway.py"
RAILWAY_SCHEMA_URL = "https://railway.com/railway.schema.json"
LEGACY_WARNING = (
    "legacy railway.json written on request: Railway stops reading config-as-code files on 2026-12-01 "
    "and new services cannot use them; .railway/railway.py is the supported output"
)


def _var(name: str) -> str:
    return re.sub(r"\W", "_", name).lower()


def _deploy(svc: ServiceInstance) -> dict[str, Any]:
    deploy: dict[str, Any] = {"restartPolicyType": "ON_FAILURE", "restartPolicyMaxRetries": 10}
    if svc.health_path:
        deploy["healthcheckTimeout"] = 300
    if svc.role is Role.whatsapp and svc.volume:
        deploy["requiredMountPath"] = VOLUME_MOUNT  # never start a session server without its volume
    return deploy


def _build(svc: ServiceInstance) -> dict[str, Any]:
    return {"builder": "DOCKERFILE", "dockerfilePath": svc.dockerfile, "watchPatterns": [f"/{svc.source}/**"]}


def _env_view(plan: Plan) -> dict[str, Any]:
    volumes = []
    services = []
    for svc in plan.services:
        volume_var = None
        if svc.role is Role.whatsapp and svc.volume:
            volume_var = f"{_var(svc.volume)}_volume"
            volumes.append({"var": volume_var, "name": svc.volume})
        services.append(
            {
                "var": _var(svc.name),
                "name": svc.name,
                "source": svc.source,
                "build": _build(svc),
                "pre_deploy": svc.pre_deploy,
                "healthcheck": svc.health_path,
                "replicas": svc.replicas,
                "deploy": _deploy(svc),
                # PORT explicitly set on every service so ${{svc.PORT}} references resolve.
                "env": [(name, railway_expr(value)) for name, value in svc.env],
                "volume_var": volume_var,
                "mount": VOLUME_MOUNT,
            }
        )
    return {
        "railway_name": plan.railway.environment,
        "function": f"_{_var(plan.railway.environment)}",
        "summary": f"deploytool env {plan.env_name!r}: {plan.topology}, {len(plan.tenants)} tenants.",
        "repo": plan.railway.repo,
        "branch": plan.railway.branch,
        "volumes": volumes,
        "services": services,
        "resource_vars": [v["var"] for v in volumes] + [s["var"] for s in services],
    }


def render_railway(plans: list[Plan]) -> Artifact:
    """One file for all Railway environments, whichever environment is being rendered."""
    ordered = sorted(plans, key=lambda p: p.railway.environment)
    text = render_template(
        "railway.py.j2",
        project=ordered[0].project,
        environments=tuple(p.railway.environment for p in ordered),
        envs=[_env_view(p) for p in ordered],
    )
    return Artifact(RAILWAY_FILE, text)


def legacy_config(svc: ServiceInstance) -> dict[str, Any]:
    deploy = {**_deploy(svc), "numReplicas": svc.replicas}
    if svc.health_path:
        deploy["healthcheckPath"] = svc.health_path
    if svc.pre_deploy:
        deploy["preDeployCommand"] = [svc.pre_deploy]
    return {"$schema": RAILWAY_SCHEMA_URL, "build": _build(svc), "deploy": deploy}


def render_railway_legacy(plan: Plan, ctx: RenderContext) -> list[Artifact]:
    return [
        Artifact(
            ctx.in_out(f"railway/{svc.name}/railway.json"),
            json.dumps(legacy_config(svc), indent=2, sort_keys=True) + "\n",
        )
        for svc in plan.services
    ]
