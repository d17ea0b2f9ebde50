"""`deploytool env ENV SERVICE`: one process's variables, as its env file has them, in three formats.

The variables come from the same `env_vars` the env file is rendered from, so what this prints is what
`env/<target>/<service>.env` holds. Secrets stay references unless `--reveal` asks for their values (the
process environment first, then the output folder's `.secrets.env`, as the runners take them); a value
the runner takes from its environment (DATABASE_URL) is shown only when that environment has it.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from deploytool.errors import UserError
from deploytool.render.envfile import EnvVar, Unquotable

Format = Literal["dotenv", "json", "shell"]
FORMATS: tuple[Format, ...] = ("dotenv", "json", "shell")
_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class ProcessVariables:
    environment: str
    service: str
    target: str
    variables: list[EnvVar]
    text: str  # the env file (dotenv) of these variables


def process_variables(
    spec_path: Path,
    env_name: str,
    service: str,
    target: str | None,
    out: Path | None = None,
    sets: Sequence[str] = (),
    reveal: Mapping[str, str] | None = None,
    form: Format = "dotenv",
) -> ProcessVariables:
    """SERVICE's variables on `target` (default: the environment's first target that runs processes). With
    `reveal` (the process environment), secrets and runner-provided values are filled in."""
    from deploytool import pipeline
    from deploytool.render.artifacts import RenderContext
    from deploytool.targets import plugins_of
    from deploytool.targets.base import env_file_of

    loaded, plan = pipeline.plan_environment(spec_path, env_name, sets)
    ctx = RenderContext(root=loaded.root, out=out or pipeline.default_out(spec_path, env_name))
    svc = next((s for s in plan.services if s.name == service), None)
    if svc is None:
        names = [s.name for s in plan.services]
        shown = ", ".join(names[:12]) + (f", … ({len(names)} in all)" if len(names) > 12 else "")
        raise UserError(f"service {service!r}: not in environment {env_name} (services: {shown})")
    plugins = plugins_of(plan)
    running = [p for p in plugins if p.env_vars(plan, svc, ctx) is not None]
    if target is None:
        if not running:
            listed = ", ".join(t.value for t in plan.targets)
            raise UserError(
                f"{env_name}: its targets ({listed}) run no process on this machine, so it has no env files; "
                "Railway keeps its variables in the project (see .railway/railway.py)"
            )
        chosen = running[0]
    else:
        found = next((p for p in plugins if p.target.value == target), None)
        if found is None:
            raise UserError(f"--target {target}: not a target of {env_name} (targets: {', '.join(plan.targets)})")
        if found not in running:
            raise UserError(
                f"--target {target}: runs no process on this machine, so it has no env files (its variables are "
                f"its own: see `deploytool show {env_name}`); use a target that runs processes (local, compose)"
            )
        chosen = found
    with pipeline.located_env_errors(loaded):
        variables = chosen.env_vars(plan, svc, ctx) or []
        if reveal is not None:
            variables = _revealed(variables, svc.name, ctx.out, reveal)
        text = ""
        if form == "dotenv" or reveal is None:  # (a value the spec holds that no env file carries: refused)
            try:
                text = env_file_of(chosen, plan, svc, variables)
            except Unquotable as exc:
                if reveal is None:
                    raise
                # a secret's value that the dialect cannot carry: never echoed, and the other formats can
                raise UserError(f"{svc.name}: {exc}; --format shell or json carries any value") from None
    return ProcessVariables(env_name, svc.name, chosen.target.value, variables, text)


def _revealed(variables: list[EnvVar], service: str, out: Path, environ: Mapping[str, str]) -> list[EnvVar]:
    """The variables with every secret's value (environment, then .secrets.env) and each value the runner takes
    from its environment when that environment has it; UserError naming a secret that has no value."""
    from deploytool.output.secrets import secret_values
    from deploytool.run.environment import missing_secrets_message

    needed = sorted({name for var in variables for name in var.secrets})
    values = secret_values(needed, out, environ)
    missing = [name for name in needed if name not in values]
    if missing:
        raise UserError(missing_secrets_message(service, missing, out))
    shown = []
    for var in variables:
        if var.value is not None:
            shown.append(var)
        elif var.reference:
            value = _REFERENCE.sub(lambda m: values[m.group(1)], var.reference)
            shown.append(replace(var, value=value))
        elif var.name in environ:  # what the runner passes through (DATABASE_URL, REDIS_URL)
            shown.append(replace(var, value=environ[var.name], note=""))
        else:
            shown.append(var)
    return shown


def formatted(result: ProcessVariables, form: Format) -> str:
    """The variables as a dotenv file (the env file itself), a JSON object, or `export` lines for `eval`."""
    if form == "dotenv":
        return result.text
    written = {v.name: v.value for v in result.variables if v.value is not None}
    unset = {v.name: v.note for v in result.variables if v.value is None}
    if form == "json":
        document = {
            "environment": result.environment,
            "service": result.service,
            "target": result.target,
            "variables": written,
            "not_set": unset,  # secrets (without --reveal) and what the runner takes from its environment
        }
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    lines = [f"# {result.service} ({result.target} target, {result.environment}): its variables, for `eval`"]
    lines += [f"export {name}={shlex.quote(value)}" for name, value in written.items()]
    lines += [f"# {name}: {note}" for name, note in unset.items()]
    return "\n".join(lines) + "\n"
