"""Spell the plan's symbolic env values for one target (local processes, compose, Railway)."""

from __future__ import annotations

import json

from deploytool.plan.build import CONTAINER_AUTH_ROOT
from deploytool.plan.model import (
    AuthRoot,
    DatabaseUrl,
    EnvValue,
    Literal,
    Plan,
    SecretRef,
    ServiceUrl,
    TenantUrls,
)
from deploytool.render.templating import pyrepr


def local_url(plan: Plan, service: str, path: str = "") -> str:
    return f"http://127.0.0.1:{plan.service(service).port}{path}"


def compose_url(plan: Plan, service: str, path: str = "") -> str:
    return f"http://{service}:{plan.service(service).port}{path}"


def railway_url(service: str, path: str = "") -> str:
    # Private networking: <service>.railway.internal, reached through the service's explicit PORT.
    return f"http://${{{{{service}.RAILWAY_PRIVATE_DOMAIN}}}}:${{{{{service}.PORT}}}}{path}"


def tenant_map(routes: tuple[tuple[str, str], ...], url_of: dict[str, str]) -> str:
    return json.dumps({tenant: url_of[service] for tenant, service in routes}, separators=(",", ":"))


def local_value(plan: Plan, value: EnvValue, out_rel: str) -> str | None:
    """None: not written to the env file (secrets and DATABASE_URL come from the runner's environment)."""
    if isinstance(value, Literal):
        return value.value
    if isinstance(value, ServiceUrl):
        return local_url(plan, value.service, value.path)
    if isinstance(value, TenantUrls):
        return tenant_map(value.routes, {s: local_url(plan, s) for _, s in value.routes})
    if isinstance(value, AuthRoot):
        return f"{out_rel}/.run/data/{value.service}"
    return None  # SecretRef, DatabaseUrl


def compose_value(plan: Plan, value: EnvValue) -> str | None:
    """Compose spelling; `${...}` is interpolated by Compose from --env-file (the secrets file)."""
    if isinstance(value, Literal):
        return value.value
    if isinstance(value, SecretRef):
        return f"${{{value.name}:?{value.name} is not set (see .env.example)}}"
    if isinstance(value, ServiceUrl):
        return compose_url(plan, value.service, value.path)
    if isinstance(value, TenantUrls):
        return tenant_map(value.routes, {s: compose_url(plan, s) for _, s in value.routes})
    if isinstance(value, AuthRoot):
        return CONTAINER_AUTH_ROOT
    if isinstance(value, DatabaseUrl):
        db = plan.database
        if db.engine != "postgres":
            return None
        secret = db.password_secret
        return f"postgresql://{db.user}:${{{secret}:?{secret} is not set (see .env.example)}}@postgres:5432/{db.name}"
    raise TypeError(value)


def railway_expr(value: EnvValue) -> str:
    """A Python expression for the generated railway.py (`ctx`, `db` are names in that file)."""
    if isinstance(value, Literal):
        return pyrepr(value.value)
    if isinstance(value, SecretRef):
        return f"ctx.shared.{value.name}"
    if isinstance(value, ServiceUrl):
        return pyrepr(railway_url(value.service, value.path))
    if isinstance(value, TenantUrls):
        return pyrepr(tenant_map(value.routes, {s: railway_url(s) for _, s in value.routes}))
    if isinstance(value, AuthRoot):
        return pyrepr(CONTAINER_AUTH_ROOT)
    if isinstance(value, DatabaseUrl):
        return "db.env.DATABASE_URL"
    raise TypeError(value)
