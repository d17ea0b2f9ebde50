"""`.env.example`: every secret name of the environment with a placeholder, and which services use it."""

from __future__ import annotations

from deploytool.plan.model import Plan
from deploytool.render.artifacts import Artifact, RenderContext
from deploytool.render.templating import render_template


def render_env_example(plan: Plan, ctx: RenderContext) -> Artifact:
    users: dict[str, list[str]] = {}
    for svc in plan.services:
        for name in svc.secret_names():
            users.setdefault(name, []).append(svc.name)
    if plan.database.engine == "postgres":
        users.setdefault(plan.database.password_secret, []).append("postgres (a database the tool runs)")
    for name in plan.secrets:
        users.setdefault(name, [])
    # (name, who uses it, a team's own: no generated value, an empty placeholder)
    secrets = [
        (name, ", ".join(who) or "(declared, not used by a generated service)", name not in plan.generated_secrets)
        for name, who in sorted(users.items())
    ]
    text = render_template("env.example.j2", project=plan.project, env_name=plan.env_name, secrets=secrets)
    return Artifact(ctx.in_out(".env.example"), text)
