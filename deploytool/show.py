"""The resolved plan as a document for people (`deploytool show`): symbolic values spelled out, secrets redacted."""

from __future__ import annotations

from typing import Any

from deploytool.checks.plan_checks import SECRET_NAME
from deploytool.plan.model import AuthRoot, DatabaseUrl, EnvValue, Literal, Plan, SecretRef, ServiceUrl, TenantUrls
from deploytool.redact import redact_url
from deploytool.render.resolve import compose_value, local_value


def describe_value(plan: Plan, name: str, value: EnvValue, out_rel: str) -> Any:
    if isinstance(value, Literal):
        if name in plan.secrets or SECRET_NAME.search(name):
            return "<redacted: a secret written as a plain value>"
        return redact_url(value.value)
    if isinstance(value, SecretRef):
        return f"<secret {value.name}>"
    if isinstance(value, DatabaseUrl):
        compose = compose_value(plan, value)
        return {
            "local": "DATABASE_URL from the environment, else embedded SQLite",
            "compose": redact_url(compose) if compose else "embedded SQLite",
            "railway": "${{Postgres.DATABASE_URL}}",
        }
    if isinstance(value, (ServiceUrl, TenantUrls, AuthRoot)):
        return {"local": local_value(plan, value, out_rel), "compose": compose_value(plan, value)}
    raise TypeError(value)


def describe_plan(plan: Plan, out_rel: str) -> dict[str, Any]:
    return {
        "project": plan.project,
        "environment": plan.env_name,
        "stage": plan.stage,
        "topology": plan.topology,
        "targets": list(plan.targets),
        "database": {"engine": plan.database.engine, "name": plan.database.name, "user": plan.database.user},
        "secrets": list(plan.secrets),
        "tenants": {tenant: service for tenant, service in plan.routes},
        "services": {
            svc.name: {
                "role": svc.role.value,
                "port": svc.port,
                "tenants": list(svc.tenants),
                "replicas": svc.replicas,
                "volume": svc.volume,
                "health": svc.health_path,
                "env": {name: describe_value(plan, name, value, out_rel) for name, value in svc.env},
            }
            for svc in plan.services
        },
    }
