"""Facts from the Docker engine, through the Docker SDK: is one reachable, the project's containers and networks,
their state and health, their last log lines. The `docker compose` CLI does the work; this only looks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
# Compose's own label: the project folder, here the output folder (the folder of the generated compose file).
# It tells two checkouts apart without a label of ours in the generated, machine-independent file.
FOLDER_LABEL = "com.docker.compose.project.working_dir"
ENGINE_TIMEOUT_S = 5


@dataclass(frozen=True)
class ContainerState:
    name: str
    service: str
    status: str  # created | running | restarting | exited | dead | paused
    health: str | None  # healthy | unhealthy | starting, None without a healthcheck
    exit_code: int
    restart_count: int
    folder: str = ""  # the output folder that created it (FOLDER_LABEL)
    started_at: float | None = None  # when it last started (seconds since the epoch), None: never

    @property
    def ok(self) -> bool:
        return self.status == "running" and self.health in (None, "healthy")


def _client(environ: Mapping[str, str]) -> Any:
    import docker  # imported late: the procfile runner never needs it

    return docker.from_env(environment=dict(environ), timeout=ENGINE_TIMEOUT_S)


def engine_problem(environ: Mapping[str, str]) -> str | None:
    """None when an engine answers at DOCKER_HOST (or the default socket), else why not, in one line."""
    import docker.errors

    where = environ.get("DOCKER_HOST") or "the default socket"
    try:
        client = _client(environ)
        try:
            client.ping()
        finally:
            client.close()
    except docker.errors.DockerException as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return f"nothing answers at {where}: {reason}"
    return None


def _epoch(text: object) -> float | None:
    """The engine's `2026-12-03T13:45:00.123456789Z` as seconds since the epoch; None for its zero time."""
    from datetime import datetime

    if not isinstance(text, str) or text.startswith("0001-"):
        return None
    head, _, fraction = text.rstrip("Z").partition(".")
    try:
        stamp = datetime.fromisoformat(head + "+00:00").timestamp()
    except ValueError:
        return None
    return stamp + float(f"0.{fraction[:6] or 0}")


def project_containers(environ: Mapping[str, str], project: str, folder: str | None = None) -> list[ContainerState]:
    """The containers of a Compose project; with `folder`, only those that output folder created."""
    client = _client(environ)
    try:
        found = client.containers.list(all=True, filters={"label": f"{PROJECT_LABEL}={project}"})
        states = []
        for container in found:
            attrs = container.attrs.get("State", {})
            health = attrs.get("Health", {}).get("Status") if attrs.get("Health") else None
            states.append(
                ContainerState(
                    name=container.name,
                    service=container.labels.get(SERVICE_LABEL, ""),
                    status=attrs.get("Status", container.status),
                    health=health,
                    exit_code=int(attrs.get("ExitCode", 0)),
                    restart_count=int(container.attrs.get("RestartCount", 0)),
                    folder=container.labels.get(FOLDER_LABEL, ""),
                    started_at=_epoch(attrs.get("StartedAt")),
                )
            )
        if folder is not None:
            states = [s for s in states if s.folder == folder]
        return sorted(states, key=lambda s: s.name)
    finally:
        client.close()


def project_networks(environ: Mapping[str, str], project: str) -> list[str]:
    client = _client(environ)
    try:
        return sorted(n.name for n in client.networks.list(filters={"label": f"{PROJECT_LABEL}={project}"}))
    finally:
        client.close()


def last_log_lines(environ: Mapping[str, str], container: str, lines: int = 20) -> list[str]:
    import docker.errors

    client = _client(environ)
    try:
        raw = client.containers.get(container).logs(tail=lines, stdout=True, stderr=True)
    except docker.errors.DockerException as exc:
        return [f"(no log: {exc})"]
    finally:
        client.close()
    text: str = raw.decode("utf-8", "replace")
    return text.splitlines()[-lines:]
