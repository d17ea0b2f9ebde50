"""Railway deployments after `railway config apply` (issue 30): wait for each, show what failed, roll back.

Everything here goes through Railway's own CLI (run in the spec's folder, where the project is linked), except
the rollback, which the CLI has no verb for: that is Railway's public GraphQL API. Facts used, read in
railwayapp/cli (df3838b) and railwayapp/docs (c2a634f); none of their code:

- `railway deployment list --service S --environment E --json [--limit N]` (src/commands/deployment.rs) prints
  `[{"id", "status", "createdAt", "meta"}]`, newest first; statuses are DeploymentStatus
  (src/gql/schema.json): SUCCESS, FAILED, CRASHED, BUILDING, DEPLOYING, INITIALIZING, WAITING, QUEUED,
  REMOVED, REMOVING, SKIPPED, SLEEPING, NEEDS_APPROVAL.
- `railway logs [DEPLOYMENT_ID] --service S --environment E --json --lines N [--build|--deployment]`
  (src/commands/logs.rs, src/util/logs.rs): one JSON object a line, with `message`, `timestamp` and the log's
  attributes; `--lines` fetches without streaming.
- `railway config apply --json` (src/commands/config/runner.rs at 6971a03): the CLI reads its engine's
  response into its own `RunnerResponse` and prints that, so each `changeSet.changes[]` entry keeps only
  `summary`, `severity`, `kind` and `details` (the engine's `address` and `deployEffect` are dropped), and
  `applyResult.changes[]` has `kind`, `path`, `summary`, `status`. An apply with no pending change prints
  nothing at all; `apply --plan FILE --json` prints the apply result alone (`{id, status, changes, ...}`, no
  `ok`); a failed one exits non-zero. With `--json` the CLI never asks. So which services an apply redeployed
  is read from `deployment list`: a deployment that was not there before the apply (and, where a CLI prints
  them, from changes with `deployEffect: deploy` on a `service.NAME` address).
- GraphQL at https://backboard.railway.com/graphql/v2 (docs content/docs/integrations/api.md): a project
  token in the `Project-Access-Token` header, an account or workspace token as `Authorization: Bearer`; the
  CLI sends RAILWAY_TOKEN the first way and RAILWAY_API_TOKEN the second (src/client.rs).
  `deploymentRollback(id: String!)` answers a Boolean in the CLI's schema (the docs' cookbook selects `{ id }`
  from it); `deployment(id) { canRollback }` says whether a deployment can be rolled back to.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from deploytool.errors import CheckFailed, UserError
from deploytool.railway_cli import _mask

if TYPE_CHECKING:
    from deploytool.releases import Release, Status

API_URL = "https://backboard.railway.com/graphql/v2"
API_VAR = "DEPLOYTOOL_RAILWAY_API"  # another endpoint (tests: a loopback server); https unless loopback
CLI_TIMEOUT = 120.0  # seconds for one `railway deployment list` / `railway logs`
API_TIMEOUT = 30.0
POLL_INTERVAL_S = 5.0
POLL_VAR = "DEPLOYTOOL_RAILWAY_POLL_INTERVAL"  # seconds between two looks at the deployments (tests: 0)
LOG_LINES = 20  # of each failed service, after a failed wait
SUCCESS = "SUCCESS"
FAILED_STATES = frozenset({"FAILED", "CRASHED", "REMOVED", "REMOVING", "SKIPPED"})  # never went (or stayed) live
NO_DEPLOYMENT = "NO DEPLOYMENT YET"  # the apply is done, Railway has not listed the new deployment yet
TIMED_OUT = "TIMED OUT"

Say = Callable[[str], None]


@dataclass(frozen=True)
class Deployment:
    id: str
    status: str
    created_at: str


@dataclass(frozen=True)
class Outcome:
    """Where one service's wait ended: its deployment (None: none appeared) and its last status."""

    service: str
    deployment: Deployment | None
    status: str

    @property
    def ok(self) -> bool:
        return self.status == SUCCESS


