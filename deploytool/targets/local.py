"""The `local` target: a Procfile and `env/local/<service>.env`, run as processes here by `deploytool up`.

Each process starts from its env file (plus its secrets and the passthrough names from the runner's
environment): what a person reads is what runs. The manifest names the file (`services[].process.env_file`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar, assert_never

from deploytool.plan.model import (
    AuthRoot,
    DatabaseUrl,
    EnvValue,
    Finding,
    Plain,
    Plan,
    ProxyHops,
    RedisUrl,
    Role,
    SecretRef,
    ServiceInstance,
    ServiceUrl,
    SessionStore,
    TenantUrls,
)
from deploytool.render.artifacts import Artifact, RenderContext
from deploytool.render.envfile import EnvVar, env_file_path
from deploytool.render.manifest import ManifestProcess
from deploytool.render.templating import render_template
from deploytool.spec.model import Target
from deploytool.targets.base import TargetPlugin

PROCFILE = "Procfile"
SECRET_NOTE = "from .secrets.env or the environment"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]", "::1")


def local_command(svc: ServiceInstance) -> str | None:
    if svc.local_start:
        return svc.local_start
    if svc.start and svc.source is not None:  # a public image's command means nothing on this machine
        return f"cd {svc.source} && exec {svc.start}"
    return None  # the NO_START_COMMAND finding says so before anything is written


def local_url(plan: Plan, service: str, path: str = "") -> str:
    return f"http://127.0.0.1:{plan.service(service).port}{path}"


class LocalTarget(TargetPlugin):
    target: ClassVar[Target] = Target.local
    runner: ClassVar[str | None] = "procfile"
    uses_secrets_file: ClassVar[bool] = True

    def spell(self, plan: Plan, value: EnvValue, ctx: RenderContext) -> str | None:
        match value:
            case Plain():
                return value.value
            case ServiceUrl():
                return local_url(plan, value.service, value.path)
            case TenantUrls():
                return value.spell(lambda service: local_url(plan, service))
            case AuthRoot():
                return f"{ctx.out_rel}/.run/data/{value.service}"
            case ProxyHops():
                return "0"  # browsers connect to the process directly
            case SecretRef() | DatabaseUrl() | RedisUrl():
                return None  # injected by the runner from its environment (secrets: else .secrets.env)
            case SessionStore():
                # unset, so node's rule follows the runner's DATABASE_URL (postgres when it has one, else the
                # AUTH_ROOT folders)
                return None
            case _:
                assert_never(value)

    def describe(self, plan: Plan, value: EnvValue, ctx: RenderContext) -> Any:
        if isinstance(value, DatabaseUrl):
            return "DATABASE_URL from the environment, else embedded SQLite"
        if isinstance(value, RedisUrl):
            return "REDIS_URL from the environment"
        if isinstance(value, SessionStore):
            return "unset: postgres when DATABASE_URL is set, else files under AUTH_ROOT"
        if isinstance(value, SecretRef):
            return f"<secret {value.name}> (environment, else .secrets.env)"
        return self.spell(plan, value, ctx)

    def plan_findings(self, plan: Plan) -> Iterator[Finding]:
        # No finding for `addons: [redis]`: only the procfile runner's `up` needs REDIS_URL from the environment,
        # and it refuses to start without it, naming the variable (run/environment.py), where the advice applies.
        for svc in plan.services:
            command = local_command(svc)
            if command is None:
                yield Finding(
                    "NO_START_COMMAND",
                    f"services.{svc.spec_name}: no local_start or start command, so the local target cannot run "
                    f"{svc.name}",
                    field=f"services.{svc.spec_name}",
                )
            elif len(f"-{command}-".splitlines()) > 1:
                # a Procfile holds one process per line: a line break would start another process
                yield Finding(
                    "PROCFILE_LINE_BREAK",
                    f"services.{svc.spec_name}: the local command {command!r} holds a line break, which a Procfile "
                    "line cannot (join the commands with && or ;)",
                    field=f"services.{svc.spec_name}",
                )

    def hosts(self, plan: Plan, svc: ServiceInstance) -> tuple[str, ...] | None:
        return LOOPBACK_HOSTS

    def process(self, plan: Plan, svc: ServiceInstance, ctx: RenderContext) -> ManifestProcess | None:
        command = local_command(svc)
        if command is None:
            return None
        check = svc.health_command
        if check is not None and svc.source is not None:
            check = f"cd {svc.source} && {check}"  # where its start command runs
        return ManifestProcess(
            command=command, env_file=env_file_path(self.target.value, svc.name), health_command=check
        )

    def env_vars(self, plan: Plan, svc: ServiceInstance, ctx: RenderContext) -> list[EnvVar]:
        variables = []
        for name, value in svc.env:
            source, field = plan.env_origin(svc, name, value)
            text = self.spell(plan, value, ctx)
            if text is not None:
                variables.append(EnvVar(name, text, source, field=field))
            elif isinstance(value, SecretRef):
                variables.append(EnvVar(name, None, source, SECRET_NOTE, reference=f"${{{name}}}"))
            elif isinstance(value, DatabaseUrl):
                fallback = "embedded SQLite" if svc.role is not Role.whatsapp else "sessions in the AUTH_ROOT folders"
                note = f"from the runner's environment when set (never copied), else {fallback}"
                variables.append(EnvVar(name, None, source, note))
            elif isinstance(value, RedisUrl):
                note = "from the runner's environment (required: no Redis runs on the local target)"
                variables.append(EnvVar(name, None, source, note))
            elif isinstance(value, SessionStore):
                note = "unset: node_service uses PostgreSQL when DATABASE_URL is set, else the AUTH_ROOT folders"
                variables.append(EnvVar(name, None, source, note))
        return variables

    def env_title(self, plan: Plan, svc: ServiceInstance) -> list[str]:
        return [
            f"{svc.name} (local target): every variable `deploytool up {plan.env_name}` starts this process with,",
            "from the project root; the runner adds the ones not written here.",
        ]

    def render(self, plan: Plan, ctx: RenderContext) -> list[Artifact]:
        processes = [(svc.name, local_command(svc) or "") for svc in plan.services]
        text = render_template("Procfile.j2", env_name=plan.env_name, processes=processes)
        return [Artifact(ctx.in_out(PROCFILE), text)]
