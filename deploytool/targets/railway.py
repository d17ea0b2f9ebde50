"""The `railway` target: one Railway IaC file per environment (`<out>/.railway/railway.py`), checked the
way Railway's CLI evaluates it, plus the builder's rules; legacy railway.json on request.

Railway's CLI (5.43) runs the file with `python3`, calls `main()` with NO context and diffs the graph with
the *linked* environment. A file that picked its layout from `ctx.environment` would therefore always
get its fallback, so each Railway environment gets its own file and the check evaluates it bare.
"""

from __future__ import annotations

import importlib.util
import json
import keyword
import re
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

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
)
from deploytool.render.artifacts import Artifact, RenderContext
from deploytool.render.templating import PySource, call, identifier, literal, render_template
from deploytool.spec.model import Addon, Target
from deploytool.targets.base import TargetPlugin, build_source_findings

RAILWAY_FILE = ".railway/railway.py"  # inside the environment's output folder
RAILWAY_SCHEMA_URL = "https://railway.com/railway.schema.json"
LEGACY_WARNING = (
    "legacy railway.json written on request: Railway stops reading config-as-code files on 2026-12-01 "
    "and new services cannot use them; .railway/railway.py is the supported output"
)
DATABASE_REFERENCE = "${{Postgres.DATABASE_URL}}"
# The one health endpoint both services implement (flask_service/health.py, node_service/src/http.js).
SERVICE_HEALTH_PATH = "/health"
_VOLUME_LINE = re.compile(r"^\s*VOLUME\b", re.IGNORECASE | re.MULTILINE)


def railway_url(service: str, path: str = "") -> str:
    # Private networking: <service>.railway.internal, reached through the service's explicit PORT.
    return f"http://${{{{{service}.RAILWAY_PRIVATE_DOMAIN}}}}:${{{{{service}.PORT}}}}{path}"


# Names the template itself binds or calls inside main(): a variable named after a service must not shadow one
# (a service called `service` or `db` would otherwise break the file or rewire DATABASE_URL).
_TEMPLATE_NAMES = frozenset(
    {"ctx", "db", "cache", "main", "PROJECT", "ENVIRONMENT", "ValueError", "create_railway_context", "define_railway"}
    | {"github", "image", "postgres", "project", "redis", "service", "volume"}
)


class _Variables:
    """Python variable names for the file's resources: ASCII identifiers, distinct, never a template name."""

    def __init__(self) -> None:
        self.taken: set[str] = set(_TEMPLATE_NAMES)

    def new(self, name: str, suffix: str = "") -> str:
        base = re.sub(r"\W", "_", name, flags=re.ASCII).lower() + suffix
        if not base[:1].isalpha() or keyword.iskeyword(base):
            base = f"r_{base}"
        var, n = base, 1
        while var in self.taken:
            n += 1
            var = f"{base}_{n}"
        self.taken.add(var)
        return var


def _deploy(svc: ServiceInstance) -> dict[str, Any]:
    deploy: dict[str, Any] = {"restartPolicyType": "ON_FAILURE", "restartPolicyMaxRetries": 10}
    if svc.health_path:
        deploy["healthcheckTimeout"] = 300
    if svc.volume:
        deploy["requiredMountPath"] = svc.volume_path  # never start a session server without its volume
    return deploy


def _build(svc: ServiceInstance) -> dict[str, Any]:
    return {"builder": "DOCKERFILE", "dockerfilePath": svc.dockerfile, "watchPatterns": [f"/{svc.source}/**"]}


def railway_expr(value: EnvValue) -> PySource:
    """A Python expression for the generated file (`ctx`, `db` are names in that file)."""
    if isinstance(value, SecretRef):
        return identifier(f"ctx.shared.{value.name}")
    if isinstance(value, DatabaseUrl):
        return identifier("db.env.DATABASE_URL")
    if isinstance(value, RedisUrl):
        return identifier("cache.env.REDIS_URL")
    return literal(RailwayTarget.text(value))


