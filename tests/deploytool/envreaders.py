"""The real readers of env files, each asked what one file means: Compose v2 (`env_file:` and `--env-file`),
python-dotenv, Node's `--env-file` (every node found: the machine's and .venv's), systemd's `EnvironmentFile=`.

systemd's reader is systemd itself: a user manager (`systemd --user`) started for the test, asked through
`systemd-run --user --wait --pipe -p EnvironmentFile=FILE env -0`. A manager refuses to start unless the
machine was booted with systemd (it looks for /run/systemd/system), which a container is not; so it runs in a
private mount namespace (`unshare --mount`, root only) where an empty folder is mounted over /run/systemd:
nothing outside that namespace sees the mount, and the manager, its runtime folder and its units go away
with it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from deploytool.targets.compose import compose_binary
from tests.conftest import REPO

Reader = Callable[[Path, list[str]], dict[str, str]]

# Runs inside `unshare --mount`: starts a user manager, reads each file with systemd-run, prints JSON.
SYSTEMD_HELPER = r"""
import json, os, subprocess, sys, tempfile, time
work = tempfile.mkdtemp(prefix="deploytool-systemd-")
fake = os.path.join(work, "run-systemd"); os.makedirs(os.path.join(fake, "system"))
runtime = os.path.join(work, "runtime"); os.makedirs(runtime, mode=0o700)
subprocess.run(["mount", "--bind", fake, "/run/systemd"], check=True)
env = {"PATH": "/usr/bin:/bin", "XDG_RUNTIME_DIR": runtime, "HOME": work}
manager = subprocess.Popen(["/usr/lib/systemd/systemd", "--user"], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    # ready once it answers on its private socket (the socket file appears a little before it listens)
    for _ in range(400):
        if manager.poll() is not None:
            raise SystemExit("systemd --user exited with code %d" % manager.returncode)
        ready = subprocess.run(["systemctl", "--user", "show-environment"], env=env, capture_output=True)
        if ready.returncode == 0:
            break
        time.sleep(0.05)
    results = {}
    for path in sys.argv[1:]:
        out = subprocess.run(["systemd-run", "--user", "--wait", "--pipe", "--quiet",
                              "-p", "EnvironmentFile=" + path, "/usr/bin/env", "-0"],
                             env=env, capture_output=True, timeout=60)
        if out.returncode != 0:
            results[path] = {"error": out.stderr.decode(errors="replace")}
            continue
        pairs = (item.split("=", 1) for item in out.stdout.decode().split("\0") if "=" in item)
        results[path] = dict(pairs)
    print(json.dumps(results))
finally:
    manager.terminate()
    manager.wait(timeout=30)
"""


def systemd_available() -> str | None:
    """Why systemd's reader cannot run here, or None when it can."""
    if not sys.platform.startswith("linux"):
        return "systemd is Linux only"
    if os.geteuid() != 0:
        return "the systemd reader needs root (a private mount namespace for its user manager)"
    for tool in ("unshare", "systemd-run", "mount"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install systemd util-linux)"
    if not Path("/usr/lib/systemd/systemd").is_file():
        return "/usr/lib/systemd/systemd is not installed (apt-get install systemd)"
    return None


def read_systemd(paths: list[Path]) -> dict[Path, dict[str, str]]:
    script = Path(tempfile.mkdtemp(prefix="deploytool-systemd-helper-")) / "helper.py"
    try:
        script.write_text(SYSTEMD_HELPER)
        out = subprocess.run(
            ["unshare", "--mount", "--propagation", "private", sys.executable, str(script), *map(str, paths)],
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
    finally:
        shutil.rmtree(script.parent, ignore_errors=True)
    results = json.loads(out.stdout)
    read = {}
    for path in paths:
        result = results[str(path)]
        assert "error" not in result, result
        read[path] = result
    return read


def read_dotenv(path: Path, names: list[str]) -> dict[str, str]:
    from dotenv import dotenv_values

    return {k: v for k, v in dotenv_values(path).items() if v is not None}  # load_dotenv's defaults


def node_binaries() -> list[str]:
    """Every node here that has `--env-file` (20.6+): the machine's and the Node 22 in .venv/bin."""
    found = []
    for node in (shutil.which("node"), str(REPO / ".venv" / "bin" / "node")):
        if node and Path(node).is_file() and os.path.realpath(node) not in map(os.path.realpath, found):
            found.append(node)
    return found


def node_reader(node: str) -> Reader:
    def read(path: Path, names: list[str]) -> dict[str, str]:
        code = "process.stdout.write(JSON.stringify(process.env))"
        out = subprocess.run([node, f"--env-file={path}", "-e", code], env={}, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        return dict(json.loads(out.stdout))

    return read


def _compose(args: list[str], folder: Path) -> dict[str, str]:
    binary = compose_binary()
    assert binary is not None
    out = subprocess.run(
        [str(binary), *args, "--project-directory", str(folder), "config", "--format", "json"],
        env={"PATH": os.environ.get("PATH", "")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    environment = json.loads(out.stdout)["services"]["s"].get("environment") or {}
    # `config` prints a Compose file again, where a literal `$` is written `$$`
    return {k: v.replace("$$", "$") for k, v in environment.items() if v is not None}


def read_compose_env_file(path: Path, names: list[str]) -> dict[str, str]:
    folder = Path(tempfile.mkdtemp(prefix="deploytool-reader-"))
    try:
        (folder / "c.yml").write_text(json.dumps({"services": {"s": {"image": "x", "env_file": [str(path)]}}}))
        return _compose(["-f", str(folder / "c.yml")], folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def read_compose_interpolation(path: Path, names: list[str]) -> dict[str, str]:
    """`docker compose --env-file FILE`: each name interpolated into the compose file from FILE."""
    folder = Path(tempfile.mkdtemp(prefix="deploytool-reader-"))
    try:
        environment = {name: f"${{{name}}}" for name in names}
        (folder / "c.yml").write_text(json.dumps({"services": {"s": {"image": "x", "environment": environment}}}))
        return _compose(["--env-file", str(path), "-f", str(folder / "c.yml")], folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def readers() -> dict[str, Reader]:
    """Every reader that runs file by file (systemd reads a batch: `read_systemd`)."""
    found: dict[str, Reader] = {}
    with contextlib.suppress(ImportError):
        import dotenv  # noqa: F401

        found["python-dotenv"] = read_dotenv
    if compose_binary() is not None:
        found["compose env_file"] = read_compose_env_file
        found["compose --env-file"] = read_compose_interpolation
    for node in node_binaries():
        version = subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()
        found[f"node {version} --env-file"] = node_reader(node)
    return found
