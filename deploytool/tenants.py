"""`deploytool tenants`: which shard serves each tenant, and moving tenants between shards.

A move is a change of the shard lock (`environments/<env>.lock.json`) plus a render, so every target follows
(the shards' `TENANTS`, web's `WHATSAPP_TENANT_URLS`, Railway's file). On an environment running here it also
moves the session, without a new scan:

1. `POST /tenants/{id}/release` on the old shard: the session stops and its lock is freed, credentials kept;
2. the old shard restarts without the tenant (its `TENANTS` no longer names it, so it cannot take it back);
3. file store only: the tenant's folder is copied to the new shard's `AUTH_ROOT` (PostgreSQL: nothing to copy);
4. the new shard restarts with the tenant in `TENANTS` (node answers 404 for a tenant outside that list);
5. `POST /tenants/{id}/connect` there: it resumes from the stored credentials (same `me`), and we wait for
   `connected`;
6. file store only: the old copy is removed, only now that the new shard holds the session;
7. web (and workers: they carry the same routes) restart, so `WHATSAPP_TENANT_URLS` follows.

HTTP goes through requests, imported when a live environment is touched.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deploytool.errors import CheckFailed, DeploytoolError, UserError
from deploytool.spec.model import ServiceKind, Topology

if TYPE_CHECKING:
    import requests

    from deploytool.pipeline import Rendered
    from deploytool.plan.model import Plan
    from deploytool.run.base import Runner
    from deploytool.spec.load import LoadedSpec

Say = Callable[[str], None]
HTTP_TIMEOUT_S = 10.0
POLL_S = 0.2


@dataclass(frozen=True)
class Move:
    tenant: str
    source: int  # shard numbers
    target: int

    def line(self, service_of: Callable[[int], str]) -> str:
        return f"move tenant {self.tenant}: {service_of(self.source)} -> {service_of(self.target)}"


@dataclass(frozen=True)
class Layout:
    """An environment's tenants and shards as the spec and its lock say now."""

    spec_path: Path
    env: str
    out: Path
    loaded: LoadedSpec
    plan: Plan
    whatsapp: str  # the spec's WhatsApp service, which names the shards `<whatsapp>-shard-N`

    @property
    def sharded(self) -> bool:
        return self.plan.topology is Topology.sharded

    @property
    def assignment(self) -> dict[str, int]:
        return dict(self.plan.shard_lock or {})

    @property
    def shards(self) -> list[int]:
        from deploytool.plan.model import Role

        return list(range(1, len(self.plan.by_role(Role.whatsapp)) + 1))

    @property
    def capacity(self) -> int:
        return self.loaded.spec.topology.max_tenants_per_shard

    def service_of(self, shard: int) -> str:
        return f"{self.whatsapp}-shard-{shard}"

    def require_sharded(self, what: str) -> None:
        if not self.sharded:
            raise UserError(
                f"{self.env}: topology is {self.plan.topology.value}; {what} needs topology sharded, where tenants "
                "are pinned to shards (per-port gives every tenant its own server, shared has one)"
            )


def layout(spec_path: Path, env: str, out: Path | None) -> Layout:
    from deploytool import pipeline

    loaded, plan = pipeline.plan_environment(spec_path, env)
    whatsapp, _ = loaded.spec.service_of(ServiceKind.whatsapp)
    return Layout(spec_path, env, out or pipeline.default_out(spec_path, env), loaded, plan, whatsapp)


# ---- pure rules: a valid move, the fewest moves that even the shards out ----------------------------------


def check_move(lay: Layout, tenant: str, shard: int) -> Move | None:
    """The move of `tenant` to `shard`, or None when it is there already; UserError when it cannot be made."""
    lay.require_sharded("tenants move")
    assignment = lay.assignment
    if tenant not in assignment:
        raise UserError(f"{lay.env}: unknown tenant {tenant!r} (tenants: {', '.join(lay.plan.tenants)})")
    if shard not in lay.shards:
        raise UserError(
            f"--shard: {lay.env} has shards {', '.join(map(str, lay.shards))} ({lay.service_of(1)} …), not {shard}"
        )
    source = assignment[tenant]
    if source == shard:
        return None
    load = sum(1 for s in assignment.values() if s == shard)
    if load + 1 > lay.capacity:
        raise UserError(
            f"--shard: {lay.service_of(shard)} already holds {load} tenants and max_tenants_per_shard is "
            f"{lay.capacity}: move another tenant off it first, or raise topology.max_tenants_per_shard"
        )
    return Move(tenant, source, shard)