class RailwayTarget(TargetPlugin):
    target: ClassVar[Target] = Target.railway

    @staticmethod
    def text(value: EnvValue) -> str:
        if isinstance(value, Plain):
            return value.value
        if isinstance(value, SecretRef):
            return f"${{{{shared.{value.name}}}}}"
        if isinstance(value, ServiceUrl):
            return railway_url(value.service, value.path)
        if isinstance(value, TenantUrls):
            return value.spell(railway_url)
        if isinstance(value, AuthRoot):
            return CONTAINER_AUTH_ROOT
        if isinstance(value, ProxyHops):
            return "1"  # Railway's edge proxy sets X-Forwarded-For
        if isinstance(value, DatabaseUrl):
            return DATABASE_REFERENCE
        if isinstance(value, SessionStore):
            return "postgres"  # the project's Postgres service
        if isinstance(value, RedisUrl):
            return "${{Redis.REDIS_URL}}"
        raise TypeError(value)

    def spell(self, plan: Plan, value: EnvValue, ctx: RenderContext) -> str | None:
        return self.text(value)

    def plan_findings(self, plan: Plan) -> Iterator[Finding]:
        if plan.database.engine != "postgres":
            yield Finding(
                "RAILWAY_SQLITE", "railway target with database.engine sqlite: data would be lost on redeploy"
            )
        if plan.railway.legacy_config:
            yield Finding("RAILWAY_LEGACY_CONFIG", LEGACY_WARNING, "warning")

    def render(self, plan: Plan, ctx: RenderContext) -> list[Artifact]:
        text = render_template("railway.py.j2", env=_env_view(plan, ctx))
        artifacts = [Artifact(ctx.in_out(RAILWAY_FILE), text)]
        if plan.railway.legacy_config:
            artifacts += [
                Artifact(
                    ctx.in_out(f"railway/{svc.name}/railway.json"),
                    json.dumps(legacy_config(svc), indent=2, sort_keys=True) + "\n",
                )
                for svc in plan.services
            ]
        return artifacts

    def check(self, plan: Plan, ctx: RenderContext, artifacts: Mapping[str, Artifact], deep: bool) -> list[Finding]:
        findings = list(builder_findings(plan, ctx.root))
        railway = artifacts.get(ctx.in_out(RAILWAY_FILE))
        if railway is None:
            return [*findings, Finding("RAILWAY_EVAL", f"{RAILWAY_FILE} was not rendered")]
        if importlib.util.find_spec("railway_sdk") is None:
            return findings  # the consumer is not installed (the test suite and CI install it)
        try:
            graph = evaluate_like_cli(railway.content)
        except Exception as exc:  # the generated file must evaluate; report what Railway would see
            return [*findings, Finding("RAILWAY_EVAL", f"{RAILWAY_FILE}: evaluation failed: {exc!r}")]
        return [*findings, *check_railway_graph(plan, graph)]


def _env_view(plan: Plan, ctx: RenderContext) -> dict[str, Any]:
    volumes = []
    services = []
    variables = _Variables()
    service_vars = [variables.new(svc.name) for svc in plan.services]  # first, so they keep their plain names
    for svc, var in zip(plan.services, service_vars, strict=True):
        volume_var = None
        if svc.volume:
            volume_var = variables.new(svc.volume, "_volume")
            volumes.append({"var": volume_var, "name": svc.volume})
        repo, branch = plan.railway.repo or "", plan.railway.branch
        services.append(
            {
                "var": var,
                "name": svc.name,
                "source_expr": (
                    call("github", repo, branch=branch, rootDirectory=svc.source)
                    if svc.source is not None
                    else call("image", svc.image)
                ),
                "build": _build(svc) if svc.source is not None else None,
                # web and whatsapp run their image's CMD; a worker or another image says what to run
                "start": svc.start if svc.role in (Role.worker, Role.generic) else None,
                "pre_deploy": svc.pre_deploy,
                "healthcheck": svc.health_path,
                "replicas": svc.replicas,
                "deploy": _deploy(svc),
                # PORT explicitly set on every service so ${{svc.PORT}} references resolve.
                "env": [(name, railway_expr(value)) for name, value in svc.env],
                "volume_var": volume_var,
                "mount": svc.volume_path,
            }
        )
    return {
        "project": plan.project,
        "env_name": plan.env_name,
        "file": ctx.in_out(RAILWAY_FILE),
        "railway_name": plan.railway.environment,
        "summary": f"deploytool env {plan.env_name!r}: {plan.topology.value}, {len(plan.tenants)} tenants.",
        "repo": plan.railway.repo or "",
        "branch": plan.railway.branch,
        "volumes": volumes,
        "services": services,
        "redis": Addon.redis in plan.addons,
        # only what the file uses, so the common file reads the same as before add-ons and images existed
        "imports": sorted(
            {"create_railway_context", "define_railway", "github", "postgres", "project", "service", "volume"}
            | ({"redis"} if Addon.redis in plan.addons else set())
            | ({"image"} if any(svc.image for svc in plan.services) else set())
        ),
        "resource_vars": (["cache"] if Addon.redis in plan.addons else [])
        + [v["var"] for v in volumes]
        + [s["var"] for s in services],
    }


def legacy_config(svc: ServiceInstance) -> dict[str, Any]:
    deploy = {**_deploy(svc), "numReplicas": svc.replicas}
    if svc.health_path:
        deploy["healthcheckPath"] = svc.health_path
    if svc.pre_deploy:
        deploy["preDeployCommand"] = [svc.pre_deploy]
    return {"$schema": RAILWAY_SCHEMA_URL, "build": _build(svc), "deploy": deploy}


# ---- the consumer: Railway's CLI evaluation and its builder's rules -----------------------------------


