"""How Railway's current CLI evaluates `.railway/railway.py` and scopes it per environment: a model written
from the facts of railwayapp/cli's source (none of its code), so `validate` sees what `railway config plan`
would see for every environment of a project.

Modelled (railwayapp/cli, `src/iac/eval.rs` 86fedb2, `src/iac/environments.rs` c887aab):
- `evaluate_python`: the file is imported from its path; `RAILWAY_IAC_CONTEXT` (JSON: command, projectId,
  projectName, environmentId, environment, environmentName, pr `{number, branch, base}` with `base` the
  environment a PR environment copies, and features; eval.rs and engine.rs at 6971a03) becomes railway-sdk's
  context; the first of `main`, `Railway`, `default` is called with that context when it takes a parameter,
  bare otherwise, and `to_graph()` gives the graph.
- `evaluation_contexts`: the target environment first, then every other persistent environment with
  `pr: null` (a persistent target is not evaluated twice).
- `plan_scope`: a resource declared in only some evaluations is an error; its `environments` must be the same
  in every evaluation and an array of names, each a project environment; the target keeps the resources whose
  `environments` is absent or names it, and the rest are excluded there (planned for removal if they exist).
- Their caller, `run` in src/iac/engine.rs (6971a03): a PR environment's scope is matched against the
  environment it was copied from (`pr.base`, its `sourceEnvironment`), and environment names are checked only
  without a project token (`RAILWAY_TOKEN`), whose environment list holds its own environment alone.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import inspect
import json
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import CodeType
from typing import Any

from deploytool.errors import UserError

CLI_SOURCE = "railwayapp/cli src/iac/eval.rs 86fedb2, src/iac/environments.rs c887aab"
# A persistent environment the spec does not describe (someone's `qa`): it must evaluate and get nothing.
UNKNOWN_ENVIRONMENT = "deploytool-check-unknown"
_MODULE = "railway_iac_user"
# What the CLI says it understands, in every context (eval.rs at 6971a03): an SDK emits no feature outside it.
IAC_FEATURES = ("variables-policy", "environments", "pr-context", "environment-owned-branch")


class LayoutError(UserError):
    """The spec's environments cannot share one Railway project file as written."""


class EvaluationFailed(Exception):
    pass


@dataclass(frozen=True)
class Context:
    """One evaluation's `RAILWAY_IAC_CONTEXT`."""

    environment: str
    pr: Mapping[str, Any] | None = field(default=None, compare=False)
    match_name: str | None = None  # whose `environments` entry a PR environment matches (its source)
    command: str = "plan"

    @property
    def label(self) -> str:
        if self.pr is not None:
            return f"PR environment {self.environment} (copies {self.match_name})"
        if self.environment == UNKNOWN_ENVIRONMENT:
            return "a Railway environment the spec does not describe"
        return self.environment

    def payload(self) -> dict[str, Any]:
        return {
            "command": self.command,
            "projectId": None,
            "projectName": None,
            "environmentId": f"id-{self.environment}",
            "environment": self.environment,
            "environmentName": self.environment,
            "pr": dict(self.pr) if self.pr is not None else None,
            "features": list(IAC_FEATURES),
        }


def pr_context(base: str, number: int = 1) -> Context:
    """A PR environment's context, as Railway names them (`<project>-pr-N`), copied from `base`."""
    # `base` is the environment it copies (engine.rs takes it from sourceEnvironment.name), not a git branch
    return Context(f"pr-{number}", pr={"number": number, "branch": "deploytool-check", "base": base}, match_name=base)


def evaluate(source: str, contexts: Sequence[Context]) -> dict[Context, list[dict[str, Any]]]:
    """The resources of the graph each context gets. The file is executed afresh for every context, as the CLI
    runs a new interpreter for each."""
    with tempfile.TemporaryDirectory(prefix="deploytool-railway-") as scratch:
        return _evaluate_file(_scratch_file(scratch, source), contexts)


# A file this big is evaluated in a child interpreter (`start_evaluate`): its compile and runs (0.15-0.2 s of CPU
# at 1,000 per-port tenants, 320 kB) then happen on another core while the caller renders the rest. A smaller one
# costs less than the child's start (an interpreter and railway-sdk's import, about 0.1 s), so it stays here.
CHILD_MIN_BYTES = 256 * 1024

# The child imports this module alone: not `deploytool.targets`, whose __init__ loads every target and the stack.
_CHILD = """
import sys, types
sys.path.insert(0, sys.argv[1])
package = types.ModuleType("deploytool.targets")
package.__path__ = [sys.argv[2]]
sys.modules["deploytool.targets"] = package
from deploytool.targets.railway_iac import _child_main
_child_main(sys.argv[3], sys.argv[4])
"""


