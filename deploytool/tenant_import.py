"""`deploytool tenants import ENV --from DIR`: bring the linked WhatsApp sessions of an existing deployment into the
environment's session store, so its customers do not scan again (see docs/sessions.md).

Three steps, each a function:

1. `scan(DIR, tenants)`: what DIR holds, without following a link and reading every file through safeio with a
   size bound. A Baileys multi-file auth folder (`creds.json` plus key files, as `useMultiFileAuthState` and
   node_service's file store write them) named after a tenant of the environment is a candidate; a folder of
   folders (`auth/`, the runner's `.run/data/<service>/`) is looked into once. Refused, each named and nothing
   written for it: a name that is no tenant id or no tenant of the environment, a link, a folder without
   `creds.json` or with a file that is not JSON, a file over the bound, a second folder for one tenant.
   whatsapp-web.js profiles (`.wwebjs_auth_*`) are browser state of another protocol: listed as needing one scan.
2. The candidates are copied (the bytes already read and checked) into a private staging folder, so what node
   reads is exactly what was checked, whatever happens to DIR meanwhile.
3. node_service's own `src/store/import.js` reads each staged folder with Baileys' `useMultiFileAuthState` and
   writes it through node_service's store code, one run per WhatsApp service with that service's store settings
   as the procfile runner gives them (its env file, DATABASE_URL from the environment), so the stored bytes are
   exactly what node_service reads. It answers in JSON: tenant, `me`, key count, action; never key material.

On an environment Compose runs, step 3 runs inside each WhatsApp container instead (`run_in_container`), and
`--from-volume` reads a Docker volume through the engine (`copy_volume`) before step 1.

On `up`, `file_sessions_hint` (Procfile runner) and `volume_sessions_hint` (Compose) tell the operator the one
command that brings sessions left by a file-store layout into PostgreSQL (see docs/sessions.md for why `up` does
not import them itself).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deploytool.errors import CheckFailed, UserError
from deploytool.safeio import read_bytes

Say = Callable[[str], None]

TENANT_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # node_service's TENANT_ID_RE
CREDS = "creds.json"
SANDBOX_CREDS = "sandbox-creds.json"  # node_service's sandbox driver, in its file store
# Baileys' key types (its SignalDataTypeMap): a key file is `<type>-<id>.json`.
KEY_TYPES = (
    "app-state-sync-version",
    "app-state-sync-key",
    "sender-key-memory",
    "identity-key",
    "device-list",
    "lid-mapping",
    "sender-key",
    "pre-key",
    "session",
    "tctoken",
)
# node_service's own files beside the session (its lock, a handoff mark, a write or health probe under way)
OWN_FILES = re.compile(r"^(\.lock|\.released|\..+\.tmp|\.health-\d+)$")
MAX_FILE_BYTES = 16 * 1024 * 1024  # a large account's app-state-sync-version is a few MB; creds a few KB
MAX_FOLDER_BYTES = 256 * 1024 * 1024
MAX_FILES = 100_000
NODE_TIMEOUT_S = 600.0
IMPORT_SCRIPT = Path("src") / "store" / "import.js"
# What node's store reads from a service's environment (src/store/config.js, src/config.js's AUTH_ROOT)
STORE_NAMES = ("SESSION_STORE", "DATABASE_URL", "SESSION_DB_SCHEMA", "WA_SERVICE_NAME", "AUTH_ROOT")
RECORD_FILE = "imported-sessions.json"


@dataclass
class Entry:
    """One folder of DIR and what becomes of it."""

    folder: str  # relative to DIR
    kind: str  # session | wwebjs | refused | ignored
    tenant: str | None = None
    detail: str = ""
    me: str | None = None
    keys: int = 0
    files: dict[str, bytes] = field(default_factory=dict, repr=False)  # checked bytes, never printed
    service: str | None = None
    action: str = ""
    store: str = ""  # files | postgres, as node_service's importer opened it

    @property
    def digest(self) -> str:
        """Identifies the session (its creds documents), for the record `up`'s hint reads."""
        h = hashlib.sha256()
        for name in (CREDS, SANDBOX_CREDS):
            h.update(name.encode() + b"\0" + self.files.get(name, b"") + b"\0")
        return h.hexdigest()


