"""Process facts from /proc (Linux), with `ps` as the fallback elsewhere.

A process is identified by (pid, start time): a pid alone may have been reused by an unrelated process
since `up` recorded it. Every service runs as the leader of its own session and process group.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROC = Path("/proc")


@dataclass(frozen=True)
class ProcInfo:
    pid: int
    state: str  # Z: zombie (exited, not yet reaped) counts as gone
    pgrp: int
    session: int
    start: str  # /proc/<pid>/stat field 22 (clock ticks after boot), or `ps -o lstart`

    @property
    def alive(self) -> bool:
        return self.state not in ("Z", "X")


def _proc_stat(pid: int) -> ProcInfo | None:
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except (OSError, ValueError):
        return None
    # field 2 (comm) is in parentheses and may contain spaces or ')': split after the last ')'
    fields = text[text.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state); field n is fields[n - 3]
    return ProcInfo(pid, fields[0], int(fields[2]), int(fields[3]), fields[19])


def _ps(*args: str) -> list[list[str]]:
    try:
        result = subprocess.run(["ps", *args], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line.split() for line in result.stdout.splitlines() if line.strip()]


def _ps_all() -> list[ProcInfo]:
    rows = _ps("-A", "-o", "pid=,pgid=,sess=,stat=,lstart=")
    return [ProcInfo(int(r[0]), r[3][:1], int(r[1]), int(r[2]), " ".join(r[4:])) for r in rows if len(r) >= 5]


def proc_info(pid: int) -> ProcInfo | None:
    if PROC.joinpath("self", "stat").exists():
        return _proc_stat(pid)
    return next((p for p in _ps_all() if p.pid == pid), None)


def start_time(pid: int) -> str | None:
    info = proc_info(pid)
    return info.start if info else None


def group_members(pgid: int) -> list[ProcInfo]:
    """Live processes of process group `pgid` in session `pgid` (the groups `up` creates)."""
    if not PROC.joinpath("self", "stat").exists():
        return [p for p in _ps_all() if p.pgrp == pgid and p.alive]  # `ps` has no portable session id
    members = []
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            info = _proc_stat(int(entry.name))
            if info and info.pgrp == pgid and info.session == pgid and info.alive:
                members.append(info)
    return members


def signalable_group(pgid: int) -> bool:
    """False for a group `up` can never have created: init's (1), 0 or below (killpg's "my own group" and
    every process), and this process's own group (`down` would signal itself and the shell that ran it)."""
    return pgid > 1 and pgid != os.getpgrp()


def signal_group(pgid: int, sig: signal.Signals) -> None:
    """Signal a process group `up` created; a group that cannot be one is never signalled, whatever a state
    file says."""
    if not signalable_group(pgid):
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def owned(pid: int, pgid: int, started: str) -> bool:
    """True while the process group a runner recorded still has processes that are really its own.

    Exited children that were not reaped yet (zombies) count as gone: this never calls waitpid, so a
    caller holding a `Popen` of the same process still gets its real exit status."""
    if not signalable_group(pgid):
        return False  # never ours to stop (init's group, our own)
    info = proc_info(pid)
    if info is not None:
        # the pid exists: ours only if it is the very process `up` started (same start time, same group)
        return info.start == started and info.pgrp == pgid and (info.alive or bool(group_members(pgid)))
    # the leader is gone; while any member of its group lives, its pid cannot be reused, so they are ours
    return pgid == pid and bool(group_members(pgid))


def gone(pid: int, pgid: int, started: str) -> bool:
    info = proc_info(pid)
    if info is not None and info.start != started:
        return True  # the pid now belongs to someone else: our group is long gone
    return not group_members(pgid)


def port_in_use(host: str, port: int) -> bool:
    """True when a server already listens on `port` (on `host`, or on every address)."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        pass
    for family, address in ((socket.AF_INET6 if ":" in host else socket.AF_INET, host), (socket.AF_INET6, "::")):
        try:
            sock = socket.socket(family, socket.SOCK_STREAM)
        except OSError:
            continue
        with sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do: ignore TIME_WAIT leftovers
            try:
                sock.bind((address, port))
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    return True
    return False


def port_taken_hint(env: str) -> str:
    """How to get out of a taken port: stop the holder, or move deploytool's port for this checkout only."""
    return (
        "see who holds it with `ss -ltnp` or `lsof -i :PORT`; stop it, or move the port for this checkout only in "
        f"environments/{env}.local.yaml (git-ignored; e.g. `services: {{web: {{port: 5202}}}}`, per-port tenants: "
        f"`topology: {{ports: ...}}`) or with `--set services.web.port=5202`"
    )


def refuse_taken_ports(env: str, services: Iterable[tuple[str, str | None, int | None]]) -> None:
    """UserError naming every (service, local URL, port) whose port another process already listens on, before
    anything starts: a bind error later comes mid-start, after other services already run."""
    from urllib.parse import urlsplit

    from deploytool.errors import UserError

    taken = [
        f"service {name}: port {port}"
        for name, url, port in services
        if port and port_in_use(urlsplit(url or "").hostname or "127.0.0.1", port)
    ]
    if taken:
        raise UserError("port already in use by another process: " + "; ".join(taken) + f" ({port_taken_hint(env)})")


def started_epoch(started: str) -> float | None:
    """A process's start time (`start_time`) as seconds since the epoch, None where it cannot be told (/proc's
    clock ticks after boot, added to the boot time /proc/stat gives)."""
    if not started.isdigit():
        return None
    try:
        text = (PROC / "stat").read_text()
        boot = next(int(line.split()[1]) for line in text.splitlines() if line.startswith("btime "))
    except (OSError, StopIteration, ValueError, IndexError):
        return None
    return boot + int(started) / os.sysconf("SC_CLK_TCK")


def stop_group(process: subprocess.Popen[Any], waits: tuple[float, float] = (5.0, 5.0)) -> None:
    """End a child started in its own session (`start_new_session`) with everything it started: SIGTERM to its
    group, SIGKILL when it is still there after the first wait."""
    for sig, wait_s in zip((signal.SIGTERM, signal.SIGKILL), waits, strict=True):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=wait_s)
            break
        except subprocess.TimeoutExpired:
            continue