def start_evaluate(
    source: str, contexts: Sequence[Context], child_min_bytes: int | None = None
) -> Callable[[], dict[Context, list[dict[str, Any]]]]:
    """`evaluate`, started now and collected by the returned call (EvaluationFailed then, as `evaluate` raises).

    A file of `child_min_bytes` (default: `CHILD_MIN_BYTES`) characters or more runs in a child interpreter,
    which the caller's work does not wait for; the graphs come back as the JSON the CLI reads them from. A child
    that gives no answer (it could not start, it was killed) is replaced by `evaluate` here, so the findings
    never depend on where it ran."""
    if len(source) < (CHILD_MIN_BYTES if child_min_bytes is None else child_min_bytes) or not contexts:
        return lambda: evaluate(source, contexts)
    scratch = tempfile.TemporaryDirectory(prefix="deploytool-railway-")
    try:
        path = _scratch_file(scratch.name, source)
        wanted = json.dumps([[c.environment, c.pr, c.match_name, c.command] for c in contexts])
        here = Path(__file__).resolve().parent
        process = subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(here.parent.parent), str(here), str(path), wanted],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
    except BaseException:
        scratch.cleanup()
        raise

    def finish() -> dict[Context, list[dict[str, Any]]]:
        try:
            try:
                out, _ = process.communicate()
            except BaseException:
                process.kill()
                process.wait()
                raise
        finally:
            scratch.cleanup()
        try:
            answer = json.loads(out) if process.returncode == 0 else None
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            return evaluate(source, contexts)
        if "failed" in answer:
            raise EvaluationFailed(str(answer["failed"]))
        return dict(zip(contexts, answer["graphs"], strict=True))

    return finish


def _child_main(path: str, wanted: str) -> None:
    """In the child: evaluate the file at `path` for the contexts in `wanted`, the answer as JSON on stdout."""
    contexts = [Context(env, pr=pr, match_name=match, command=cmd) for env, pr, match, cmd in json.loads(wanted)]
    answer_to, sys.stdout = sys.stdout, sys.stderr  # what the file prints is not the answer
    try:
        graphs = _evaluate_file(Path(path), contexts)
        answer: dict[str, Any] = {"graphs": [graphs[c] for c in contexts]}
    except EvaluationFailed as exc:
        answer = {"failed": str(exc)}
    answer_to.write(json.dumps(answer))
    answer_to.flush()


def _scratch_file(scratch: str, source: str) -> Path:
    path = Path(scratch) / ".railway" / "railway.py"
    path.parent.mkdir()
    path.write_text(source, encoding="utf-8")
    return path


def _evaluate_file(path: Path, contexts: Sequence[Context]) -> dict[Context, list[dict[str, Any]]]:
    from railway_sdk import create_railway_context

    graphs: dict[Context, list[dict[str, Any]]] = {}
    loader = importlib.machinery.SourceFileLoader(_MODULE, str(path))
    try:
        # compiled once (a 1,000-tenant file takes 0.05 s to compile), then run in a new module for every
        # context: what the CLI's interpreters do with the bytecode Python caches beside the file
        code = loader.get_code(_MODULE)
        if code is None:
            raise ImportError(path)
    except Exception as exc:  # a syntax error: what the CLI would print for its first evaluation
        label = contexts[0].label if contexts else "the file"
        raise EvaluationFailed(f"evaluation for {label} failed: {exc!r}") from None
    for context in contexts:
        try:
            graph = _evaluate_once(loader, code, create_railway_context(context.payload()))
        except Exception as exc:  # what Railway's CLI would print: the evaluation failed
            raise EvaluationFailed(f"evaluation for {context.label} failed: {exc!r}") from None
        resources = graph.get("resources")
        if not isinstance(resources, list):
            raise EvaluationFailed(f"evaluation for {context.label} gave no resources list")
        graphs[context] = [r for r in resources if isinstance(r, dict)]
    return graphs


def _evaluate_once(loader: importlib.machinery.SourceFileLoader, code: CodeType, ctx: Any) -> dict[str, Any]:
    """One evaluation, in a module of its own (nothing of an earlier evaluation's globals is seen)."""
    spec = importlib.util.spec_from_file_location(_MODULE, loader.path, loader=loader)
    if spec is None:
        raise ImportError(loader.path)
    module = importlib.util.module_from_spec(spec)
    exec(code, module.__dict__)  # what `loader.exec_module(module)` does, with the code compiled once
    candidate = getattr(module, "main", None) or getattr(module, "Railway", None) or getattr(module, "default", None)
    if callable(candidate):
        try:
            takes_context = bool(inspect.signature(candidate).parameters)
        except (TypeError, ValueError):
            takes_context = True
        project = candidate(ctx) if takes_context else candidate()
    else:
        project = candidate
    if hasattr(project, "to_graph"):
        project = project.to_graph()
    if not isinstance(project, dict):
        raise ValueError("the file defines no main, Railway or default project")
    # the CLI reads the graph back from JSON: anything that does not survive that is not what Railway gets
    loaded: dict[str, Any] = json.loads(json.dumps(project, default=str))
    return loaded


