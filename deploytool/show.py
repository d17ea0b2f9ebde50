"""The resolved plan as a document for people (`deploytool show`): each value as every target of the
environment spells it, secrets redacted."""

from __future__ import annotations

from typing import Any

from deploytool.plan.model import EnvValue, Plain, Plan
from deploytool.redact import is_secret_name, redact_url
from deploytool.render.artifacts import RenderContext
from deploytool.targets import plugins_of


def describe_value(plan: Plan, name: str, value: EnvValue, ctx: RenderContext) -> Any:
    if isinstance(value, Plain):
        if name in plan.secrets or is_secret_name(name):
            return "<redacted: a secret written as a plain value>"
        return redact_url(value.value)
    spelled = {}
    for target_plugin in plugins_of(plan):
        text = target_plugin.describe(plan, value, ctx)
        spelled[target_plugin.target.value] = redact_url(text) if isinstance(text, str) else text
    return spelled


def describe_plan(plan: Plan, ctx: RenderContext) -> dict[str, Any]:
    return {
        "project": plan.project,
        "environment": plan.env_name,
        "stage": plan.stage.value,
        "topology": plan.topology.value,
        "targets": [t.value for t in plan.targets],
        "database": {"engine": plan.database.engine, "name": plan.database.name, "user": plan.database.user},
        # which service gets which secret; the database the tool runs reads its password
        "secrets": {
            name: users or (["postgres"] if name == plan.database.password_secret else [])
            for name, users in plan.secret_users().items()
        },
        # declared, never generated: set them in the environment, .secrets.env or Railway's shared variables
        "your_secrets": list(plan.user_secrets),
        "tenants": {tenant: service for tenant, service in plan.routes},
        "services": {
            svc.name: {
                "role": svc.role.value,
                "port": svc.port,
                "tenants": list(svc.tenants),
                "replicas": svc.replicas,
                "volume": svc.volume,
                "health": svc.health_path,
                "env": {name: describe_value(plan, name, value, ctx) for name, value in svc.env},
            }
            for svc in plan.services
        },
    }
