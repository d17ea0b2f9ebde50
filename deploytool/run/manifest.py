"""What the runners need from `<out>/deploytool-manifest.json`, read once through the typed model."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from deploytool.errors import UserError
from deploytool.output.manifest import read_manifest
from deploytool.render.manifest import MANIFEST


@dataclass(frozen=True)
class RunService:
    name: str
    port: int
    local_url: str
    health_path: str | None
    command: str | None  # None: the environment has no process target for this service
    env: Mapping[str, str] | None  # plain variables (the manifest's process.env); None: no process target
    secrets: tuple[str, ...]
    passthrough: tuple[str, ...]

    @property
    def health_url(self) -> str | None:
        if not self.health_path:
            return None
        return self.local_url.rstrip("/") + "/" + self.health_path.lstrip("/")


@dataclass(frozen=True)
class RunManifest:
    out_dir: Path
    environment: str
    root: Path  # processes run with this as their working directory
    services: tuple[RunService, ...]

    @property
    def down_hint(self) -> str:
        return f"deploytool down {self.environment} --out {self.out_dir}"

    def require_processes(self) -> None:
        """UserError unless every service can be started as a process here (the procfile runner)."""
        missing = [s.name for s in self.services if s.command is None or s.env is None]
        if missing:
            raise UserError(
                f"{self.out_dir / MANIFEST}: services {', '.join(missing)} have no process command: the environment "
                "has no target that runs as processes (add it to `targets` and render again)"
            )


def load_manifest(out_dir: Path) -> RunManifest:
    manifest = read_manifest(out_dir)
    services = [
        RunService(
            name=svc.name,
            port=svc.port or 0,  # 0: listens nowhere (a worker); nothing to check or show
            local_url=svc.local_url or "-",
            health_path=svc.health_path,
            command=svc.process.command if svc.process else None,
            env=svc.process.env if svc.process else None,
            secrets=tuple(svc.secrets),
            passthrough=tuple(svc.passthrough),
        )
        for svc in manifest.services
    ]
    return RunManifest(
        out_dir=out_dir,
        environment=manifest.environment,
        root=(out_dir / manifest.root).resolve(),
        services=tuple(sorted(services, key=lambda s: s.name)),
    )
