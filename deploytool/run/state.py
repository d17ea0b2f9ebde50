"""`<out>/.run/state.json`: what `up` started, so `down` stops exactly that. No environment, no secrets."""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, TypeAdapter, ValidationError
from pydantic.dataclasses import dataclass

from deploytool.errors import UserError, first_problem
from deploytool.output.fs import create_temp
from deploytool.run.procs import owned

RUN_DIR = ".run"
STATE_FILE = "state.json"
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


@dataclass(frozen=True, config=_CONFIG)
class RunState:
    runner: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]*$")]  # procfile | compose
    environment: str
    processes: tuple[ProcessRecord, ...] = ()
    version: Literal[1] = STATE_VERSION


_STATE = TypeAdapter(RunState)


def run_dir(out_dir: Path) -> Path:
    return out_dir / RUN_DIR


def state_path(out_dir: Path) -> Path:
    return run_dir(out_dir) / STATE_FILE


def read_state(out_dir: Path) -> RunState | None:
    path = state_path(out_dir)
    if not path.is_file():
        return None
    try:
        return _STATE.validate_json(path.read_bytes())
    except (OSError, ValidationError) as exc:
        problem = first_problem(exc) if isinstance(exc, ValidationError) else exc
        raise UserError(
            f"{path}: unreadable run state ({problem}); check for leftover processes (`ps -ef`) and delete the file"
        ) from None


def write_state(out_dir: Path, state: RunState) -> None:
    path = state_path(out_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = create_temp(path, 0o644)  # exclusively: never through a link planted at a temporary name
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(json.dumps(_STATE.dump_python(state, mode="json"), indent=2, sort_keys=True) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def remove_state(out_dir: Path) -> None:
    state_path(out_dir).unlink(missing_ok=True)


@contextmanager
def run_lock(out_dir: Path) -> Iterator[None]:
    """One `up`/`down` at a time per output folder."""
    path = run_dir(out_dir) / "lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(
                f"{out_dir}: another `deploytool up` or `down` is working on this folder; wait for it"
            ) from None
        try:
            yield
        finally:
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
