"""docker-compose.yml + the env files it reads. Built as data, dumped with sorted keys."""

from __future__ import annotations

from typing import Any

import yaml

try:  # libyaml is ~10x faster on a thousand services; same output
    from yaml import CSafeDumper as SafeDumper
except ImportError:  # pragma: no cover
    from yaml import SafeDumper  # type: ignore[assignment]

from deploytool.plan.build import VOLUME_MOUNT
from deploytool.plan.model import Plan, Role, ServiceInstance
from deploytool.render.artifacts import Artifact, RenderContext
from deploytool.render.envfile import format_env, is_plain
from deploytool.render.resolve import compose_value

POSTGRES_IMAGE = "postgres:16-alpine"
HEALTH_TIMING = {"interval": "5s", "timeout": "3s", "retries": 20, "start_period": "10s"}
COMPOSE_FILE = "docker-compose.yml"


def compose_env_file(name: str) -> str:
    return f"env/compose/{name}.env"


def escape(text: str) -> str:
    """Compose interpolates `$` in every string; commands from the spec mean a literal `$`."""
    return text.replace("$", "$$")


def _healthcheck(svc: ServiceInstance) -> dict[str, Any] | None:
    if svc.health_path is None:
        return None
    url = f"http://127.0.0.1:{svc.port}{svc.health_path}"
    if svc.role is Role.web:
        probe = f"import urllib.request; urllib.request.urlopen('{url}', timeout=3)"
        test = ["CMD", "python", "-c", probe]
    else:  # node images are slim: no curl, but fetch is built in
        probe = f"fetch('{url}').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
        test = ["CMD", "node", "-e", probe]
    return {"test": test, **HEALTH_TIMING}


def _command(svc: ServiceInstance) -> str | None:
    if svc.start is None:
        return None
    # Compose has no pre-deploy hook: run it (migrations) right before the server, in the container.
    start = f"{svc.pre_deploy} && exec {svc.start}" if svc.pre_deploy else f"exec {svc.start}"
    return escape(start)


def _split_env(plan: Plan, svc: ServiceInstance) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """Plain values go to the env file; anything Compose must interpolate goes to `environment:`."""
    plain: list[tuple[str, str]] = []
    interpolated: dict[str, str] = {}
    for name, value in svc.env:
        text = compose_value(plan, value)
        if text is None:
            continue
        if "$" in text or not is_plain(text):
            interpolated[name] = text
        else:
            plain.append((name, text))
    return plain, interpolated


def render_compose(plan: Plan, ctx: RenderContext) -> list[Artifact]:
    services: dict[str, Any] = {}
    volumes: dict[str, Any] = {}
    env_files: list[Artifact] = []
    uses_postgres = plan.database.engine == "postgres"

    if uses_postgres:
        db = plan.database
        secret = db.password_secret
        services["postgres"] = {
            "image": POSTGRES_IMAGE,
            "environment": {
                "POSTGRES_DB": db.name,
                "POSTGRES_USER": db.user,
                "POSTGRES_PASSWORD": f"${{{secret}:?{secret} is not set (see .env.example)}}",
            },
            "healthcheck": {"test": ["CMD-SHELL", escape(f"pg_isready -U {db.user} -d {db.name}")], **HEALTH_TIMING},
            "restart": "unless-stopped",
            "volumes": ["postgres-data:/var/lib/postgresql/data"],
        }
        volumes["postgres-data"] = {}

    for svc in plan.services:
        plain, interpolated = _split_env(plan, svc)
        env_path = compose_env_file(svc.name)
        env_files.append(
            Artifact(
                ctx.in_out(env_path),
                format_env(plain, header=[f"{svc.name}: plain variables for docker compose (generated; no secrets)"]),
            )
        )
        entry: dict[str, Any] = {
            "build": {"context": ctx.source_from_out(svc.source), "dockerfile": svc.dockerfile},
            "env_file": [env_path],
            "ports": [f"127.0.0.1:{svc.port}:{svc.port}"],
            "restart": "unless-stopped",
        }
        if interpolated:
            entry["environment"] = interpolated
        command = _command(svc)
        if command:
            entry["command"] = ["sh", "-c", command]
        health = _healthcheck(svc)
        if health:
            entry["healthcheck"] = health
        depends = list(svc.depends_on) + (["postgres"] if uses_postgres and svc.role is Role.web else [])
        if depends:
            entry["depends_on"] = {name: {"condition": "service_healthy"} for name in sorted(depends)}
        if svc.role is Role.whatsapp:
            if svc.volume:
                entry["volumes"] = [f"{svc.volume}:{VOLUME_MOUNT}"]
                volumes[svc.volume] = {}
            if svc.replicas != 1:
                entry["deploy"] = {"replicas": svc.replicas}
        services[svc.name] = entry

    document: dict[str, Any] = {"name": f"{plan.project}-{plan.env_name}", "services": services}
    if volumes:
        document["volumes"] = volumes
    header = (
        f"# Generated by deploytool from deploytool.yaml ({plan.env_name}). Do not edit: run\n"
        f"# `deploytool render {plan.env_name}`. Secrets come from --env-file (see .env.example).\n"
    )
    text = header + yaml.dump(document, Dumper=SafeDumper, sort_keys=True, default_flow_style=False, width=120)
    return [Artifact(ctx.in_out(COMPOSE_FILE), text), *env_files]
