"""`<out>/.run/state.json`: what `up` started, so `down` stops exactly that. No environment, no secrets."""

from __future__ import annotations

import fcntl
import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BeforeValidator, ConfigDict, Field, TypeAdapter, ValidationError
from pydantic.dataclasses import dataclass

from deploytool.errors import UserError, first_problem
from deploytool.output.fs import write_atomic
from deploytool.run.procs import owned
from deploytool.safeio import check_own_folder, load_json, open_regular, own_folder, read_bytes, whole_number

RUN_DIR = ".run"
STATE_FILE = "state.json"
UP_ENVIRON_FILE = "up-environ.json"  # what `up` took from its shell (run/environment.py), mode 0600
STATE_VERSION: Literal[1] = 1


# pydantic dataclasses: built positionally by the runners, read back through the same declarations. A state
# file is ours but lives on disk: a forged pid or pgid of 0 or 1 would make `down` signal its own process
# group or init, so those are refused, not trusted.
_CONFIG = ConfigDict(extra="forbid", strict=True)
Pid = Annotated[int, Field(gt=1)]


@dataclass(frozen=True, config=_CONFIG)
class ProcessRecord:
    name: str
    pid: Pid
    pgid: Pid
    start_time: str  # identifies the process together with pid: a reused pid has another start time
    command: str
    log: str  # relative to the output folder
    env_digest: str = ""  # sha256 of the env file it started with (no secret is in it): `up` restarts it on a change


@dataclass(frozen=True, config=_CONFIG)
class RunState:
    runner: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]*$")]  # procfile | compose
    environment: str
    processes: tuple[ProcessRecord, ...] = ()
    version: Annotated[Literal[1], BeforeValidator(whole_number)] = STATE_VERSION


_STATE = TypeAdapter(RunState)


def run_dir(out_dir: Path) -> Path:
    return out_dir / RUN_DIR


RUN_DIR_WHAT = "its run state, lock and logs"


def own_run_dir(out_dir: Path) -> Path:
    """`<out>/.run`, created when missing; refused when a link, a file or another user's folder is there."""
    out_dir.mkdir(parents=True, exist_ok=True)
    return own_folder(run_dir(out_dir), RUN_DIR_WHAT)


def state_path(out_dir: Path) -> Path:
    return run_dir(out_dir) / STATE_FILE


def read_state(out_dir: Path) -> RunState | None:
    path = state_path(out_dir)
    if not check_own_folder(run_dir(out_dir), RUN_DIR_WHAT):
        return None
    data = read_bytes(path, "keeps its run state")
    if data is None:
        return None
    try:
        load_json(data, str(path))  # a key written twice is refused (JSON mode would keep the last one)
        return _STATE.validate_json(data)
    except ValidationError as exc:
        raise UserError(
            f"{path}: unreadable run state ({first_problem(exc)}); check for leftover processes (`ps -ef`) and "
            "delete the file"
        ) from None


def write_state(out_dir: Path, state: RunState) -> None:
    own_run_dir(out_dir)
    text = json.dumps(_STATE.dump_python(state, mode="json"), indent=2, sort_keys=True) + "\n"
    write_atomic(state_path(out_dir), text, 0o644)  # a new file renamed over the name: never through a link


def remove_state(out_dir: Path) -> None:
    """Forget what runs: the state and, with it, the record of the environment `up` ran with."""
    state_path(out_dir).unlink(missing_ok=True)
    (run_dir(out_dir) / UP_ENVIRON_FILE).unlink(missing_ok=True)


# Locks this process holds, by folder, with how many `run_lock`s deep: a `tenants move` holds the folder's lock
# for the whole move and restarts shards through the runner, which takes the same lock again (flock is per
# open file: a second open of the lock file in this process would refuse itself).
# Per thread: another thread of this process (a test) is refused like another process.
_HELD = threading.local()


@contextmanager
def run_lock(out_dir: Path) -> Iterator[None]:
    """One `up`, `down`, `restart` or `tenants move` at a time per output folder (reentrant in one process)."""
    key = out_dir.resolve()
    held: dict[Path, int] = _HELD.__dict__.setdefault("folders", {})
    if held.get(key):
        held[key] += 1
        try:
            yield
        finally:
            held[key] -= 1
        return
    path = own_run_dir(out_dir) / "lock"
    fd = open_regular(path, "keeps its folder lock", os.O_RDWR, create=0o600)
    assert fd is not None  # created when missing
    with os.fdopen(fd, "r+b") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(
                f"{out_dir}: another deploytool command (up, down, restart or tenants move) is working on this "
                "folder; wait for it, then run this one again (nothing was changed)"
            ) from None
        held[key] = 1
        try:
            yield
        finally:
            del held[key]
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def refuse_if_running(out_dir: Path, runner: str, down_hint: str) -> None:
    """UserError when this folder still runs what a previous `up` started; forget state left by dead ones.

    `runner` may start again over its own state (Compose converges); processes never do."""
    state = read_state(out_dir)
    if state is None:
        return
    if state.runner != runner and state.runner != "procfile":
        raise UserError(f"{out_dir}: was started with --runner {state.runner}; run `{down_hint}` first")
    if state.runner == runner and runner != "procfile":
        return
    live = [r for r in state.processes if owned(r.pid, r.pgid, r.start_time)]
    if live:
        names = ", ".join(f"{r.name} (pid {r.pid})" for r in live)
        raise UserError(f"{out_dir}: already running from a previous `deploytool up`: {names}; run `{down_hint}` first")
    remove_state(out_dir)  # left by processes that have all exited since