@dataclass(frozen=True)
class Scope:
    diagnostics: list[str]
    resources: list[dict[str, Any]]  # what the target keeps, without `environments`
    excluded: list[str]  # addresses declared but not in the target


def _address(resource: Mapping[str, Any]) -> str:
    return str(resource.get("address") or f"{resource.get('type', 'service')}.{resource.get('name', 'web')}")


def _display(resource: Mapping[str, Any]) -> str:
    return str(resource.get("name") or _address(resource))


def _environments_text(resource: Mapping[str, Any]) -> str:
    value = resource.get("environments")
    return "omitted" if value is None else json.dumps(value, separators=(",", ":"))


def plan_scope(
    evaluations: Sequence[tuple[str, list[dict[str, Any]], bool]],
    project_environments: Sequence[str],
    match_name: str,
    check_names: bool = True,
) -> Scope:
    """The scope rules of Railway's CLI over (environment name, resources, is_target) evaluations."""
    if not evaluations:
        return Scope([], [], [])
    diagnostics: list[str] = []
    names = [name for name, _, _ in evaluations]
    present: dict[str, list[str]] = {}
    shown: dict[str, str] = {}
    for name, resources, _ in evaluations:
        for address in dict.fromkeys(_address(r) for r in resources):
            present.setdefault(address, []).append(name)
        for resource in resources:
            shown.setdefault(_address(resource), _display(resource))
    conditional = {a for a, where in present.items() if len(where) != len(evaluations)}
    for address in sorted(conditional):
        where = present[address]
        missing = ", ".join(n for n in names if n not in where)
        diagnostics.append(
            f"{shown[address]} is declared when evaluating {', '.join(where)} but not {missing}. "
            f"Use environments: {json.dumps(where, separators=(',', ':'))} instead of a conditional."
        )
    fields: dict[str, list[tuple[str, str]]] = {}
    for name, resources, _ in evaluations:
        seen: set[str] = set()
        for resource in resources:
            address = _address(resource)
            if address in seen or address in conditional:
                continue
            seen.add(address)
            fields.setdefault(address, []).append((name, _environments_text(resource)))
    differing = {a for a, values in fields.items() if len({v for _, v in values}) > 1}
    for address in sorted(differing):
        listed = ", ".join(f"{n} {v}" for n, v in fields[address])
        diagnostics.append(f"{shown[address]} environments differ across evaluations: {listed}.")
    target = next((resources for _, resources, is_target in evaluations if is_target), evaluations[0][1])
    kept: list[dict[str, Any]] = []
    excluded: list[str] = []
    seen = set()
    known = set(project_environments)
    for resource in target:
        address = _address(resource)
        if address in seen or address in conditional or address in differing:
            continue
        seen.add(address)
        value = resource.get("environments")
        if value is not None and (not isinstance(value, list) or not all(isinstance(v, str) for v in value)):
            diagnostics.append(f"environments on {_display(resource)} must be an array of environment names.")
            continue
        if check_names and value is not None:
            listed = ", ".join(sorted(known)) or "none"
            diagnostics += [
                f'Unknown environment "{v}" on {_display(resource)}. Project environments: {listed}.'
                for v in value
                if v not in known
            ]
        if value is None or match_name in value:
            kept.append({k: v for k, v in resource.items() if k != "environments"})
        else:
            excluded.append(address)
    if diagnostics:
        return Scope(diagnostics, [], [])
    return Scope(diagnostics, kept, excluded)


def plan_for(
    target: Context,
    contexts: Sequence[Context],
    graphs: Mapping[Context, list[dict[str, Any]]],
    persistent: Sequence[str],
) -> Scope:
    """What `railway config plan` linked to `target` keeps: the target's evaluation plus every other persistent
    environment's (`evaluation_contexts`), through `plan_scope`."""
    evaluations = [(target.environment, graphs[target], True)]
    evaluations += [
        (c.environment, graphs[c], False) for c in contexts if c.pr is None and c.environment != target.environment
    ]
    match = target.match_name if target.pr is not None and target.match_name else target.environment
    return plan_scope(evaluations, [*persistent], match)


def cli_source_line() -> str:
    """For `doctor`: which CLI source the evaluator models."""
    return f"models {CLI_SOURCE}"


def sdk_version() -> str | None:
    try:
        from importlib.metadata import version

        return version("railway-sdk")
    except Exception:
        return None
