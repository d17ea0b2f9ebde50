"""Procfile + env/local/*.env for running every service as a process on this machine."""

from __future__ import annotations

from deploytool.plan.model import Plan, SecretRef, ServiceInstance
from deploytool.render.artifacts import Artifact, RenderContext
from deploytool.render.envfile import format_env
from deploytool.render.resolve import local_value
from deploytool.render.templating import render_template

PROCFILE = "Procfile"
PASSTHROUGH = ("DATABASE_URL",)  # taken from the runner's environment when set; else SQLite


def local_env_file(name: str) -> str:
    return f"env/local/{name}.env"


def local_command(svc: ServiceInstance) -> str:
    if svc.local_start:
        return svc.local_start
    if svc.start:
        return f"cd {svc.source} && exec {svc.start}"
    raise ValueError(f"service {svc.name} has no start command")


def render_local(plan: Plan, ctx: RenderContext) -> list[Artifact]:
    artifacts = []
    for svc in plan.services:
        pairs = []
        for name, value in svc.env:
            text = local_value(plan, value, ctx.out_rel)
            if text is not None:
                pairs.append((name, text))
        secrets = [name for name, value in svc.env if isinstance(value, SecretRef)]
        header = [
            f"{svc.name}: variables for running as a local process (generated; no secrets)",
            f"injected at start: {', '.join(secrets) or '-'} (secrets); "
            f"{', '.join(PASSTHROUGH) if svc.env_dict().get('DATABASE_URL') else '-'} (when set)",
        ]
        artifacts.append(Artifact(ctx.in_out(local_env_file(svc.name)), format_env(pairs, header=header)))
    processes = [(svc.name, local_command(svc)) for svc in plan.services]
    artifacts.append(
        Artifact(ctx.in_out(PROCFILE), render_template("Procfile.j2", env_name=plan.env_name, processes=processes))
    )
    return artifacts


def render_env_example(plan: Plan, ctx: RenderContext) -> Artifact:
    users: dict[str, list[str]] = {}
    for svc in plan.services:
        for name in svc.secret_names():
            users.setdefault(name, []).append(svc.name)
    if plan.database.engine == "postgres":
        users.setdefault(plan.database.password_secret, []).append("postgres (compose)")
    for name in plan.secrets:
        users.setdefault(name, [])
    secrets = [
        (name, ", ".join(who) or "(declared, not used by a generated service)") for name, who in sorted(users.items())
    ]
    text = render_template("env.example.j2", project=plan.project, env_name=plan.env_name, secrets=secrets)
    return Artifact(ctx.in_out(".env.example"), text)