def rebalance_moves(assignment: Mapping[str, int], shards: list[int], order: list[str]) -> list[Move]:
    """The fewest moves after which shard loads differ by at most one.

    With n tenants on k shards every shard ends with n // k tenants, and n % k of them with one more; giving
    the extra places to the shards that hold the most now leaves the least to move. Each overfull shard gives
    up its last tenants (spec order), filling the emptiest shards first."""
    members = {s: [t for t in order if assignment.get(t) == s] for s in shards}
    base, extra = divmod(len([t for t in order if t in assignment]), len(shards))
    ranked = sorted(shards, key=lambda s: (-len(members[s]), s))
    target = {s: base + (1 if i < extra else 0) for i, s in enumerate(ranked)}
    surplus = [(t, s) for s in shards for t in members[s][target[s] :]]
    moves = []
    for s in sorted(shards, key=lambda s: (len(members[s]) - target[s], s)):
        for _ in range(target[s] - len(members[s])):
            tenant, source = surplus.pop(0)
            moves.append(Move(tenant, source, s))
    return moves


# ---- the lock and the render --------------------------------------------------------------------------------


def write_assignment(lay: Layout, assignment: Mapping[str, int]) -> Rendered:
    """Plan with `assignment` as the lock, check, and write every artifact (the lock file among them)."""
    from deploytool import pipeline

    rendered = pipeline.render_environment(lay.spec_path, lay.env, lay.out, lock=assignment)
    pipeline.require_no_errors(pipeline.findings_of(rendered, consumers=False))
    pipeline.write(rendered)
    return rendered


# ---- a live environment ------------------------------------------------------------------------------------


@dataclass
class Live:
    """An environment running here: its runner, its services' URLs and node's API key."""

    out: Path
    runner: Runner
    environ: Mapping[str, str]
    urls: dict[str, str]  # service -> base URL on this machine
    key: str
    session: requests.Session
    note: str | None = None  # the names this shell has otherwise than `up` had them

    def url(self, service: str) -> str:
        try:
            return self.urls[service]
        except KeyError:
            raise CheckFailed(f"{service}: no URL on this machine in the manifest") from None

    def call(self, method: str, service: str, path: str) -> requests.Response:
        from deploytool.run import live

        return live.call(self.session, method, self.url(service) + path, HTTP_TIMEOUT_S, {"X-Api-Key": self.key})

    def status(self, service: str, tenant: str) -> dict[str, Any] | None:
        """node's status of the tenant on that shard; None when the shard does not know it (404)."""
        response = self.call("GET", service, f"/tenants/{tenant}/status")
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise CheckFailed(f"{service}: GET /tenants/{tenant}/status -> HTTP {response.status_code}")
        data: dict[str, Any] = response.json()
        return data

    def session_store(self, service: str) -> str:
        """What the shard itself runs (`postgres` or `files`): locally the store follows the DATABASE_URL the
        shard was started with (node's rule)."""
        response = self.call("GET", service, "/health")
        store = response.json().get("session_store") if response.ok else None
        return store if isinstance(store, str) else "unknown"


def live(lay: Layout, environ: Mapping[str, str]) -> Live | None:
    """The environment as it runs here, or None when nothing runs (a move is then only the lock)."""
    from deploytool import run
    from deploytool.output import read_manifest
    from deploytool.output.secrets import secret_values
    from deploytool.run import live as live_layer
    from deploytool.run.environment import as_up_had_it

    current = run.running_runner(lay.out)
    if current is None:
        return None
    taken = as_up_had_it(lay.out, environ)  # a shard restarts on the session store `up` gave it
    environ = taken.environ
    manifest = read_manifest(lay.out)
    key = secret_values(["WHATSAPP_API_KEY"], lay.out, environ).get("WHATSAPP_API_KEY")
    if not key:
        raise UserError(f"WHATSAPP_API_KEY: not in the environment or {lay.out / '.secrets.env'}")
    urls = {s.name: s.local_url for s in manifest.services if s.local_url}
    return Live(lay.out, current, environ, urls, key, live_layer.client(), taken.note(lay.out))


def tenant_rows(lay: Layout, environ: Mapping[str, str]) -> list[tuple[str, str, str, str]]:
    """(tenant, service, state, me) for every tenant; state and me only when the environment runs here."""
    here = live(lay, environ)
    rows = []
    for tenant, service in lay.plan.routes:
        state, me = "-", "-"
        if here is not None:
            try:
                status = here.status(service, tenant)
            except CheckFailed:
                state = "unreachable"
            else:
                state = "unknown" if status is None else str(status.get("state"))
                me = str((status or {}).get("me") or "-")
        rows.append((tenant, service, state, me))
    return rows


# A live move under way: written before the old shard lets go of the tenant, removed once web follows. A move
# that was interrupted (Ctrl-C, a shard that did not come back, a connect that timed out) leaves it, and `tenants
# move` with the same tenant and shard finishes it from there (every step can be made again).
PENDING_FILE = "tenant-move.json"


def _pending_path(lay: Layout) -> Path:
    from deploytool.run.state import run_dir

    return run_dir(lay.out) / PENDING_FILE