def evaluate_like_cli(source: str) -> dict[str, Any]:
    """The graph Railway's CLI gets from this file: imported from a path, `main()` called bare, `to_graph()`."""
    with tempfile.TemporaryDirectory(prefix="deploytool-railway-") as scratch:
        path = Path(scratch) / "railway.py"
        path.write_text(source)
        spec = importlib.util.spec_from_file_location("railway_iac_user", path)
        if spec is None or spec.loader is None:
            raise ImportError(path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    candidate = getattr(module, "main", None) or getattr(module, "Railway", None) or getattr(module, "default", None)
    project: Any = candidate() if callable(candidate) else candidate
    if hasattr(project, "to_graph"):
        project = project.to_graph()
    if not isinstance(project, dict):
        raise ValueError("the file defines no main, Railway or default project")
    return project


def check_railway_graph(plan: Plan, graph: dict[str, Any]) -> Iterator[Finding]:
    label = f"{RAILWAY_FILE} ({plan.railway.environment})"
    resources = {r.get("address"): r for r in graph.get("resources", [])}
    if "database.Postgres" not in resources:
        yield Finding("RAILWAY_GRAPH", f"{label}: no Postgres database")
    expected = {f"service.{svc.name}" for svc in plan.services}
    extra = sorted(a for a in resources if isinstance(a, str) and a.startswith("service.") and a not in expected)
    if extra:
        yield Finding(
            "RAILWAY_GRAPH",
            f"{label}: evaluated without a context (as the Railway CLI does), the file declares services this "
            f"environment does not have: {', '.join(a.split('.', 1)[1] for a in extra)}",
        )
    for svc in plan.services:
        node = resources.get(f"service.{svc.name}")
        if node is None:
            yield Finding("RAILWAY_GRAPH", f"{label}: service {svc.name} is missing")
            continue
        variables = node.get("variables") or {}
        deploy = node.get("deploy") or {}
        if set(variables) != {name for name, _ in svc.env}:
            yield Finding(
                "RAILWAY_GRAPH",
                f"{label}: {svc.name} has variables {', '.join(sorted(variables))}, "
                f"expected {', '.join(name for name, _ in svc.env)}",
            )
        if svc.port is not None and variables.get("PORT", {}).get("value") != str(svc.port):
            yield Finding("RAILWAY_GRAPH", f"{label}: {svc.name} has no explicit PORT {svc.port}")
        for name in svc.secret_names():
            if variables.get(name, {}).get("type") != "sharedReference":
                yield Finding("RAILWAY_SECRET", f"{label}: {svc.name}.{name} is not a shared-variable reference")
        if svc.role is Role.web or "DATABASE_URL" in svc.env_dict():
            db = variables.get("DATABASE_URL", {})
            if db.get("type") != "reference" or db.get("resource") != "database.Postgres":
                yield Finding("RAILWAY_GRAPH", f"{label}: {svc.name}.DATABASE_URL is not {DATABASE_REFERENCE}")
        if svc.role is Role.whatsapp:
            if deploy.get("numReplicas") != 1:
                yield Finding("RAILWAY_GRAPH", f"{label}: {svc.name} must run exactly one replica")
            if svc.volume and not node.get("volumeAttachments"):
                yield Finding("RAILWAY_GRAPH", f"{label}: {svc.name} has no volume attached")


def builder_findings(plan: Plan, root: Path) -> Iterator[Finding]:
    """Rules of Railway's builder that only show on a real deploy, checked on the user's folders."""
    yield from build_source_findings(plan, root)
    if not plan.railway.repo:
        yield Finding(
            "RAILWAY_REPO",
            "railway.repo: not set; Railway builds each service from this GitHub repository",
            field="railway",
        )
    seen: set[str] = set()
    for svc in plan.services:
        if svc.spec_name in seen:
            continue
        seen.add(svc.spec_name)
        where = f"services.{svc.spec_name}"
        if svc.role in (Role.web, Role.whatsapp) and svc.health_path not in (None, SERVICE_HEALTH_PATH):
            yield Finding(
                "RAILWAY_HEALTH_PATH",
                f"{where}.health_path: {svc.health_path!r} is not {SERVICE_HEALTH_PATH}, the only health endpoint "
                f"the {'flask' if svc.role is Role.web else 'whatsapp'} service implements; Railway would poll a "
                "path that answers 404 and never take the deployment live",
            )
        if svc.source is None:
            continue  # a public image: nothing of ours to build
        try:
            text = (root / svc.source / svc.dockerfile).read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue  # missing folders and Dockerfiles are reported by build_source_findings
        if _VOLUME_LINE.search(text):
            yield Finding(
                "RAILWAY_DOCKERFILE_VOLUME",
                f"{where}: {svc.source}/{svc.dockerfile} declares VOLUME, which Railway's builder rejects "
                "(use the service's Railway volume; deploytool attaches one)",
            )
