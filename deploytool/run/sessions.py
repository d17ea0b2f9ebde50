"""A tenant's WhatsApp session where the shards keep it, for `deploytool tenants move`.

With the PostgreSQL store the session lives in the database every shard reads: nothing moves. With the file
store it is a folder under each shard's AUTH_ROOT, which the move copies from the old shard to the new one
(without its `.lock`) and removes from the old one once the new shard holds the session. Where those folders
are depends on the runner: on this machine (procfile) or in the containers' volumes (compose).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol

from deploytool.errors import CheckFailed, UserError
from deploytool.run import compose
from deploytool.run.environment import env_file_values
from deploytool.run.manifest import load_manifest
from deploytool.targets.compose import COMPOSE_FILE


class SessionFiles(Protocol):
    def copy(self, source: str, target: str, folder: str) -> bool:
        """Copy `folder` of `source`'s AUTH_ROOT into `target`'s, without its `.lock`; False when `source` has
        no such folder (a tenant that never started there)."""
        ...

    def remove(self, service: str, folder: str) -> None:
        """Remove `folder` of the service's AUTH_ROOT (the old copy, once the tenant runs elsewhere)."""
        ...


class InDatabase:
    """PostgreSQL: the session is in the database every shard reads; nothing to copy or remove."""

    def copy(self, source: str, target: str, folder: str) -> bool:
        return False

    def remove(self, service: str, folder: str) -> None:
        return None


class HostFolders:
    """The procfile runner: each shard's AUTH_ROOT is a folder on this machine (its env file names it)."""

    def __init__(self, out_dir: Path, environ: Mapping[str, str]) -> None:
        self.out_dir = out_dir

    def _auth_dir(self, service: str) -> Path:
        manifest = load_manifest(self.out_dir)
        entry = next((s for s in manifest.services if s.name == service), None)
        auth = env_file_values(entry, self.out_dir).get("AUTH_ROOT") if entry and entry.env_file else None
        if not auth:
            raise UserError(f"service {service!r}: no AUTH_ROOT in its env file")
        return manifest.require_project_root() / auth

    def copy(self, source: str, target: str, folder: str) -> bool:
        source_dir, target_dir = self._auth_dir(source) / folder, self._auth_dir(target) / folder
        if not source_dir.is_dir():
            return False  # a tenant that never started there
        if target_dir.exists():
            shutil.rmtree(target_dir)  # a stale copy of an earlier stay on that shard: the source is current
        shutil.copytree(source_dir, target_dir, ignore=shutil.ignore_patterns(".lock"))
        return True

    def remove(self, service: str, folder: str) -> None:
        shutil.rmtree(self._auth_dir(service) / folder, ignore_errors=True)


class VolumeFolders:
    """The compose runner: each shard's AUTH_ROOT is on its volume, reached through the engine (`docker cp`
    streams a tar out of one container and into the other: no host path, so a remote engine works too)."""

    def __init__(self, out_dir: Path, environ: Mapping[str, str]) -> None:
        self.out_dir = Path(out_dir).resolve()
        self.environ = environ

    def _auth_root(self, service: str) -> str:
        """The service's AUTH_ROOT as the rendered compose file gives it (a path in its container)."""
        import yaml

        data = yaml.safe_load(compose.compose_text(self.out_dir)) or {}
        root = ((data.get("services") or {}).get(service) or {}).get("environment", {}).get("AUTH_ROOT")
        if not root:
            raise CheckFailed(f"{COMPOSE_FILE}: {service} has no AUTH_ROOT")
        return str(root)

    def _docker(self, *args: str, stdin: bytes | None = None) -> bytes:
        docker = compose.docker_cli(self.environ)
        result = subprocess.run([docker, *args], input=stdin, capture_output=True, timeout=300, env=dict(self.environ))
        if result.returncode != 0:
            raise CheckFailed(f"docker {args[0]}: {result.stderr.decode(errors='replace').strip()}")
        return result.stdout

    def _container(self, service: str) -> str:
        docker = compose.docker_cli(self.environ)
        command = compose.compose_command(self.out_dir, docker, "ps", "-a", "-q", service, environ=self.environ)
        result = subprocess.run(
            command, cwd=self.out_dir, capture_output=True, text=True, env=dict(self.environ), timeout=60
        )
        ids = result.stdout.split()
        if result.returncode != 0 or not ids:
            raise CheckFailed(f"{service}: no container ({result.stderr.strip() or 'not created'})")
        return ids[0]

    def copy(self, source: str, target: str, folder: str) -> bool:
        old, new = self._container(source), self._container(target)
        from_path, into = f"{self._auth_root(source)}/{folder}", self._auth_root(target)
        try:
            archive = self._docker("cp", f"{old}:{from_path}", "-")
        except CheckFailed:
            return False  # no folder: a tenant that never started there
        self._docker("exec", new, "rm", "-rf", f"{into}/{folder}")  # a stale copy of an earlier stay
        self._docker("exec", new, "mkdir", "-p", into)
        self._docker("cp", "-", f"{new}:{into}", stdin=archive)
        # the image's entrypoint gives what uid 1000 does not own to it at the next start (the shard restarts next)
        self._docker("exec", new, "rm", "-f", f"{into}/{folder}/.lock")
        return True

    def remove(self, service: str, folder: str) -> None:
        self._docker("exec", self._container(service), "rm", "-rf", f"{self._auth_root(service)}/{folder}")


# The file store's folders, by the runner that runs the shards: a new runner adds one line here.
FILE_STORES: dict[str, Callable[[Path, Mapping[str, str]], SessionFiles]] = {
    "procfile": HostFolders,
    "compose": VolumeFolders,
}


def session_files(store: str, runner: str, out_dir: Path, environ: Mapping[str, str]) -> SessionFiles:
    """Where a shard's sessions are for `store` (`postgres` or `files`, as the shard's /health says)."""
    if store == "postgres":
        return InDatabase()
    try:
        return FILE_STORES[runner](out_dir, environ)
    except KeyError:
        raise UserError(f"--runner {runner}: cannot move session files (known: {', '.join(FILE_STORES)})") from None