def pending_move(lay: Layout) -> dict[str, Any] | None:
    """The interrupted move recorded in the output folder, None when there is none."""
    import json

    from deploytool.safeio import read_text

    path = _pending_path(lay)
    text = read_text(path, "records a tenant move under way")
    if text is None:
        return None
    try:
        data = json.loads(text)
        if not isinstance(data, dict) or not all(isinstance(data.get(k), int) for k in ("source", "target")):
            raise ValueError("not a move record")
        if not isinstance(data.get("tenant"), str) or data["tenant"] not in lay.assignment:
            raise ValueError("an unknown tenant")
    except ValueError as exc:
        raise UserError(
            f"{path}: unreadable record of a move under way ({exc}); check `deploytool tenants list "
            f"{lay.env}`, then delete the file"
        ) from None
    return data


def finish_hint(lay: Layout, tenant: str, target: int) -> str:
    return f"deploytool tenants move {lay.env} {tenant} --shard {target}" + (
        f" --out {lay.out}" if lay.out != _default_out(lay) else ""
    )


def _default_out(lay: Layout) -> Path:
    from deploytool import pipeline

    return pipeline.default_out(lay.spec_path, lay.env)


def move_command(
    spec_path: Path,
    env: str,
    out: Path | None,
    tenant: str,
    shard: int,
    environ: Mapping[str, str],
    timeout_s: float,
    say: Say,
) -> None:
    """`tenants move`: under the output folder's lock (one move, up, down or restart at a time), with the layout
    read once the lock is held; a move left unfinished is finished first, or is this one."""
    from deploytool import pipeline
    from deploytool.run.state import run_lock

    out = out or pipeline.default_out(spec_path, env)
    with run_lock(out):
        lay = layout(spec_path, env, out)
        pending = pending_move(lay)
        if pending is not None:
            if (pending["tenant"], pending["target"]) != (tenant, shard):
                raise UserError(
                    f"{env}: the move of tenant {pending['tenant']} to {lay.service_of(pending['target'])} is not "
                    f"finished; finish it first: `{finish_hint(lay, pending['tenant'], pending['target'])}`"
                )
            lay.require_sharded("tenants move")
            step = Move(tenant, int(pending["source"]), shard)
            say(
                f"finishing the interrupted move of tenant {tenant}: {lay.service_of(step.source)} -> "
                f"{lay.service_of(shard)}"
            )
            move(lay, [step], environ, timeout_s, say, resume=pending)
            return
        found = check_move(lay, tenant, shard)
        if found is None:
            say(f"{env}: tenant {tenant} is on {lay.service_of(shard)} already; nothing to do")
            return
        move(lay, [found], environ, timeout_s, say)


def rebalance_command(
    spec_path: Path, env: str, out: Path | None, apply: bool, environ: Mapping[str, str], timeout_s: float, say: Say
) -> None:
    """`tenants rebalance`: the moves as the lock says once the folder's lock is held (with --apply)."""
    from contextlib import nullcontext

    from deploytool import pipeline
    from deploytool.run.state import run_lock

    out = out or pipeline.default_out(spec_path, env)
    with run_lock(out) if apply else nullcontext():
        lay = layout(spec_path, env, out)
        lay.require_sharded("tenants rebalance")
        pending = pending_move(lay)
        if pending is not None:
            raise UserError(
                f"{env}: the move of tenant {pending['tenant']} to {lay.service_of(pending['target'])} is not "
                f"finished; finish it first: `{finish_hint(lay, pending['tenant'], pending['target'])}`"
            )
        moves = rebalance_moves(lay.assignment, lay.shards, list(lay.plan.tenants))
        if not moves:
            say(f"{env}: shards are even; nothing to move")
            return
        if not apply:
            for step in moves:
                say(step.line(lay.service_of))
            say(f"{env}: {len(moves)} move(s); run again with --apply to make them")
            return
        move(lay, moves, environ, timeout_s, say)


def move(
    lay: Layout,
    moves: list[Move],
    environ: Mapping[str, str],
    timeout_s: float,
    say: Say,
    resume: Mapping[str, Any] | None = None,
) -> Layout:
    """Apply `moves` one at a time (lock, render, and the live steps when the environment runs); the new layout.

    The caller holds the output folder's lock (`move_command`, `rebalance_command`)."""
    here = live(lay, environ)
    if here is not None and here.note:
        say(f"  {here.note}")
    for step in moves:
        assignment = {**lay.assignment, step.tenant: step.target}
        old, new = lay.service_of(step.source), lay.service_of(step.target)
        say(step.line(lay.service_of))
        if here is None:
            write_assignment(lay, assignment)
            _pending_path(lay).unlink(missing_ok=True)  # nothing runs: the lock and the files are the whole move
            say(f"  {lay.env}: not running here: lock and files updated")
        else:
            try:
                _move_live(lay, here, step.tenant, old, new, assignment, timeout_s, say, resume)
            except (DeploytoolError, KeyboardInterrupt) as exc:
                hint = (
                    f"{lay.env}: the move of tenant {step.tenant} to {new} is not finished; run "
                    f"`{finish_hint(lay, step.tenant, step.target)}` to finish it"
                )
                if not _pending_path(lay).exists():
                    raise  # it failed before anything changed
                if isinstance(exc, KeyboardInterrupt):
                    say(hint)
                    raise
                raise CheckFailed(f"{exc}\n{hint}") from None
            resume = None
        lay = layout(lay.spec_path, lay.env, lay.out)
    return lay


