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
import time
from dataclasses import dataclass
from pathlib import Path

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


def reap(pid: int) -> None:
    """Collect the exit status of a child of this process (tests, or `down` in the same process as `up`)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def wait_group_gone(pgid: int, leader: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while True:
        reap(leader)
        if not group_members(pgid):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


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
