"""Releases on Compose (issue 30): keep each release's images under a tag, and start them again without a build.

Compose names the image it builds for a service `<project>-<service>` (unless the service sets `image:`), and
the next `up` builds over that name: the previous image loses its name and is gone at the next prune. So after
every `up` each image deploytool built gets a second tag, `<image>:r<N>`, which keeps it. `rollback` writes a
Compose override (`.releases/r<N>.compose.yml`) that names those tags as the services' images, then runs the
usual `up` without a build and waits for every /health. Tags of releases that fall off the history (`--keep`)
are removed again (only tags deploytool made; an image still tagged otherwise stays).

The images alone are not the release: Compose also reads the rendered files. So every live `up` keeps a copy
of what Compose reads from the output folder (`docker-compose.yml`, `env/compose/*.env`, the manifest) under
`.releases/r<N>/`, and `rollback` runs Compose on that copy (with `--project-directory` the output folder, so
the project and its paths stay the same). `.secrets.env` is never copied: secret values come from the current
one. The copy goes when the release falls off the history, like its tags.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from deploytool import releases, run
from deploytool.errors import CheckFailed, DeploytoolError, UserError
from deploytool.output import read_manifest
from deploytool.output.fs import write_atomic
from deploytool.releases import RELEASES_WHAT, Release, ServiceRelease, releases_dir
from deploytool.run.compose import compose_status, compose_up
from deploytool.safeio import own_folder, read_bytes, read_text
from deploytool.targets.compose import COMPOSE_FILE

MANIFEST_FILE = "deploytool-manifest.json"


def built_images(out_dir: Path, project: str) -> dict[str, str]:
    """service → the image name Compose gives what it builds for it (the generated file's `build:` services)."""
    text = read_text(out_dir / "docker-compose.yml", "keeps the compose file")
    if text is None:
        raise UserError(f"{out_dir / 'docker-compose.yml'}: not found; render the environment first")
    document = yaml.safe_load(text) or {}
    services = document.get("services") or {}
    return {
        name: str(svc.get("image") or f"{project}-{name}")
        for name, svc in sorted(services.items())
        if isinstance(svc, dict) and "build" in svc
    }


def _client(environ: Mapping[str, str]) -> Any:
    import docker

    return docker.from_env(environment=dict(environ), timeout=30)


def release_services(environ: Mapping[str, str], images: Mapping[str, str], number: int) -> dict[str, ServiceRelease]:
    """Each built service's image id now, and the tag that will keep it (`<image>:r<N>`)."""
    import docker.errors

    try:
        client = _client(environ)
    except docker.errors.DockerException:  # no engine (why `up` failed): the names alone
        return {service: ServiceRelease(image=name) for service, name in images.items()}
    found: dict[str, ServiceRelease] = {}
    try:
        for service, name in images.items():
            repository = name.rsplit(":", 1)[0] if ":" in name.rsplit("/", 1)[-1] else name
            try:
                image_id = str(client.images.get(name).id)
            except docker.errors.ImageNotFound:
                found[service] = ServiceRelease(image=repository)
                continue
            found[service] = ServiceRelease(image=repository, image_id=image_id, tag=f"{repository}:r{number}")
    finally:
        client.close()
    return found


def tag_release(environ: Mapping[str, str], release: Release) -> None:
    client = _client(environ)
    try:
        for svc in release.services.values():
            if svc.image_id and svc.tag:
                repository, _, tag = svc.tag.rpartition(":")
                client.images.get(svc.image_id).tag(repository, tag)
    finally:
        client.close()


def untag(environ: Mapping[str, str], dropped: Sequence[Release]) -> None:
    """Remove the `:r<N>` tags of releases no longer kept (never an image by id)."""
    import docker.errors

    client = _client(environ)
    try:
        for release in dropped:
            for svc in release.services.values():
                if svc.tag:  # gone already, or a container still uses it: it stays
                    with contextlib.suppress(docker.errors.APIError):
                        client.images.remove(svc.tag, noprune=True)
    finally:
        client.close()


def rollback_override(out_dir: Path, release: Release, environ: Mapping[str, str]) -> Path:
    """`.releases/r<N>.compose.yml`: every built service of release N on its tagged image (each checked)."""
    import docker.errors

    missing = [name for name, svc in release.services.items() if svc.image and not svc.tag]
    if missing:
        raise UserError(f"release {release.number}: no image was kept for {', '.join(missing)}; it cannot be started")
    client = _client(environ)
    try:
        for name, svc in release.services.items():
            if svc.tag:
                try:
                    client.images.get(svc.tag)
                except docker.errors.ImageNotFound:
                    raise UserError(
                        f"release {release.number}: image {svc.tag} ({name}) is gone from this engine; "
                        "it cannot be started without a build"
                    ) from None
    finally:
        client.close()
    services = {name: {"image": svc.tag} for name, svc in sorted(release.services.items()) if svc.tag}
    own_folder(releases_dir(out_dir), RELEASES_WHAT)
    path = releases_dir(out_dir) / f"r{release.number}.compose.yml"
    header = f"# deploytool rollback: release {release.number}'s images, started without a build\n"
    write_atomic(path, header + yaml.safe_dump({"services": services}, sort_keys=True), 0o644)
    return path


def with_override(environ: Mapping[str, str], path: Path, override_var: str) -> dict[str, str]:
    """`environ` with `path` added after the overrides already given."""
    given = [p for p in environ.get(override_var, "").split(os.pathsep) if p.strip()]
    return {**environ, override_var: os.pathsep.join([*given, str(path)])}


def changed_artifacts(release: Release, now: Mapping[str, str]) -> list[str]:
    """The files whose hash differs between release N and the output folder now (the images are N's)."""
    if not release.artifacts:
        return []
    paths = sorted(set(release.artifacts) | set(now))
    return [p for p in paths if release.artifacts.get(p) != now.get(p)]


def require_started(statuses: Sequence[Any], number: int) -> None:
    bad = [s.name for s in statuses if getattr(s, "state", "healthy") not in ("healthy", "running")]
    if bad:
        raise CheckFailed(f"release {number}: {', '.join(bad)} did not come back")


# --- the release's files (what Compose reads from the output folder) ------------------------------------


def release_files_dir(out_dir: Path, number: int) -> Path:
    return releases_dir(out_dir) / f"r{number}"


def compose_artifacts(artifacts: Mapping[str, str]) -> list[str]:
    """The artifacts Compose reads: the compose file and its env files (never `.secrets.env`: not an artifact)."""
    prefix = "env/compose/"
    return sorted(
        p for p in artifacts if p == "docker-compose.yml" or (p.startswith(prefix) and "/" not in p[len(prefix) :])
    )


def keep_files(out_dir: Path, number: int, artifacts: Mapping[str, str]) -> tuple[str, ...]:
    """Copy release N's compose artifacts and the manifest into `.releases/r<N>/` (each file atomically); the
    copied paths, relative to the output folder."""
    names = [*compose_artifacts(artifacts), MANIFEST_FILE]
    target = release_files_dir(out_dir, number)
    own_folder(releases_dir(out_dir), RELEASES_WHAT)
    own_folder(target, RELEASES_WHAT)
    kept = []
    for name in names:
        data = read_bytes(out_dir / name, "wrote it")
        if data is None:
            continue
        path = target / name
        for parent in reversed(path.relative_to(target).parents[:-1]):
            own_folder(target / parent, RELEASES_WHAT)
        write_atomic(path, data, 0o644)
        kept.append(path.relative_to(out_dir).as_posix())
    return tuple(kept)


def drop_files(out_dir: Path, dropped: Sequence[Release]) -> None:
    """Remove the copies `keep_files` made for releases no longer kept (only those files; a folder only when
    it is left empty)."""
    for release in dropped:
        (releases_dir(out_dir) / f"r{release.number}.compose.yml").unlink(missing_ok=True)  # rollback's override
        target = release_files_dir(out_dir, release.number)
        folders = {target}
        for name in release.files or ():
            path = out_dir / name
            if target not in path.parents:
                continue  # not a copy of this release's
            folders.update(p for p in path.parents if target in p.parents)
            if not path.is_symlink() and path.is_file():
                path.unlink(missing_ok=True)
        for folder in sorted(folders, key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):  # not empty (not only ours), or gone already
                folder.rmdir()


def release_compose_file(out_dir: Path, release: Release) -> Path | None:
    """`.releases/r<N>/docker-compose.yml` when that release kept its files (None for an older history); a
    UserError when the copy no longer has the hash the release recorded."""
    name = release_files_dir(out_dir, release.number) / "docker-compose.yml"
    if name.relative_to(out_dir).as_posix() not in (release.files or ()):
        return None
    base = release_files_dir(out_dir, release.number).relative_to(out_dir)
    for kept in release.files or ():
        original = Path(kept).relative_to(base).as_posix()
        expected = release.artifacts.get(original)
        data = read_bytes(out_dir / kept, "kept it for a rollback")
        if data is None:
            raise UserError(f"{out_dir / kept}: gone; release {release.number} cannot be started as it ran")
        if expected is not None and hashlib.sha256(data).hexdigest() != expected:
            raise UserError(
                f"{out_dir / kept}: changed since release {release.number} kept it; move it away to roll back "
                "with today's files"
            )
    return name


# --- `rollback` on Compose, with its release ----------------------------------------------------------------


def rollback_to(
    out_dir: Path,
    env_name: str,
    spec_folder: Path,
    number: int | None,
    timeout_s: float,
    keep: int,
    environ: dict[str, str],
    say: Callable[[str], None],
    warn: Callable[[str], None],
) -> Release:
    """`rollback ENV [--to N]` on Compose: release N's tagged images on its kept files (today's for an older
    history), started without a build; one release records how it went (`warn` gets the progress)."""
    _, target = releases.choose_rollback(releases.read_store(out_dir, env_name), "compose", number)
    override = rollback_override(out_dir, target, environ)
    kept = release_compose_file(out_dir, target)
    if kept is None:  # a release recorded before its files were kept: its images with today's files
        manifest = read_manifest(out_dir)
        changed = changed_artifacts(target, releases.artifact_hashes(manifest.artifacts, manifest.spec_artifacts))
        if changed:
            warn(
                f"{env_name}: release {target.number}'s images with today's files ({', '.join(changed[:5])} changed "
                f"since; commit {releases.short_commit(target)} has that release's files)"
            )
    files = [kept or out_dir / COMPOSE_FILE, override]
    ran = tuple(f.relative_to(out_dir).as_posix() for f in files)
    warn(f"{env_name}: release {target.number}'s files: {', '.join(ran)} (secrets from today's .secrets.env)")
    if run.running_runner(out_dir) is not None:
        run.down(out_dir, environ, volumes=False)  # every holder stops before any starts again: never two
    failure: DeploytoolError | None = None
    try:
        compose_up(out_dir, environ, build=False, wait_timeout_s=timeout_s, progress=warn, files=files)
    except DeploytoolError as exc:
        failure = exc  # recorded as a failed release, then raised
    made = releases.record(
        out_dir,
        env_name,
        target="compose",
        status="live" if failure is None else "failed",
        spec_folder=spec_folder,
        artifacts=target.artifacts,
        services=target.services,
        keep=keep,
        rollback_of=target.number,
        note=None if failure is None else str(failure).splitlines()[-1][:200],
        git=(target.commit, target.dirty),
        files=ran,
    )
    if failure is not None:
        raise failure
    for status in compose_status(out_dir, environ):
        say(f"{status.state:9} {status.name:24} {status.url}")
    tags = ", ".join(sorted(s.tag for s in target.services.values() if s.tag))
    say(f"{env_name}: back to release {target.number} (compose, release {made.number}; images {tags})")
    return made