def _move_live(
    lay: Layout,
    here: Live,
    tenant: str,
    old: str,
    new: str,
    assignment: Mapping[str, int],
    timeout_s: float,
    say: Say,
    resume: Mapping[str, Any] | None = None,
) -> None:
    """The live steps in order; each can be made again, so an interrupted move is finished by running them again
    with what the first run saw of the tenant (`resume`: its state and `me` before the old shard let go)."""
    import json

    from deploytool.output.fs import write_atomic
    from deploytool.run.state import own_run_dir

    if resume is None:
        before = here.status(old, tenant) or {}
        own_run_dir(lay.out)
        record = {
            "tenant": tenant,
            "source": lay.assignment[tenant],
            "target": assignment[tenant],
            "state": before.get("state"),
            "me": before.get("me"),
        }
        write_atomic(_pending_path(lay), json.dumps(record, sort_keys=True) + "\n")  # before anything changes
    else:
        before = {k: resume.get(k) for k in ("state", "me") if resume.get(k) is not None}
    from deploytool.run.sessions import session_files

    me = before.get("me")
    stores = {old: here.session_store(old)}
    sessions = session_files(stores[old], here.runner.name, here.out, here.environ)
    response = here.call("POST", old, f"/tenants/{tenant}/release")
    if response.status_code not in (200, 404):  # 404: the shard never ran it (or let go of it already)
        raise CheckFailed(f"{old}: POST /tenants/{tenant}/release -> HTTP {response.status_code}: {response.text}")
    say(f"  released on {old} (state was {before.get('state', 'unknown')})")
    write_assignment(lay, assignment)
    restart = _restarter(here, timeout_s, say)
    restart(old)
    # file store: the folder moves while neither shard runs the tenant (released there, not yet listed here)
    copied = sessions.copy(old, new, tenant)
    if copied:
        say(f"  copied the session files of tenant {tenant} from {old} to {new}")
    restart(new)
    stores[new] = here.session_store(new)
    if me or before.get("state") == "connected":
        response = here.call("POST", new, f"/tenants/{tenant}/connect")
        if response.status_code not in (202, 409):  # 409: it connected by itself already
            raise CheckFailed(f"{new}: POST /tenants/{tenant}/connect -> HTTP {response.status_code}: {response.text}")
        status = _wait_connected(here, new, tenant, timeout_s, stores)
        if me and status.get("me") != me:
            raise CheckFailed(f"{new}: tenant {tenant} connected as {status.get('me')!r}, not {me!r}")
        say(f"  connected on {new} as {status.get('me')}, no new scan")
    else:
        say(f"  tenant {tenant} was not linked: {new} serves it from now on (its QR is there)")
    if copied:
        sessions.remove(old, tenant)  # only now that the new shard holds it
        say(f"  removed the old session files of tenant {tenant} on {old}")
    for svc in lay.plan.services:  # web and workers: every process holding the routes
        if "WHATSAPP_TENANT_URLS" in svc.env_dict():
            restart(svc.name)
    _pending_path(lay).unlink(missing_ok=True)


def _restarter(here: Live, timeout_s: float, say: Say) -> Callable[[str], None]:
    def restart(service: str) -> None:
        status = here.runner.restart(here.out, here.environ, service, timeout_s, None)
        say(f"  restarted {service} ({status.state})")

    return restart


def _wait_connected(
    here: Live, service: str, tenant: str, timeout_s: float, stores: Mapping[str, str]
) -> dict[str, Any]:
    from deploytool.run import live as live_layer

    status: dict[str, Any] = {}

    def connected() -> bool:
        nonlocal status
        status = here.status(service, tenant) or {}
        return status.get("state") == "connected"

    if live_layer.wait_until(connected, timeout_s, POLL_S):
        return status
    used = ", ".join(f"{name} {store}" for name, store in stores.items())
    raise CheckFailed(
        f"{service}: tenant {tenant} not connected within {timeout_s:g} s (state {status.get('state')!r}, "
        f"last error {status.get('last_error')!r}; session store: {used}); the lock already names {service}"
    )