def _is_key_file(name: str) -> bool:
    return name.endswith(".json") and any(name.startswith(f"{t}-") and len(name) > len(t) + 6 for t in KEY_TYPES)


def _has_session(path: Path) -> bool:
    return any(os.path.lexists(path / name) for name in (CREDS, SANDBOX_CREDS))


def _children(path: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(path) as it:
            return sorted(it, key=lambda e: e.name)
    except OSError as exc:
        raise UserError(f"{path}: cannot list: {exc.strerror}") from None


def _link_detail(root: Path, path: Path) -> str:
    target = os.readlink(path)
    resolved = (path.parent / target).resolve()
    where = "inside" if resolved == root or root in resolved.parents else "outside"
    return f"a symbolic link to {target} ({where} the folder imported from): links are not followed"


def _wwebjs_tenant(name: str, tenants: Sequence[str]) -> str | None:
    """`.wwebjs_auth_user_<id>` names its tenant (seed 004); `.wwebjs_auth_<port>` names a port, no tenant."""
    found = re.fullmatch(r"\.wwebjs_auth_user_([A-Za-z0-9_-]{1,64})", name)
    return found.group(1) if found and found.group(1) in tenants else None


def scan(source: Path, tenants: Sequence[str], env: str) -> list[Entry]:
    """Every folder of `source` (and of its folders of folders) with what it is; session bytes read and checked."""
    root = source.resolve()
    if not root.is_dir():
        raise UserError(f"--from: {source} is not a folder")
    entries: list[Entry] = []

    def visit(path: Path, rel: str, depth: int) -> None:
        for child in _children(path):
            name, sub = child.name, f"{rel}{child.name}"
            full = path / name
            if child.is_symlink():
                if _has_session(path) or TENANT_ID_RE.match(name) or depth == 0:
                    entries.append(Entry(sub, "refused", detail=_link_detail(root, full)))
                continue
            if not child.is_dir(follow_symlinks=False):
                continue  # a file beside the folders: not a session
            if name.startswith(".wwebjs_auth"):
                tenant = _wwebjs_tenant(name, tenants)
                entries.append(Entry(sub, "wwebjs", tenant, "a whatsapp-web.js profile (another protocol)"))
                continue
            if name.startswith(".wwebjs_cache"):
                continue
            if _has_session(full):
                entries.append(_session(root, full, sub, name, tenants, env))
            elif depth == 0 and any(
                c.is_dir(follow_symlinks=False) and _has_session(full / c.name) for c in _children(full)
            ):
                visit(full, f"{sub}/", depth + 1)  # auth/<tenant>/, .run/data/<service>/<tenant>/
            elif name in tenants:
                entries.append(Entry(sub, "refused", name, f"no {CREDS}: an empty or half-written session folder"))

    visit(root, "", 0)
    # Two folders for one tenant (refused ones too): which one is current is the operator's call, not ours.
    by_tenant: dict[str, list[Entry]] = {}
    for entry in entries:
        if entry.kind in ("session", "refused") and entry.tenant is not None and entry.tenant in tenants:
            by_tenant.setdefault(entry.tenant, []).append(entry)
    for tenant, found in by_tenant.items():
        if len(found) > 1:
            for entry in found:
                others = ", ".join(e.folder for e in found if e is not entry)
                why = f"; {entry.detail}" if entry.kind == "refused" else ""
                entry.kind, entry.files = "refused", {}
                entry.detail = f"a second folder for tenant {tenant} (also {others}): keep one, move the others{why}"
    return sorted(entries, key=lambda e: _natural(e.folder))


def _natural(text: str) -> list[tuple[int, int, str]]:
    """Sort key: numbers by value (auth/2 before auth/10), as node_service lists its tenants."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", text) if part]


def _session(root: Path, path: Path, rel: str, name: str, tenants: Sequence[str], env: str) -> Entry:
    """A folder holding creds: checked file by file; refused at the first problem, named."""
    entry = Entry(rel, "session", name)

    def refuse(detail: str) -> Entry:
        entry.kind, entry.detail, entry.files = "refused", detail, {}
        return entry

    if not TENANT_ID_RE.match(name):
        entry.tenant = None
        return refuse("not a valid tenant id (letters, digits, _ and -, at most 64)")
    if name not in tenants:
        return refuse(f"maps to no tenant of {env} (tenants: {', '.join(tenants)})")
    total = 0
    children = _children(path)
    if len(children) > MAX_FILES:
        return refuse(f"holds {len(children):,} entries, more than {MAX_FILES:,}")
    for child in children:
        if OWN_FILES.match(child.name):
            continue
        full = path / child.name
        if child.is_symlink():
            return refuse(f"{child.name}: {_link_detail(root, full)}")
        if child.name not in (CREDS, SANDBOX_CREDS) and not _is_key_file(child.name):
            return refuse(f"{child.name}: not a file of a Baileys auth folder")
        try:
            size = os.lstat(full).st_size
            if size > MAX_FILE_BYTES:
                return refuse(f"{child.name}: {size:,} bytes, larger than {MAX_FILE_BYTES:,}: not a session file")
            data = read_bytes(full, "holds a session file", limit=MAX_FILE_BYTES)
        except UserError as exc:
            return refuse(str(exc).replace(str(full), child.name, 1))
        if data is None:
            return refuse(f"{child.name}: went away while being read")
        total += len(data)
        if total > MAX_FOLDER_BYTES:
            return refuse(f"more than {MAX_FOLDER_BYTES:,} bytes of session files")
        try:
            json.loads(data)
        except ValueError:
            return refuse(f"{child.name}: not JSON (half-written?)")
        entry.files[child.name] = data
        entry.keys += _is_key_file(child.name)
    if CREDS not in entry.files and SANDBOX_CREDS not in entry.files:
        return refuse(f"no {CREDS}: an empty or half-written session folder")
    for doc in (CREDS, SANDBOX_CREDS):
        if doc in entry.files:
            found = json.loads(entry.files[doc])
            me = found.get("me") if isinstance(found, dict) else None
            if not isinstance(found, dict):
                return refuse(f"{doc}: not a JSON object")
            if isinstance(me, dict) and isinstance(me.get("id"), str):
                entry.me = entry.me or me["id"]
    if entry.me is None:
        entry.kind, entry.detail, entry.files = (
            "ignored",
            f'no linked device ({CREDS} has no "me"): nothing to import',
            {},
        )
    return entry


# ---- node_service's importer, one run per service --------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A WhatsApp service as the import writes into it: its store settings and the node_service code it runs."""

    service: str
    env: dict[str, str]
    script: Path
    cwd: Path

    @property
    def store(self) -> str:
        """node's rule (src/store/config.js): SESSION_STORE, else postgres when DATABASE_URL is set."""
        chosen = self.env.get("SESSION_STORE", "").strip()
        return chosen or ("postgres" if self.env.get("DATABASE_URL", "").strip() else "files")


def targets_of(out: Path, sources: Mapping[str, str | None], environ: Mapping[str, str]) -> dict[str, Target]:
    """Each WhatsApp service of the rendered folder with the store settings the procfile runner starts it with."""
    from deploytool.plan.model import Role
    from deploytool.run.environment import base_env, env_file_values
    from deploytool.run.manifest import load_manifest

    manifest = load_manifest(out)
    root = manifest.require_project_root()
    found = {}
    for svc in manifest.services:
        if svc.role is not Role.whatsapp:
            continue
        if svc.name not in sources:
            raise UserError(f"{out}: {svc.name} is not in the spec's plan any more: render the folder again")
        source = sources[svc.name]
        if source is None:
            raise UserError(f"{svc.name}: runs from an image, not from node_service code here: nothing to import with")
        script = root / source / IMPORT_SCRIPT
        if not script.is_file():
            raise UserError(f"{svc.name}: {script} not found: its source is not node_service (or an older one)")
        # as process_env builds it for the runner (env file, then passthrough), without the secrets: not needed
        values = env_file_values(svc, out)
        values.update({name: environ[name] for name in svc.passthrough if name in environ})
        env = base_env(environ)
        env.update({name: values[name] for name in STORE_NAMES if name in values})
        found[svc.name] = Target(svc.name, env, script, root)
    return found


def run_node(
    target: Target, entries: Sequence[Entry], stage: Path, apply: bool, replace: bool
) -> tuple[str, list[dict[str, Any]]]:
    """node_service's importer here over the staged folders of `entries`: its store and results, in their order."""
    node = shutil.which("node", path=target.env.get("PATH"))
    if node is None:
        raise UserError("node: not on PATH (bash scripts/bootstrap puts Node 22 in .venv/bin)")
    folders = [{"tenant": e.tenant, "path": str(stage / str(i))} for i, e in enumerate(entries)]
    args = [node, str(target.script), *_flags(apply, replace)]
    try:
        done = subprocess.run(
            args,
            cwd=target.cwd,
            env=target.env,
            input=json.dumps({"folders": folders}),
            capture_output=True,
            text=True,
            timeout=NODE_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise CheckFailed(f"{target.service}: node_service's import took longer than {NODE_TIMEOUT_S:g} s") from None
    return _answer(target.service, done.returncode, done.stdout, done.stderr, len(entries))


def _flags(apply: bool, replace: bool) -> list[str]:
    return [*(["--apply"] if apply else []), *(["--replace"] if replace else [])]


def _answer(service: str, code: int, stdout: str, stderr: str, count: int) -> tuple[str, list[dict[str, Any]]]:
    """import.js's one JSON document: the store it wrote to and a result per folder; CheckFailed otherwise."""
    from deploytool.redact import redact_url

    try:
        answer = json.loads(stdout)
    except ValueError:
        tail = redact_url(stderr.strip()[-400:])
        raise CheckFailed(f"{service}: node_service's import failed (exit {code}): {tail}") from None
    results = answer.get("results") if isinstance(answer, dict) else None
    if not isinstance(results, list) or len(results) != count or "error" in answer:
        shown = answer.get("error", answer) if isinstance(answer, dict) else answer
        raise CheckFailed(f"{service}: node_service's import: {redact_url(str(shown))}")
    return str(answer.get("store")), results


# The node_service image (node_service/Dockerfile): its code under its WORKDIR, its process as uid 1000.
CONTAINER_SCRIPT = "src/store/import.js"
CONTAINER_USER = "1000:1000"


def run_in_container(
    out: Path, environ: Mapping[str, str], service: str, entries: Sequence[Entry], apply: bool, replace: bool
) -> tuple[str, list[dict[str, Any]]]:
    """The same importer inside the service's running Compose container: the store settings, the volume and
    the process namespace (whose `.lock` pids it can check) are that container's. The checked files go in as a
    tar (`docker cp`, no host path: a remote engine works too), owned by the service's user, removed after."""
    import io
    import secrets
    import tarfile

    from deploytool.run import compose

    out = Path(out).resolve()
    docker = compose.docker_cli(environ)
    compose.require_engine(docker, environ)
    listed = subprocess.run(
        compose.compose_command(out, docker, "ps", "-q", service, environ=environ),
        cwd=out,
        env=dict(environ),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    ids = listed.stdout.split()
    if listed.returncode != 0 or not ids:
        raise UserError(f"{service}: its container does not run; start the environment (`deploytool up`) first")
    container = ids[0]
    top = f"deploytool-import-{secrets.token_hex(6)}"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        uid, gid = (int(x) for x in CONTAINER_USER.split(":"))

        def add(name: str, data: bytes | None) -> None:
            info = tarfile.TarInfo(name)
            info.uid, info.gid = uid, gid
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o700
                archive.addfile(info)
            else:
                info.size, info.mode = len(data), 0o600
                archive.addfile(info, io.BytesIO(data))

        add(top, None)
        for i, entry in enumerate(entries):
            add(f"{top}/{i}", None)
            for name, data in entry.files.items():
                add(f"{top}/{i}/{name}", data)

    def engine(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [docker, *args], input=stdin, capture_output=True, timeout=NODE_TIMEOUT_S, env=dict(environ), check=False
        )

    copied = engine("cp", "-a", "-", f"{container}:/tmp", stdin=buffer.getvalue())
    if copied.returncode != 0:
        raise CheckFailed(f"{service}: docker cp: {copied.stderr.decode(errors='replace').strip()}")
    try:
        folders = [{"tenant": e.tenant, "path": f"/tmp/{top}/{i}"} for i, e in enumerate(entries)]
        request = json.dumps({"folders": folders}).encode()
        args = ["exec", "-i", "-u", CONTAINER_USER, container, "node", CONTAINER_SCRIPT, *_flags(apply, replace)]
        done = engine(*args, stdin=request)
    finally:
        engine("exec", "-u", "0", container, "rm", "-rf", f"/tmp/{top}")
    text = done.stdout.decode(errors="replace")
    return _answer(service, done.returncode, text, done.stderr.decode(errors="replace"), len(entries))


def stage_files(stage: Path, entries: Sequence[Entry]) -> None:
    for i, entry in enumerate(entries):
        folder = stage / str(i)
        folder.mkdir(mode=0o700)
        for name, data in entry.files.items():
            fd = os.open(
                folder / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, stat.S_IRUSR | stat.S_IWUSR
            )
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)


# ---- the command ---------------------------------------------------------------------------------------


WORDS = {
    "import": ("import", "imported"),
    "replace": ("replace (--replace)", "replaced"),
    "unchanged": ("unchanged: in the store already", "unchanged: in the store already"),
    "linked": ("left alone", "left alone"),
    "locked": ("refused", "refused"),
    "unlinked": ("nothing to import", "nothing to import"),
    "failed": ("failed", "failed"),
}


def import_command(
    spec_path: Path,
    env: str,
    out: Path | None,
    source: Path | None,
    apply: bool,
    replace: bool,
    environ: Mapping[str, str],
    say: Say,
    volume: str | None = None,
) -> None:
    """`--from DIR`, or `--from-volume NAME`: a Docker volume of a file-store layout, read through the engine."""
    from contextlib import nullcontext

    from deploytool import pipeline
    from deploytool.run.state import run_lock

    if (source is None) == (volume is None):
        raise UserError("tenants import: give exactly one of --from DIR and --from-volume NAME")
    out = out or pipeline.default_out(spec_path, env)
    # --apply: one import, up, down, restart or move at a time on the folder (run_lock, as `tenants move`)
    with run_lock(out) if apply else nullcontext():
        if volume is None:
            assert source is not None
            _import(spec_path, env, out, source, apply, replace, environ, say, str(source.resolve()))
            return
        with tempfile.TemporaryDirectory(prefix="deploytool-volume-") as tmp:
            copy_volume(out, environ, volume, Path(tmp))
            try:
                _import(spec_path, env, out, Path(tmp), apply, replace, environ, say, f"volume:{volume}")
            finally:
                if apply:
                    _mark(out, f"volume:{volume}")


# A volume's session files come out as a tar through a throwaway container of the WhatsApp service's image.
MAX_VOLUME_BYTES = 1024 * 1024 * 1024


def copy_volume(out: Path, environ: Mapping[str, str], volume: str, into: Path) -> None:
    """The regular files, folders and links (as links: never followed) of `volume` under `into`; nothing else."""
    import io
    import tarfile

    from deploytool.run import compose

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", volume):
        raise UserError(f"--from-volume: {volume!r} is not a Docker volume name")
    out = Path(out).resolve()
    docker = compose.docker_cli(environ)
    compose.require_engine(docker, environ)
    found = subprocess.run(
        [docker, "volume", "inspect", volume], capture_output=True, env=dict(environ), timeout=60, check=False
    )
    if found.returncode != 0:
        raise UserError(f"--from-volume: no volume {volume!r} on this engine (`docker volume ls` lists them)")
    service = _whatsapp_service(out)
    args = ["run", "--rm", "--no-deps", "-T", "-v", f"{volume}:/volume:ro", "--entrypoint", "tar", service]
    command = compose.compose_command(out, docker, *args, "-C", "/volume", "-cf", "-", ".", environ=environ)
    done = subprocess.run(command, cwd=out, capture_output=True, env=dict(environ), timeout=NODE_TIMEOUT_S, check=False)
    if done.returncode != 0:
        raise CheckFailed(f"{volume}: reading it failed: {done.stderr.decode(errors='replace').strip()[-400:]}")
    if len(done.stdout) > MAX_VOLUME_BYTES:
        raise UserError(f"{volume}: more than {MAX_VOLUME_BYTES:,} bytes: not a session volume")
    with tarfile.open(fileobj=io.BytesIO(done.stdout), mode="r:") as archive:
        for member in archive.getmembers():
            parts = [p for p in member.name.split("/") if p not in ("", ".")]
            if not parts or ".." in parts or len(parts) > 4:
                continue
            path = into.joinpath(*parts)
            if member.isdir():
                path.mkdir(mode=0o700, parents=True, exist_ok=True)
            elif member.issym():
                path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                os.symlink(member.linkname, path)  # kept as a link, so the scan names it (and never follows it)
            elif member.isfile() and member.size <= MAX_FILE_BYTES:
                path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                handle = archive.extractfile(member)
                data = handle.read() if handle else b""
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
                with os.fdopen(fd, "wb") as written:
                    written.write(data)
            elif member.isfile():  # too big to be a session file: an empty stand-in the scan refuses by size
                path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                with open(path, "wb") as written:
                    written.truncate(member.size)


def _whatsapp_service(out: Path) -> str:
    from deploytool.plan.model import Role
    from deploytool.run.manifest import load_manifest

    names = [s.name for s in load_manifest(out).services if s.role is Role.whatsapp]
    if not names:
        raise UserError(f"{out}: no WhatsApp service")
    return names[0]


def _import(
    spec_path: Path,
    env: str,
    out: Path,
    source: Path,
    apply: bool,
    replace: bool,
    environ: Mapping[str, str],
    say: Say,
    record_as: str,
) -> None:
    from deploytool import pipeline, run
    from deploytool.output.manifest import read_manifest
    from deploytool.plan.model import Role
    from deploytool.redact import redact_url
    from deploytool.run.runners import ComposeRunner

    _, plan = pipeline.plan_environment(spec_path, env)
    routes = {t.tenant: t.service for t in read_manifest(out, hint=f"run `deploytool render {env}` first").tenants}
    sources = {s.name: s.source for s in plan.services if s.role is Role.whatsapp}
    current = run.running_runner(out)
    importer: Callable[[str, list[Entry], Path], tuple[str, list[dict[str, Any]]]]
    if isinstance(current, ComposeRunner):  # the store as the containers reach it

        def importer(service: str, mine: list[Entry], stage: Path) -> tuple[str, list[dict[str, Any]]]:
            return run_in_container(out, environ, service, mine, apply, replace)
    else:  # the store as the procfile runner starts the services with
        targets = targets_of(out, sources, environ)

        def importer(service: str, mine: list[Entry], stage: Path) -> tuple[str, list[dict[str, Any]]]:
            stage_files(stage, mine)
            return run_node(targets[service], mine, stage, apply, replace)

    entries = scan(source, list(routes), env)
    if not entries and _has_session(source):
        raise UserError(
            f"--from: {source} is one session folder itself; name the folder that holds it (its parent), whose "
            "folder names are the tenant ids"
        )
    sessions = [e for e in entries if e.kind == "session"]
    for entry in sessions:
        entry.service = routes[entry.tenant or ""]
    with tempfile.TemporaryDirectory(prefix="deploytool-import-") as tmp:
        for service in sorted({e.service for e in sessions if e.service}):
            mine = [e for e in sessions if e.service == service]
            stage = Path(tmp) / service
            stage.mkdir(mode=0o700)
            store, results = importer(service, mine, stage)
            for entry, result in zip(mine, results, strict=True):
                entry.store = store
                entry.action = str(result.get("action"))
                entry.detail = redact_url(str(result.get("detail") or ""))
                entry.keys = int(result.get("keys") or entry.keys)
    _report(entries, env, apply, say)
    if apply:
        _record(out, record_as, [e for e in sessions if e.action in ("import", "replace", "unchanged", "linked")])
        _resume(spec_path, env, out, [e for e in sessions if e.action in ("import", "replace")], environ, say)
    refused = [e for e in entries if e.kind == "refused" or e.action in ("locked", "failed")]
    if refused:
        raise CheckFailed(f"{env}: {len(refused)} folder(s) refused (above); nothing was written for them")


def _report(entries: Sequence[Entry], env: str, apply: bool, say: Say) -> None:
    if not entries:
        say(f"{env}: no session folders found")
        return
    say(f"{'FOLDER':28} {'TENANT':10} {'SERVICE':20} {'ME':34} {'KEYS':>5}  RESULT")
    for e in entries:
        if e.kind == "session":
            word = WORDS.get(e.action, (e.action, e.action))[1 if apply else 0]
            result = (
                f"{word}{': ' + e.detail if e.detail and e.action not in ('import', 'replace', 'unchanged') else ''}"
            )
            where = f"{e.tenant or '-':10} {e.service or '-':20} {e.me or '-':34}"
            say(f"{e.folder:28} {where} {e.keys:>5}  {result} ({e.store})")
        else:
            word = {"wwebjs": "needs one scan", "refused": "refused", "ignored": "ignored"}[e.kind]
            say(f"{e.folder:28} {e.tenant or '-':10} {'-':20} {'-':34} {'-':>5}  {word}: {e.detail}")
    scans = [e.tenant or e.folder for e in entries if e.kind == "wwebjs"]
    if scans:
        say(f"{env}: whatsapp-web.js sessions cannot become Baileys sessions; these need one scan: {', '.join(scans)}")
    todo = [e for e in entries if e.kind == "session" and e.action in ("import", "replace")]
    if not apply and todo:
        say(f"{env}: {len(todo)} session(s) to import; run again with --apply to write them")


def _record(out: Path, root: str, entries: Sequence[Entry]) -> None:
    """Which folders are in the store now (where -> digest of their creds), so `up` stops suggesting them."""
    if entries:
        _write_record(out, {**_read_record(out), **{f"{root}/{e.folder}": e.digest for e in entries}})


def _mark(out: Path, key: str) -> None:
    """A volume imported from (whatever it held): `up` does not suggest it again."""
    _write_record(out, {**_read_record(out), key: "imported"})


def _write_record(out: Path, record: Mapping[str, str]) -> None:
    from deploytool.output.fs import write_atomic
    from deploytool.run.state import own_run_dir

    write_atomic(own_run_dir(out) / RECORD_FILE, json.dumps(record, indent=1, sort_keys=True) + "\n", mode=0o600)


def _read_record(out: Path) -> dict[str, str]:
    from deploytool.run.state import run_dir
    from deploytool.safeio import read_text

    text = read_text(run_dir(out) / RECORD_FILE, "records the imported session folders")
    try:
        data = json.loads(text) if text else {}
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _resume(
    spec_path: Path, env: str, out: Path, entries: Sequence[Entry], environ: Mapping[str, str], say: Say
) -> None:
    """On an environment running here, each imported tenant is connected on its service (from the store, no QR)."""
    from deploytool import tenants

    if not entries:
        return
    here = tenants.live(tenants.layout(spec_path, env, out), environ)
    if here is None:
        say(f"{env}: not running here; `deploytool up {env}` resumes the imported tenants without a scan")
        return
    for e in entries:
        service = e.service or ""
        response = here.call("POST", service, f"/tenants/{e.tenant}/connect")
        if response.status_code in (202, 409):
            say(f"  {service}: tenant {e.tenant} resumes from the store (POST connect -> {response.status_code})")
        else:
            say(f"  {service}: POST /tenants/{e.tenant}/connect -> HTTP {response.status_code}; restart {service}")


# ---- `up`: file sessions left behind by a file-store layout ------------------------------------------------


def file_sessions_hint(out: Path, env: str, environ: Mapping[str, str]) -> str | None:
    """The command to run when a WhatsApp service now keeps its sessions in PostgreSQL and the runner's session
    folders (`.run/data/`) still hold linked sessions of a file-store layout that were never imported."""
    from deploytool.run.manifest import load_manifest
    from deploytool.run.state import run_dir

    data = run_dir(out) / "data"
    if not data.is_dir() or data.is_symlink():
        return None
    try:
        manifest = load_manifest(out)
        stores = _stores(out, manifest, environ)
    except UserError:
        return None
    if "postgres" not in stores.values():
        return None
    tenants = [t for s in manifest.services for t in s.tenants]
    try:
        found = [e for e in scan(data, tenants, env) if e.kind == "session"]
    except UserError:
        return None
    record = _read_record(out)
    left = [e for e in found if record.get(f"{data.resolve()}/{e.folder}") != e.digest]
    if not left:
        return None
    shown = os.path.relpath(data) if not os.path.relpath(data).startswith("..") else str(data)
    names = ", ".join(sorted({e.tenant or "" for e in left}))
    return (
        f"{env}: sessions are kept in PostgreSQL now, and {shown} still holds {len(left)} linked session(s) of the "
        f"file store (tenants {names}); bring them over without a scan: "
        f"deploytool tenants import {env} --from {shown} --apply"
    )


def _stores(out: Path, manifest: Any, environ: Mapping[str, str]) -> dict[str, str]:
    from deploytool.plan.model import Role
    from deploytool.run.environment import env_file_values

    stores = {}
    for svc in manifest.services:
        if svc.role is not Role.whatsapp or svc.env_file is None:
            continue
        values = env_file_values(svc, out)
        if "DATABASE_URL" in svc.passthrough and environ.get("DATABASE_URL"):
            values.setdefault("DATABASE_URL", environ["DATABASE_URL"])
        stores[svc.name] = Target(svc.name, values, Path(), Path()).store
    return stores


def volume_sessions_hint(out: Path, env: str, environ: Mapping[str, str]) -> str | None:
    """Compose: the command to run when a WhatsApp service keeps its sessions in PostgreSQL now and the named volume
    its file-store layout had (`<project>_<service>-data`) is still on the engine, not imported from yet."""
    from deploytool.run import compose

    try:
        import yaml

        data = yaml.safe_load(compose.compose_text(out)) or {}
        project = compose.project_name(out, environ)
        docker = compose.docker_cli(environ)
    except (UserError, yaml.YAMLError):
        return None
    record = _read_record(out)
    wanted = []
    for name, svc in sorted((data.get("services") or {}).items()):
        env_of = (svc or {}).get("environment") or {}
        if env_of.get("SESSION_STORE") == "postgres" and not (svc or {}).get("volumes"):
            wanted.append(f"{project}_{name}-data")
    if not wanted:
        return None
    try:  # one look at the engine, however many shards
        listed = subprocess.run(
            [docker, "volume", "ls", "-q", "--filter", f"name={project}_"],
            capture_output=True,
            text=True,
            env=dict(environ),
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    present = set(listed.stdout.split()) if listed.returncode == 0 else set()
    hints = [v for v in wanted if v in present and f"volume:{v}" not in record]
    if not hints:
        return None
    commands = "; ".join(f"deploytool tenants import {env} --from-volume {v} --apply" for v in hints)
    return (
        f"{env}: sessions are kept in PostgreSQL now, and the file store's volume(s) {', '.join(hints)} are still "
        f"there; bring their linked sessions over without a scan: {commands}"
    )
