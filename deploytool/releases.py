"""Releases: one record per `up` and `railway apply` of an environment, kept in `<out>/.releases/releases.json`.

A release says what was deployed (number, time, git commit and dirty flag, the artifacts' hashes) and, per
service, what runs it: Compose's image id and the tag `<image>:r<N>` that keeps that image, or Railway's
deployment id. `rollback` reads it back. The file is git-ignored state (like `.run/`), holds no environment
value and no secret, is replaced atomically, and keeps the newest `keep` releases (the live one always).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from deploytool.errors import UserError, first_problem
from deploytool.output.fs import write_atomic
from deploytool.safeio import check_own_folder, load_json, own_folder, read_bytes, whole_number

RELEASES_DIR = ".releases"
RELEASES_FILE = "releases.json"
RELEASES_WHAT = "its release history"
DEFAULT_KEEP = 5
MAX_KEEP = 100
STORE_VERSION: Literal[1] = 1

# live: what runs now; failed: it never became healthy; superseded: a later release replaced it;
# pending: handed over (railway apply without --wait) with no outcome seen
Status = Literal["live", "failed", "superseded", "pending"]
Target = Literal["procfile", "compose", "railway"]
STATUSES: tuple[str, ...] = ("live", "failed", "superseded", "pending")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServiceRelease(_Model):
    """What runs one service in a release; which fields are set depends on the target."""

    image: str | None = None  # compose: the image name the compose file builds (tag left out)
    image_id: str | None = None  # compose: the image's id (sha256:…), what the tag keeps
    tag: str | None = None  # compose: `<image>:r<N>`, the name that keeps image_id after the next build
    deployment_id: str | None = None  # railway: the deployment of this release
    deployment_status: str | None = None  # railway: its status when last seen (SUCCESS, FAILED, CRASHED, …)
    config: str | None = None  # sha256 of the service as planned (no values of secrets: their names only)
    tenants: tuple[str, ...] = ()  # a WhatsApp service's tenants in this release


class Release(_Model):
    number: Annotated[int, Field(ge=1), BeforeValidator(whole_number)]
    created: str  # UTC, ISO 8601, seconds
    target: Target
    status: Status
    commit: str | None = None  # the spec folder's git HEAD, None outside git
    dirty: bool | None = None  # uncommitted changes in that work tree
    artifacts: dict[str, str] = Field(default_factory=dict)  # path → sha256 (the manifest's)
    services: dict[str, ServiceRelease] = Field(default_factory=dict)
    rollback_of: int | None = None  # set on a release `rollback` made: the release it went back to
    note: str | None = None  # one line: why it failed, or where it came from
    # compose: the copies (under .releases/r<N>/) of the files Compose read; on a rollback, the files it ran
    files: tuple[str, ...] | None = None


class ReleaseStore(_Model):
    version: Annotated[Literal[1], BeforeValidator(whole_number)] = STORE_VERSION
    environment: str
    releases: tuple[Release, ...] = ()  # oldest first

    def newest_first(self) -> list[Release]:
        return sorted(self.releases, key=lambda r: r.number, reverse=True)

    def get(self, number: int) -> Release | None:
        return next((r for r in self.releases if r.number == number), None)

    def live(self, target: str | None = None) -> Release | None:
        return next(
            (r for r in self.newest_first() if r.status == "live" and (target is None or r.target == target)), None
        )


def releases_dir(out_dir: Path) -> Path:
    return out_dir / RELEASES_DIR


def store_path(out_dir: Path) -> Path:
    return releases_dir(out_dir) / RELEASES_FILE


def read_store(out_dir: Path, environment: str) -> ReleaseStore:
    """The history of `out_dir` (empty when there is none); UserError naming the file and field when unreadable."""
    path = store_path(out_dir)
    if not check_own_folder(releases_dir(out_dir), RELEASES_WHAT):
        return ReleaseStore(environment=environment)
    data = read_bytes(path, "keeps its release history")
    if data is None:
        return ReleaseStore(environment=environment)
    try:
        return ReleaseStore.model_validate(load_json(data, str(path)))
    except ValidationError as exc:
        raise UserError(
            f"{path}: unreadable release history ({first_problem(exc)}); move it away to start a new one"
        ) from None


def dump_store(store: ReleaseStore) -> str:
    """Deterministic JSON: sorted keys, releases oldest first, unset fields left out."""
    return json.dumps(store.model_dump(mode="json", exclude_none=True), indent=2, sort_keys=True) + "\n"


def write_store(out_dir: Path, store: ReleaseStore) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    own_folder(releases_dir(out_dir), RELEASES_WHAT)
    write_atomic(store_path(out_dir), dump_store(store), 0o644)


def now_utc() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def git_state(folder: Path) -> tuple[str | None, bool | None]:
    """(HEAD commit, dirty) of the work tree holding `folder`; (None, None) outside git or without git."""
    try:
        head = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=30, check=False
        )
        if head.returncode != 0:
            return None, None
        status = subprocess.run(
            ["git", "-C", str(folder), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None, None
    dirty = bool(status.stdout.strip()) if status.returncode == 0 else None
    return head.stdout.strip() or None, dirty


def next_number(store: ReleaseStore) -> int:
    return max((r.number for r in store.releases), default=0) + 1


def prune(store: ReleaseStore, keep: int) -> tuple[ReleaseStore, list[Release]]:
    """The newest `keep` releases, and the live one of each target however old (with the release a live
    rollback runs: its images and files are in use); (kept store, dropped)."""
    live = {r.number for r in store.releases if r.status == "live"}
    live |= {r.rollback_of for r in store.releases if r.status == "live" and r.rollback_of is not None}
    newest = {r.number for r in store.newest_first()[:keep]}
    kept = tuple(r for r in store.releases if r.number in newest | live)
    dropped = [r for r in store.releases if r.number not in newest | live]
    return store.model_copy(update={"releases": kept}), dropped


def add_release(
    out_dir: Path,
    environment: str,
    release: Callable[[int], Release],
    keep: int = DEFAULT_KEEP,
    on_dropped: Callable[[Sequence[Release]], None] | None = None,
) -> Release:
    """Append the release `release(number)` builds; a live one supersedes the live release of its target.

    `on_dropped` is told which releases fell off the end (Compose removes their tags)."""
    store = read_store(out_dir, environment)
    made = release(next_number(store))
    releases = [
        r.model_copy(update={"status": "superseded"})
        if made.status == "live" and r.status == "live" and r.target == made.target
        else r
        for r in store.releases
    ]
    updated, dropped = prune(store.model_copy(update={"releases": (*releases, made)}), keep)
    write_store(out_dir, updated)
    if dropped and on_dropped is not None:
        on_dropped(dropped)
    return made


def new_release(
    number: int,
    *,
    target: Target,
    status: Status,
    spec_folder: Path,
    artifacts: Mapping[str, str],
    services: Mapping[str, ServiceRelease],
    rollback_of: int | None = None,
    note: str | None = None,
    git: tuple[str | None, bool | None] | None = None,
    files: Sequence[str] | None = None,
) -> Release:
    commit, dirty = git if git is not None else git_state(spec_folder)
    return Release(
        number=number,
        created=now_utc(),
        target=target,
        status=status,
        commit=commit,
        dirty=dirty,
        artifacts=dict(sorted(artifacts.items())),
        services=dict(sorted(services.items())),
        rollback_of=rollback_of,
        note=note,
        files=tuple(files) if files is not None else None,
    )


def choose_rollback(store: ReleaseStore, target: str, to: int | None) -> tuple[Release | None, Release]:
    """(the live release, the release to go back to): `to`; else, after a failed release, the live one before
    it; else the newest older one that was live."""
    current = store.live(target)
    if to is not None:
        chosen = store.get(to)
        if chosen is None:
            known = ", ".join(str(r.number) for r in store.newest_first()) or "none"
            raise UserError(f"release {to}: not in the history (kept: {known}; see `deploytool releases ENV`)")
        if chosen.target != target:
            raise UserError(f"release {to}: a {chosen.target} release, not {target}")
        if chosen.status == "failed":
            raise UserError(f"release {to}: it failed; name a release that ran (see `deploytool releases ENV`)")
        return current, chosen
    newest = next((r for r in store.newest_first() if r.target == target), None)
    if current is not None and newest is not None and newest.number > current.number:
        return current, current  # a later release failed (or was not followed): back to the one live before it
    below = current.number if current else next_number(store)
    earlier = [
        r
        for r in store.newest_first()
        if r.target == target and r.number < below and r.status in ("superseded", "live")
    ]
    if not earlier:
        raise UserError(
            f"no earlier {target} release to go back to (see `deploytool releases ENV`; each `up` or "
            "`railway apply` records one)"
        )
    return current, earlier[0]


def short_commit(release: Release) -> str:
    if release.commit is None:
        return "-"
    return release.commit[:12] + ("+dirty" if release.dirty else "")


def table(store: ReleaseStore) -> list[str]:
    """`releases ENV`: newest first."""
    lines = [f"{'RELEASE':>7}  {'STATUS':10} {'TARGET':8} {'CREATED':20} {'COMMIT':18} SERVICES"]
    for r in store.newest_first():
        what = []
        for name, svc in r.services.items():
            held = svc.deployment_id or svc.tag or svc.image_id
            what.append(f"{name}={held[:24]}" if held else name)
        extra = f" (rollback to {r.rollback_of})" if r.rollback_of is not None else ""
        note = f" — {r.note}" if r.note else ""
        lines.append(
            f"{r.number:>7}  {r.status:10} {r.target:8} {r.created:20} {short_commit(r):18} "
            f"{', '.join(what) or '-'}{extra}{note}"
        )
    return lines


def as_json(store: ReleaseStore) -> str:
    document = {
        "environment": store.environment,
        "releases": [r.model_dump(mode="json", exclude_none=True) for r in store.newest_first()],
    }
    return json.dumps(document, indent=2, sort_keys=True)


def artifact_hashes(artifacts: Mapping[str, str], spec_artifacts: Mapping[str, str]) -> dict[str, str]:
    """The manifest's hashes, the files beside the spec (`.railway/railway.py`, the lock) under `spec:`."""
    return {**artifacts, **{f"spec:{path}": sha for path, sha in spec_artifacts.items()}}


