"""One interface for every way of running an output folder on this machine (`deploytool up --runner NAME`).

A runner is chosen by name through the target registry (each target names the runner that can run its
output); the implementations are the procfile supervisor and Docker Compose.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    # healthy | running (alive, no health path) | starting | unhealthy | restarting | stopped | not created;
    # the same words for every runner, from what runs now (processes, the engine), never from what `up` started
    state: str
    url: str
    health_url: str | None
    pid: int | None = None
    log: Path | None = None
    detail: str = ""
    exit_code: int | None = None  # of the last run, once it ended (None: runs, or not known)
    started_at: float | None = None  # seconds since the epoch, while it runs (`ps`'s uptime)
    addon: bool = False  # postgres, redis: run beside the services (compose), not from the spec's services


@dataclass(frozen=True)
class Event:
    """Progress for the CLI to show while `up`/`down` work; never carries a secret."""

    service: str
    kind: str  # started | healthy | failed | stopping | stopped
    detail: str = ""


EventHandler = Callable[[Event], None]
Environ = Mapping[str, str]


class Runner(Protocol):
    name: str

    def up(
        self, out_dir: Path, environ: Environ, deadline_s: float, on_event: EventHandler | None, recreate: bool = False
    ) -> list[ServiceStatus]:
        """Start every service of the rendered folder and return once each is healthy; on a running folder, start
        what is missing and restart what changed, like `docker compose up -d` (`recreate`: everything)."""
        ...

    def down(self, out_dir: Path, environ: Mapping[str, str], volumes: bool, rmi_local: bool = False) -> list[str]:
        """Stop exactly what `up` started; `volumes` also removes the data volumes it made, `rmi_local` the images
        it built (never a pulled one)."""
        ...

    def status(self, out_dir: Path, environ: Mapping[str, str]) -> list[ServiceStatus]:
        """One look at every service, in `ServiceStatus.state`'s words."""
        ...

    def restart(
        self, out_dir: Path, environ: Mapping[str, str], service: str, deadline_s: float, on_event: EventHandler | None
    ) -> ServiceStatus:
        """Restart one service of a running environment; return once it is healthy again."""
        ...

    def logs(
        self, out_dir: Path, environ: Mapping[str, str], service: str | None, lines: int, follow: bool
    ) -> Iterator[str]:
        """The last `lines` log lines of one service (or all), secrets masked; `follow` keeps reading."""
        ...

    def run_command(self, out_dir: Path, environ: Mapping[str, str], service: str, argv: Sequence[str]) -> int:
        """Run one command with exactly `service`'s environment; its exit code (`deploytool run`)."""
        ...
