"""What the runners need from `<out>/deploytool-manifest.json`, read once through the typed model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from deploytool.errors import UserError
from deploytool.output.manifest import read_manifest
from deploytool.render.manifest import MANIFEST, ManifestService


@dataclass(frozen=True)
class RunManifest:
    out_dir: Path
    environment: str
    root: Path  # processes run with this as their working directory
    services: tuple[ManifestService, ...]  # the manifest's own records: one service model from render to run
    root_field: str = "."  # `root` as the manifest writes it

    def require_project_root(self) -> Path:
        """`root`, once it is the project this folder was rendered from: the folder of the spec, which holds this
        environment's overlay (load_spec requires it). Processes run there with the manifest's variables, so a
        hand-edited root (`/`, another checkout) is refused, as artifact paths outside the folder are."""
        overlay = self.root / "environments" / f"{self.environment}.yaml"
        if not overlay.is_file():
            raise UserError(
                f"{self.out_dir / MANIFEST}: root: {self.root_field!r} is not the project this folder was rendered "
                f"from ({overlay} is not there); render the output folder again"
            )
        return self.root

    @property
    def down_hint(self) -> str:
        return f"deploytool down {self.environment} --out {self.out_dir}"

    def require_processes(self) -> None:
        """UserError unless every service can be started as a process here (the procfile runner), in the project."""
        self.require_project_root()
        missing = [s.name for s in self.services if s.command is None or s.env_file is None]
        if missing:
            raise UserError(
                f"{self.out_dir / MANIFEST}: services {', '.join(missing)} have no process command: the environment "
                "has no target that runs as processes (add it to `targets` and render again)"
            )


def load_manifest(out_dir: Path) -> RunManifest:
    manifest = read_manifest(out_dir)
    return RunManifest(
        out_dir=out_dir,
        environment=manifest.environment,
        root=(out_dir / manifest.root).resolve(),
        root_field=manifest.root,
        services=tuple(sorted(manifest.services, key=lambda s: s.name)),
    )