def record(
    out_dir: Path,
    environment: str,
    *,
    target: Target,
    status: Status,
    spec_folder: Path,
    artifacts: Mapping[str, str],
    services: Mapping[str, ServiceRelease],
    keep: int = DEFAULT_KEEP,
    rollback_of: int | None = None,
    note: str | None = None,
    on_dropped: Callable[[Sequence[Release]], None] | None = None,
    git: tuple[str | None, bool | None] | None = None,
    files: Sequence[str] | None = None,
) -> Release:
    """Write one release of `target` for `environment` (see `add_release`)."""

    def build(number: int) -> Release:
        return new_release(
            number,
            target=target,
            status=status,
            spec_folder=spec_folder,
            artifacts=artifacts,
            services=services,
            rollback_of=rollback_of,
            note=note,
            git=git,
            files=files,
        )

    return add_release(out_dir, environment, build, keep, on_dropped)


def update_release(out_dir: Path, environment: str, number: int, **changes: object) -> Release:
    """Release `number` with `changes`; one that becomes live supersedes the live release of its target."""
    store = read_store(out_dir, environment)
    found = store.get(number)
    if found is None:
        raise UserError(f"release {number}: not in the history of {environment} (kept: see `deploytool releases`)")
    updated = Release.model_validate({**found.model_dump(), **changes})
    releases = []
    for r in store.releases:
        if r.number == number:
            releases.append(updated)
        elif updated.status == "live" and r.status == "live" and r.target == updated.target:
            releases.append(r.model_copy(update={"status": "superseded"}))
        else:
            releases.append(r)
    write_store(out_dir, store.model_copy(update={"releases": tuple(releases)}))
    return updated


