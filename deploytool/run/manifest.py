"""What the runner needs from `<out>/deploytool-manifest.json`, read once and checked at the edge."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploytool.errors import UserError
from deploytool.output.manifest import read_manifest
from deploytool.render.manifest import MANIFEST


@dataclass(frozen=True)
class RunService:
    name: str
    port: int
    local_url: str
    health_path: str | None
    command: str
    env_file: str  # relative to the output folder
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


def _field(data: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    value = data.get(key)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise UserError(f"{where}.{key}: missing or of the wrong type; render the output folder again")
    return value


def _names(data: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = data.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UserError(f"{where}.{key}: expected a list of variable names; render the output folder again")
    return tuple(value)


def load_manifest(out_dir: Path) -> RunManifest:
    path = out_dir / MANIFEST
    data = read_manifest(out_dir)
    where = str(path)
    root = out_dir / _field(data, "root", str, where)
    services = []
    raw_services = _field(data, "services", list, where)
    for index, raw in enumerate(raw_services):
        at = f"{where}: services[{index}]"
        if not isinstance(raw, dict):
            raise UserError(f"{at}: expected an object; render the output folder again")
        name = _field(raw, "name", str, at)
        at = f"{where}: services[{name}]"
        command = raw.get("command")
        if not isinstance(command, str) or not command.strip():
            raise UserError(f"{at}.command: this service has no local start command, so it cannot run as a process")
        health_path = raw.get("health_path")
        if health_path is not None and not isinstance(health_path, str):
            raise UserError(f"{at}.health_path: expected a path or null")
        services.append(
            RunService(
                name=name,
                port=_field(raw, "port", int, at),
                local_url=_field(raw, "local_url", str, at),
                health_path=health_path,
                command=command,
                env_file=_field(raw, "env_file", str, at),
                secrets=_names(raw, "secrets", at),
                passthrough=_names(raw, "passthrough", at),
            )
        )
    if not services:
        raise UserError(f"{path}: services: empty, nothing to run")
    environment = data.get("environment")
    return RunManifest(
        out_dir=out_dir,
        environment=environment if isinstance(environment, str) else "ENV",
        root=root.resolve(),
        services=tuple(sorted(services, key=lambda s: s.name)),
    )
