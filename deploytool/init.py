"""`deploytool init`: a new project's spec and overlays, from a few answers. Writes only new files."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from deploytool.errors import UserError
from deploytool.output.files import OLD_SUFFIX, TMP_SUFFIX
from deploytool.output.fs import write_atomic
from deploytool.output.secrets import SECRETS_FILE
from deploytool.safeio import open_regular
from deploytool.spec.model import SERVICE_NAME_PATTERN, TENANT_ID_PATTERN, Target, Topology


@dataclass(frozen=True)
class Answers:
    project: str
    topology: Topology
    tenants: tuple[str, ...]
    targets: tuple[Target, ...]
    web_port: int = 5002
    whatsapp_port: int = 5001
    web_source: str = "flask_service"
    whatsapp_source: str = "node_service"
    repo: str | None = None


def parse_answers(
    project: str,
    topology: str,
    tenants: str,
    targets: str,
    web_port: int,
    whatsapp_port: int,
    repo: str | None,
) -> Answers:
    """Check each answer the way the spec will (UserError naming the option)."""
    if not re.match(SERVICE_NAME_PATTERN, project):
        raise UserError(f"--project: {project!r} is not a project name (lowercase letters, digits, dashes)")
    try:
        kind = Topology(topology)
    except ValueError:
        raise UserError(
            f"--topology: expected one of {', '.join(t.value for t in Topology)}, got {topology!r}"
        ) from None
    ids = tuple(t.strip() for t in tenants.split(",") if t.strip())
    bad = [t for t in ids if not re.match(TENANT_ID_PATTERN, t)]
    if not ids or bad or len(set(ids)) != len(ids):
        raise UserError(f"--tenants: expected distinct comma-separated ids like 1,2,3 (got {tenants!r})")
    chosen: list[Target] = []
    for name in (t.strip() for t in targets.split(",") if t.strip()):
        try:
            chosen.append(Target(name))
        except ValueError:
            raise UserError(f"--targets: unknown target {name!r} (known: local, compose, railway)") from None
    if not chosen:
        raise UserError("--targets: name at least one of local, compose, railway")
    for option, port in (("--web-port", web_port), ("--whatsapp-port", whatsapp_port)):
        if not 1024 <= port <= 65535:
            raise UserError(f"{option}: expected a port from 1024 to 65535, got {port}")
    if web_port == whatsapp_port:
        raise UserError("--web-port and --whatsapp-port must differ")
    if repo is not None and not re.match(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", repo):
        raise UserError(f"--repo: expected a GitHub owner/name, got {repo!r}")
    return Answers(project, kind, ids, tuple(dict.fromkeys(chosen)), web_port, whatsapp_port, repo=repo)


def spec_files(answers: Answers) -> dict[str, str]:
    """The files `init` writes, by path relative to the project folder (templates/init/)."""
    from deploytool.render.templating import render_template
    from deploytool.targets import plugin

    # targets a runner runs on this machine go to dev; the others (a cloud) get a prod overlay
    local = [t for t in answers.targets if plugin(t).runner is not None]
    remote = [t for t in answers.targets if plugin(t).runner is None]
    processes = [t for t in local if plugin(t).runner == "procfile"]  # production never runs as bare processes
    dev_targets = local or [t for t in Target if plugin(t).runner is not None][:1]
    files = {
        "deploytool.yaml": render_template(
            "init/deploytool.yaml.j2", a=answers, targets=[t.value for t in answers.targets]
        ),
        "environments/dev.yaml": render_template(
            "init/environments/dev.yaml.j2", targets=[t.value for t in dev_targets]
        ),
    }
    if remote:
        files["environments/prod.yaml"] = render_template(
            "init/environments/prod.yaml.j2",
            with_compose=bool(local),
            targets=[t.value for t in answers.targets if t not in processes],
        )
    return files


GITIGNORE = ".gitignore"
# What `render` and `up` write that must never be committed: local secret values, run state and logs, and the
# temporary files of an interrupted write. Patterns without a slash match in every output folder (`--out`).
GITIGNORE_HEADER = "# deploytool: local secret values, run state, temporary files (never commit them)"
GITIGNORE_LINES = (
    SECRETS_FILE,
    ".run/",
    ".releases/",  # releases (issue 30): the release history of each output folder
    f"*{TMP_SUFFIX}",
    f"*{OLD_SUFFIX}",
    "environments/*.local.yaml",
    "deploy/*.local/",
    "instance/",  # the web app's embedded SQLite database when no DATABASE_URL is set (`up` on the default)
)


GITIGNORE_WHAT = "keeps the project's .gitignore"


def _gitignore_plan(folder: Path) -> tuple[str, str | None, int]:
    """What `ensure_gitignore` will do, decided before `init` writes anything: ("left alone" | "" | "created" |
    "extended", the new text, its mode). A symbolic link there is left alone (it is someone's shared file,
    outside this folder maybe: never written through); a FIFO, a folder or a device is a UserError."""
    path = folder / GITIGNORE
    if path.is_symlink():
        return "left alone", None, 0
    fd = open_regular(path, GITIGNORE_WHAT)
    if fd is None:
        existing, mode = None, 0o644
    else:
        with os.fdopen(fd, "rb") as handle:
            mode = os.fstat(handle.fileno()).st_mode & 0o777
            data = handle.read(MAX_GITIGNORE_BYTES + 1)
        if len(data) > MAX_GITIGNORE_BYTES:
            raise UserError(f"{path}: larger than {MAX_GITIGNORE_BYTES:,} bytes; not a .gitignore init extends")
        try:
            existing = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UserError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    present = {line.strip() for line in (existing or "").splitlines()}
    missing = [line for line in GITIGNORE_LINES if line not in present]
    if not missing:
        return "", None, mode
    block = "\n".join([GITIGNORE_HEADER, *missing]) + "\n"
    if existing:
        block = existing + ("\n" if existing.endswith("\n") else "\n\n") + block
    return ("created" if existing is None else "extended"), block, mode


MAX_GITIGNORE_BYTES = 16 * 1024 * 1024


def ensure_gitignore(folder: Path) -> str:
    """Write `.gitignore`, or add the lines it lacks (never changing a line of it): "created", "extended",
    "left alone" (a symbolic link there), or "" when it had every line. Written as a whole (a new file
    renamed over the name), with the mode it had."""
    done, text, mode = _gitignore_plan(folder)
    if text is not None:
        write_atomic(folder / GITIGNORE, text, mode)
    return done


def check_destinations(folder: Path, files: dict[str, str]) -> None:
    """Refuse (UserError, nothing written) unless every file can be created where `init` puts it: nothing at
    any destination (not even a dangling link), and every folder on the way a folder or nothing."""
    existing = sorted(rel for rel in files if os.path.lexists(folder / rel))
    if existing:
        raise UserError(f"{folder}: {', '.join(existing)} already exist(s); init never overwrites (nothing written)")
    for rel in sorted(files):
        parent = (folder / rel).parent
        for step in (parent, *parent.parents):
            if step.is_dir():
                if not os.access(step, os.W_OK | os.X_OK):
                    raise UserError(f"{step}: cannot write there (no permission); nothing written")
                break
            if os.path.lexists(step):
                raise UserError(f"{step}: is in the way of a folder init creates (not a folder); nothing written")


def write_new(folder: Path, files: dict[str, str]) -> list[tuple[str, str]]:
    """Write every file, refusing first (nothing written) if any destination is taken; then make sure
    `.gitignore` keeps what `render` and `up` write out of git. (what was done, path) for each file touched."""
    check_destinations(folder, files)
    _gitignore_plan(folder)  # a FIFO or a folder at .gitignore: refused before anything is written
    written = []
    for rel, text in files.items():
        path = folder / rel
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except OSError as exc:
            raise UserError(f"{path}: cannot write: {exc.strerror}") from None
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        written.append(("created", rel))
    done = ensure_gitignore(folder)
    if done:
        written.append((done, GITIGNORE))
    return written