# --- the tenants' link state at the last probe (for the tenant impact lines) -------------------------------

PROBE_FILE = "last-probe.json"


def tenant_states(results: Iterable[object]) -> dict[str, str]:
    """tenant → `linked` (a QR target answered 409: connected) or `not linked` (it served a QR, or 410: the
    QR expired), from the QR targets of one probe; a tenant whose targets all failed is left out."""
    states: dict[str, str] = {}
    for result in results:
        tenant = getattr(result, "tenant", None)
        code = getattr(result, "http_status", None)
        if getattr(result, "kind", None) != "qr" or tenant is None or code not in (200, 409, 410):
            continue
        state = "linked" if code == 409 else "not linked"
        if states.get(tenant) != "linked":
            states[tenant] = state
    return dict(sorted(states.items()))


def record_probe(out_dir: Path, results: Iterable[object]) -> bool:
    """Keep the tenants' states of this probe beside the release history, once there is one (False: none)."""
    if not store_path(out_dir).is_file():
        return False
    states = tenant_states(results)
    text = json.dumps({"probed": now_utc(), "tenants": states}, indent=2, sort_keys=True) + "\n"
    write_atomic(releases_dir(out_dir) / PROBE_FILE, text, 0o644)
    return True


def last_probe_states(out_dir: Path) -> dict[str, str]:
    data = read_bytes(releases_dir(out_dir) / PROBE_FILE, "keeps the last probe's tenant states")
    if data is None:
        return {}
    try:
        tenants = load_json(data, str(releases_dir(out_dir) / PROBE_FILE)).get("tenants", {})
    except (UserError, AttributeError):
        return {}
    return {str(k): str(v) for k, v in tenants.items()} if isinstance(tenants, dict) else {}