def _run(cli: str, args: Sequence[str], environ: Mapping[str, str], cwd: Path, what: str) -> str:
    try:
        done = subprocess.run(
            [cli, *args], env=dict(environ), cwd=cwd, capture_output=True, text=True, timeout=CLI_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        raise CheckFailed(f"`railway {what}` did not answer within {CLI_TIMEOUT:g} s") from None
    except OSError as exc:
        raise UserError(f"cannot run the Railway CLI ({cli}): {exc.strerror or exc}") from None
    if done.returncode != 0:
        said = _mask((done.stderr or done.stdout).strip(), environ).splitlines()
        raise CheckFailed(f"`railway {what}` failed (exit {done.returncode}){': ' + said[-1] if said else ''}")
    return done.stdout


def list_deployments(
    cli: str, environ: Mapping[str, str], cwd: Path, service: str, environment: str, limit: int = 10
) -> list[Deployment]:
    """The service's deployments in `environment`, newest first (`railway deployment list --json`)."""
    args = ["deployment", "list", "--service", service, "--environment", environment, "--json", "--limit", str(limit)]
    what = f"deployment list --service {service}"
    text = _run(cli, args, environ, cwd, what)
    try:
        items = json.loads(text)
        found = [Deployment(str(i["id"]), str(i["status"]), str(i.get("createdAt", ""))) for i in items]
    except (ValueError, KeyError, TypeError):
        first = _mask(text.strip().splitlines()[0] if text.strip() else "(nothing)", environ)[:120]
        raise CheckFailed(
            f"`railway {what} --json` printed something deploytool cannot read (first line: {first}); expected "
            '[{"id", "status", "createdAt", "meta"}, ...]'
        ) from None
    return sorted(found, key=lambda d: d.created_at, reverse=True)


def last_success(deployments: Iterable[Deployment]) -> Deployment | None:
    return next((d for d in deployments if d.status == SUCCESS), None)


def log_lines(
    cli: str,
    environ: Mapping[str, str],
    cwd: Path,
    service: str,
    environment: str,
    lines: int,
    deployment: Deployment | None = None,
) -> list[str]:
    """The last `lines` log lines of the service (of `deployment` when given: its build log when it FAILED,
    else its deploy log), as `timestamp message`, secrets masked."""
    args = ["logs"]
    if deployment is not None:
        args += [deployment.id, "--build" if deployment.status == "FAILED" else "--deployment"]
    args += ["--service", service, "--environment", environment, "--json", "--lines", str(lines)]
    text = _run(cli, args, environ, cwd, f"logs --service {service}")
    shown = []
    for raw in text.splitlines():
        if not raw.strip():
            continue
        try:
            entry = json.loads(raw)
            line = f"{entry.get('timestamp', '')} {entry.get('message', '')}".strip()
        except (ValueError, AttributeError):
            line = raw
        shown.append(_mask(line, environ))
    return shown[-lines:]


def poll_interval(environ: Mapping[str, str]) -> float:
    text = environ.get(POLL_VAR, "").strip()
    if not text:
        return POLL_INTERVAL_S
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 60:
        raise UserError(f"{POLL_VAR}={text!r}: expected seconds from 0 to 60")
    return value


def wait_for(
    cli: str,
    environ: Mapping[str, str],
    cwd: Path,
    environment: str,
    before: Mapping[str, set[str]],
    timeout_s: float,
    say: Say,
    *,
    interval_s: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    listed: Mapping[str, list[Deployment]] | None = None,
) -> list[Outcome]:
    """Poll each service in `before` (service → ids of the deployments it had before) until its newest
    deployment not in that set is SUCCESS or failed, or `timeout_s` passes; one line each time a state changes.
    `listed`: each service's deployments as just listed, taken as its first poll."""
    deadline = clock() + timeout_s
    interval_s = poll_interval(environ) if interval_s is None else interval_s
    seen: dict[str, str] = {}
    done: dict[str, Outcome] = {}
    newest: dict[str, Deployment | None] = dict.fromkeys(before)
    first = dict(listed or {})
    while True:
        for service in sorted(before):
            if service in done:
                continue
            found = first.pop(service, None)
            if found is None:
                found = list_deployments(cli, environ, cwd, service, environment)
            fresh = [d for d in found if d.id not in before[service]]
            current = fresh[0] if fresh else None
            newest[service] = current
            state = current.status if current else NO_DEPLOYMENT
            if seen.get(service) != state:
                seen[service] = state
                say(f"{service:24} {state:18} {current.id if current else '-'}")
            if current is not None and (current.status == SUCCESS or current.status in FAILED_STATES):
                done[service] = Outcome(service, current, current.status)
        if len(done) == len(before):
            break
        if clock() >= deadline:
            for service in sorted(set(before) - set(done)):
                last = newest[service]
                say(f"{service:24} {TIMED_OUT:18} {last.id if last else '-'}")
                done[service] = Outcome(service, last, TIMED_OUT)
            break
        sleep(interval_s)
    return [done[s] for s in sorted(done)]


def confirm(
    cli: str, environ: Mapping[str, str], cwd: Path, environment: str, outcomes: Sequence[Outcome], say: Say
) -> list[Outcome]:
    """Look once more at each service that went live: one that crashed since (after its health check) failed."""
    checked = []
    for outcome in outcomes:
        if not outcome.ok or outcome.deployment is None:
            checked.append(outcome)
            continue
        now = next(
            (
                d
                for d in list_deployments(cli, environ, cwd, outcome.service, environment)
                if d.id == outcome.deployment.id
            ),
            None,
        )
        status = now.status if now else "REMOVED"
        if status != SUCCESS:
            say(f"{outcome.service:24} {status:18} {outcome.deployment.id} (after going live)")
        checked.append(Outcome(outcome.service, now or outcome.deployment, status))
    return checked


def redeployed(before: Mapping[str, Iterable[Deployment]], after: Mapping[str, Iterable[Deployment]]) -> list[str]:
    """The services with a deployment in `after` that `before` did not have: what an apply started."""
    return sorted(s for s, now in after.items() if {d.id for d in now} - {d.id for d in before.get(s, ())})


def changed_services(apply_output: str, known: Iterable[str]) -> list[str]:
    """The services `railway config apply --json` says it redeploys: changes with `deployEffect: deploy` on a
    `service.NAME` address deploytool knows (none from a CLI that leaves those out, or printed nothing)."""
    if not apply_output.strip():
        return []
    try:
        document = json.loads(apply_output)
        changes = document.get("changeSet", {}).get("changes", []) if isinstance(document, dict) else []
    except (ValueError, AttributeError):
        raise CheckFailed(
            "`railway config apply --json` printed no JSON deploytool can read; nothing to wait for (the apply ran)"
        ) from None
    names = set(known)
    found = set()
    for change in changes if isinstance(changes, list) else []:
        if not isinstance(change, dict) or change.get("deployEffect") != "deploy":
            continue
        address = str(change.get("address") or "")
        kind, _, name = address.partition(".")
        if kind == "service" and name in names:
            found.add(name)
    return sorted(found)


def apply_summary(apply_output: str, environ: Mapping[str, str]) -> list[str]:
    """What the apply did, in the CLI's words (each change's summary), secrets masked."""
    try:
        document = json.loads(apply_output)
    except ValueError:
        return []
    if not isinstance(document, dict):
        return []
    # the apply result: under `applyResult`, or the whole document (`apply --plan FILE --json`)
    result = document.get("applyResult") or (document if "ok" not in document else {})
    changes = result.get("changes") if isinstance(result, dict) else None
    if not isinstance(changes, list):
        changes = (document.get("changeSet") or {}).get("changes") or []
    lines = []
    for change in changes:
        if isinstance(change, dict):
            text = change.get("summary") or change.get("path") or change.get("kind") or ""
            status = f" ({change['status']})" if change.get("status") else ""
            lines.append(_mask(f"  {text}{status}", environ))
    return lines


def apply_ok(apply_output: str) -> bool:
    """Whether an apply that exited 0 says it went through: nothing printed (nothing was pending), a runner
    response with `ok: true`, or a pinned plan's apply result (no `ok`)."""
    if not apply_output.strip():
        return True
    try:
        document = json.loads(apply_output)
    except ValueError:
        return False
    return isinstance(document, dict) and document.get("ok", True) is True


# --- the public API: rollback -----------------------------------------------------------------------------


def api_url(environ: Mapping[str, str]) -> str:
    url = environ.get(API_VAR, "").strip() or API_URL
    parts = urlsplit(url)
    loopback = parts.hostname in ("127.0.0.1", "::1", "localhost")
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        raise UserError(f"{API_VAR}={url!r}: expected an https:// URL (http only on loopback); the token goes there")
    return url


def api_headers(environ: Mapping[str, str]) -> dict[str, str]:
    """A project token (RAILWAY_TOKEN) as Project-Access-Token, else an account/workspace token
    (RAILWAY_API_TOKEN) as a bearer, as the CLI sends them."""
    project = environ.get("RAILWAY_TOKEN", "").strip()
    if project:
        return {"Project-Access-Token": project, "Content-Type": "application/json"}
    account = environ.get("RAILWAY_API_TOKEN", "").strip()
    if account:
        return {"Authorization": f"Bearer {account}", "Content-Type": "application/json"}
    raise UserError(
        "rolling back on Railway uses its public API: set RAILWAY_TOKEN (a project token of this environment) or "
        "RAILWAY_API_TOKEN (an account or workspace token); `railway login` alone does not reach the API"
    )


def graphql(environ: Mapping[str, str], query: str, variables: Mapping[str, Any]) -> dict[str, Any]:
    import requests

    url = api_url(environ)
    headers = api_headers(environ)
    try:
        response = requests.post(
            url, json={"query": query, "variables": dict(variables)}, headers=headers, timeout=API_TIMEOUT
        )
    except requests.RequestException as exc:
        raise CheckFailed(_mask(f"Railway API ({url}): {type(exc).__name__}: {exc}", environ)) from None
    try:
        document = response.json()
    except ValueError:
        document = None
    errors = document.get("errors") if isinstance(document, dict) else None
    if response.status_code != 200 or errors or not isinstance(document, dict):
        said = "; ".join(str(e.get("message", e)) for e in errors if isinstance(e, dict)) if errors else ""
        raise CheckFailed(
            _mask(f"Railway API ({url}): HTTP {response.status_code}{': ' + said if said else ''}", environ)
        )
    data = document.get("data")
    return data if isinstance(data, dict) else {}


DEPLOYMENT_QUERY = "query deployment($id: String!) { deployment(id: $id) { id status canRollback } }"
ROLLBACK_MUTATION = "mutation deploymentRollback($id: String!) { deploymentRollback(id: $id) }"


def rollback_service(
    cli: str,
    environ: Mapping[str, str],
    cwd: Path,
    environment: str,
    service: str,
    deployment_id: str,
    timeout_s: float,
    say: Say,
    **wait: Any,
) -> Outcome:
    """Roll `service` back to `deployment_id` and wait until the deployment that makes is live (or failed)."""
    found = graphql(environ, DEPLOYMENT_QUERY, {"id": deployment_id}).get("deployment") or {}
    if found.get("canRollback") is False:
        raise CheckFailed(f"{service}: Railway cannot roll back to deployment {deployment_id} (canRollback: false)")
    before = {d.id for d in list_deployments(cli, environ, cwd, service, environment)}
    data = graphql(environ, ROLLBACK_MUTATION, {"id": deployment_id})
    if data.get("deploymentRollback") is False:
        raise CheckFailed(f"{service}: Railway refused the rollback to deployment {deployment_id}")
    say(f"{service:24} {'ROLLING BACK':18} to {deployment_id}")
    return wait_for(cli, environ, cwd, environment, {service: before}, timeout_s, say, **wait)[0]


def rollback(
    cli: str,
    environ: Mapping[str, str],
    cwd: Path,
    environment: str,
    targets: Mapping[str, str],
    whatsapp: Iterable[str],
    timeout_s: float,
    say: Say,
    **wait: Any,
) -> list[Outcome]:
    """Every service of `targets` (service → deployment id) back to its deployment. WhatsApp services go one
    at a time, each live before the next starts (their deploys never overlap: `overlapSeconds: 0`), so no
    tenant ever has two holders; a failed one stops the rest."""
    holders = set(whatsapp)
    outcomes = []
    for service in [s for s in sorted(targets) if s not in holders] + [s for s in sorted(targets) if s in holders]:
        outcome = rollback_service(cli, environ, cwd, environment, service, targets[service], timeout_s, say, **wait)
        outcomes.append(outcome)
        if not outcome.ok and service in holders:
            break
    return outcomes


# --- `railway apply --wait` and `rollback` on Railway, with their releases ---------------------------------


@dataclass(frozen=True)
class RailwayEnv:
    """What the waits and rollbacks of one environment need."""

    cli: str
    environ: Mapping[str, str]
    cwd: Path  # the spec's folder: the CLI's link and `.railway/railway.py` are read there
    environment: str  # Railway's name for it
    env_name: str  # deploytool's
    out: Path  # the output folder: its `.releases/`
    services: tuple[str, ...]  # every Railway service of the environment
    whatsapp: frozenset[str]
    artifacts: Mapping[str, str]
    planned: Mapping[str, Any] = field(default_factory=dict)  # service → ServiceRelease (config, tenants)


def _deployed(planned: Mapping[str, Any], service: str, deployment: Deployment | None, status: str | None) -> Any:
    """The planned ServiceRelease of `service` (config, tenants) with the deployment that runs it (as planned
    when neither is known)."""
    from deploytool.releases import ServiceRelease

    base = planned.get(service) or ServiceRelease()
    if deployment is None and status is None:
        return base
    return base.model_copy(update={"deployment_id": deployment.id if deployment else None, "deployment_status": status})


def _services_of(outcomes: Iterable[Outcome], planned: Mapping[str, Any] | None = None) -> dict[str, Any]:
    return {o.service: _deployed(planned or {}, o.service, o.deployment, o.status) for o in outcomes}


def _record(
    env: RailwayEnv,
    status: Status,
    services: Mapping[str, Any],
    keep: int,
    *,
    artifacts: Mapping[str, str] | None = None,
    rollback_of: int | None = None,
    note: str | None = None,
    git: tuple[str | None, bool | None] | None = None,
) -> Release:
    """`releases.record` of a Railway release of `env` (with the environment's artifacts unless given)."""
    from deploytool import releases

    return releases.record(
        env.out,
        env.env_name,
        target="railway",
        status=status,
        spec_folder=env.cwd,
        artifacts=env.artifacts if artifacts is None else artifacts,
        services=services,
        keep=keep,
        rollback_of=rollback_of,
        note=note,
        git=git,
    )


def apply_and_wait(
    env: RailwayEnv,
    command: Sequence[str],
    timeout_s: float,
    rollback_on_failure: bool,
    keep: int,
    say: Say,
    warn: Say,
    **wait: Any,
) -> int:
    """Apply with `command` (it has --json), wait for every redeployed service, record the release; on a
    failure show each failed service's last log lines and (asked to) roll back. The exit code."""
    from deploytool import releases
    from deploytool.releases import ServiceRelease

    before = {s: list_deployments(env.cli, env.environ, env.cwd, s, env.environment) for s in env.services}
    store = releases.read_store(env.out, env.env_name)
    previous = store.live("railway")
    if previous is None and any(last_success(ds) for ds in before.values()):
        observed = {
            s: ServiceRelease(deployment_id=d.id, deployment_status=d.status)
            for s, ds in before.items()
            if (d := last_success(ds)) is not None
        }
        note = "what ran before the first `railway apply --wait`"
        previous = _record(env, "live", observed, keep, artifacts={}, note=note, git=(None, None))
        say(f"{env.env_name}: release {previous.number} records what ran on Railway before this apply")
    done = subprocess.run(
        list(command), env=dict(env.environ), cwd=env.cwd, stdout=subprocess.PIPE, text=True, check=False
    )
    for line in apply_summary(done.stdout, env.environ):
        say(line)
    if done.returncode != 0 or not apply_ok(done.stdout):
        warn(f"{env.env_name}: `railway config apply` failed (exit {done.returncode}); nothing to wait for")
        return done.returncode or 1
    after = {s: list_deployments(env.cli, env.environ, env.cwd, s, env.environment) for s in env.services}
    changed = sorted({*redeployed(before, after), *changed_services(done.stdout, env.services)})
    carried = {}  # what runs each service now, with the plan's view of it (this apply changed no other)
    for name in env.services:
        was = (previous.services.get(name) if previous else None) or ServiceRelease()
        plan = env.planned.get(name) or ServiceRelease()
        carried[name] = was.model_copy(update={"config": plan.config, "tenants": plan.tenants})
    release = _record(env, "pending", carried, keep)
    if not changed:
        releases.update_release(env.out, env.env_name, release.number, status="live", note="nothing redeployed")
        say(f"{env.env_name}: the apply redeployed no service; release {release.number} is live")
        return 0
    say(f"{env.env_name}: waiting for {', '.join(changed)} (at most {timeout_s:g} s)")
    ids = {s: {d.id for d in before[s]} for s in changed}
    listed = {s: after[s] for s in changed}
    outcomes = wait_for(env.cli, env.environ, env.cwd, env.environment, ids, timeout_s, say, listed=listed, **wait)
    outcomes = confirm(env.cli, env.environ, env.cwd, env.environment, outcomes, say)
    failed = [o for o in outcomes if not o.ok]
    services = {**carried, **_services_of(outcomes, env.planned)}
    if not failed:
        releases.update_release(env.out, env.env_name, release.number, status="live", services=services)
        say(f"{env.env_name}: release {release.number} is live on Railway ({', '.join(changed)} redeployed)")
        return 0
    names = ", ".join(f"{o.service} ({o.status})" for o in failed)
    releases.update_release(env.out, env.env_name, release.number, status="failed", services=services, note=names)
    for outcome in failed:
        say(
            f"--- {outcome.service}: last log lines of {outcome.deployment.id if outcome.deployment else 'its service'}"
        )
        try:
            lines = log_lines(
                env.cli, env.environ, env.cwd, outcome.service, env.environment, LOG_LINES, outcome.deployment
            )
        except CheckFailed as exc:
            lines = [f"(no logs: {exc})"]
        for line in lines:
            say(f"{outcome.service} | {line}")
    warn(f"{env.env_name}: release {release.number} failed on Railway: {names}")
    if rollback_on_failure:
        if previous is None:
            warn(f"{env.env_name}: nothing to roll back to (no earlier release on Railway)")
        else:
            warn(f"{env.env_name}: rolling back to release {previous.number} (--rollback-on-failure)")
            rollback_to(env, previous.number, timeout_s, keep, say, **wait)
    return 1


def record_applied(env: RailwayEnv, keep: int, warn: Say) -> Any:
    """After a plain `railway apply` (no --wait): a `pending` release with each service's newest deployment,
    one `railway deployment list --json` per service (the CLI's text output does not say which it redeployed).
    A lookup that fails leaves the release without deployment ids (said on `warn`), never failing the apply."""
    services: dict[str, Any] = {}
    note = "railway apply without --wait: not followed"
    try:
        for name in env.services:
            found = list_deployments(env.cli, env.environ, env.cwd, name, env.environment)
            newest = found[0] if found else None
            services[name] = _deployed(env.planned, name, newest, newest.status if newest else None)
    except (CheckFailed, UserError) as exc:
        warn(f"{env.env_name}: the apply went through, but its deployments are not known ({exc}); recorded without")
        services = dict(env.planned)
        note += "; deployment ids not known"
    return _record(env, "pending", services, keep, note=note)


def _running_now(env: RailwayEnv, services: Iterable[str]) -> dict[str, str | None]:
    """Each service's deployment as Railway lists it now: the newest unless it failed (then the last live one);
    None when it cannot be asked (the rollback then moves it)."""
    now: dict[str, str | None] = {}
    for name in services:
        try:
            found = list_deployments(env.cli, env.environ, env.cwd, name, env.environment)
        except (CheckFailed, UserError):
            now[name] = None
            continue
        newest = found[0] if found else None
        running = last_success(found) if newest is not None and newest.status in FAILED_STATES else newest
        now[name] = running.id if running else None
    return now


def rollback_to(env: RailwayEnv, number: int | None, timeout_s: float, keep: int, say: Say, **wait: Any) -> int:
    """`rollback ENV [--to N]` on Railway: each service whose deployment differs back to release N's."""
    from deploytool import releases

    store = releases.read_store(env.out, env.env_name)
    _, target = releases.choose_rollback(store, "railway", number)
    wanted = {s: r.deployment_id for s, r in target.services.items() if r.deployment_id}
    if not wanted:
        raise UserError(f"release {target.number}: it records no Railway deployment to go back to")
    newest = store.newest_first()[0]  # what runs now: the live release, or the failed one after it
    now = {s: r.deployment_id for s, r in newest.services.items()}
    if newest.status == "pending":  # a plain apply, not followed: what runs now is asked, not assumed
        now = _running_now(env, wanted)
    moves = {s: d for s, d in wanted.items() if now.get(s) != d}
    outcomes = rollback(env.cli, env.environ, env.cwd, env.environment, moves, env.whatsapp, timeout_s, say, **wait)
    failed = [o for o in outcomes if not o.ok]
    services = {**target.services, **_services_of(outcomes)}
    status: Status = "failed" if failed or len(outcomes) < len(moves) else "live"
    note = ", ".join(f"{o.service} ({o.status})" for o in failed) or None
    git = (target.commit, target.dirty)
    made = _record(
        env, status, services, keep, artifacts=target.artifacts, rollback_of=target.number, note=note, git=git
    )
    if status == "failed":
        raise CheckFailed(f"{env.env_name}: the rollback to release {target.number} failed (release {made.number})")
    say(f"{env.env_name}: back to release {target.number} on Railway (release {made.number}; {len(moves)} rolled back)")
    return 0


# --- remote day two: `ps ENV` and `logs ENV [SERVICE]` of an environment on Railway -----------------------


def age(created_at: str, now: datetime | None = None) -> str:
    """`5m`, `3h`, `2d` since an ISO 8601 time (`-` when it cannot be read)."""
    try:
        created = datetime.fromisoformat(created_at.replace("Z", "+00:00"))
    except ValueError:
        return "-"
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    seconds = max(0, int(((now or datetime.now(UTC)) - created).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def remote_rows(
    cli: str,
    environ: Mapping[str, str],
    cwd: Path,
    environment: str,
    services: Sequence[str],
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """Each service's latest deployment (`railway deployment list`): status, id, age; `ps --format json`."""
    rows: list[dict[str, Any]] = []
    for service in services:
        found = list_deployments(cli, environ, cwd, service, environment, limit=1)
        latest = found[0] if found else None
        rows.append(
            {
                "service": service,
                "runner": "railway",
                "state": latest.status if latest else "NO DEPLOYMENT",
                "deployment": latest.id if latest else None,
                "age": age(latest.created_at, now) if latest else None,
            }
        )
    return rows


def remote_ps(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """`remote_rows` as `ps`'s table."""
    lines = [f"{'SERVICE':24} {'RUNNER':9} {'STATE':12} {'DEPLOYMENT':38} AGE"]
    for row in rows:
        lines.append(
            f"{row['service']:24} {row['runner']:9} {row['state']:12} {row['deployment'] or '-':38} {row['age'] or '-'}"
        )
    return lines


def remote_logs(
    cli: str, environ: Mapping[str, str], cwd: Path, environment: str, services: Sequence[str], lines: int
) -> list[str]:
    """The last `lines` lines of each service's latest deployment (`railway logs --json --lines N`), masked."""
    shown = []
    for service in services:
        for line in log_lines(cli, environ, cwd, service, environment, lines):
            shown.append(f"{service} | {line}")
    return shown
