"""Compose on a real engine: `up --runner compose` to healthy (cold and warm) against the Procfile runner on
the same spec, and memory per tenant of per-port against shared containers, in the same run.

    DOCKER_HOST=... .venv/bin/python benchmarks/compose.py [--tenants 10] [--repeat 3]

One scratch project (benchmarks/.scratch/) with this repository's node_service and flask_service, sandbox
tenants 1..N, SQLite (the compose target then runs no Postgres container: web keeps its SQLite file inside
its container, the Procfile runner in the output folder), two environments: `perport` (N `single` node
containers) and `shared` (one `multi` node container). Every round, interleaved:
- procfile: `deploytool up perport` (processes here) to healthy, then `down`: the anchor;
- compose cold: `deploytool up perport --runner compose` under a Compose project name no earlier round
  used, so none of its N+1 images exists yet and Compose builds every one of them. The engine's build cache
  is left alone (other projects and CI use it), so the Dockerfile steps are cache hits when their inputs
  are unchanged: "cold" is a new project on a machine that has built these Dockerfiles before, not a
  first build ever (that one is dominated by `npm ci`/`pip install` and the network);
- compose warm: `down`, then the same `up` again: images exist, `--build` finds nothing to rebuild.
Then memory: `docker stats --no-stream` (usage without page cache, as the CLI shows it) of the node
containers after each tenant's QR was asked once (every sandbox session started), per-port against shared.
Removes only what it created: its containers, networks, volumes (`down --volumes`) and its projects' images.
Builds use the host network (DEPLOYTOOL_COMPOSE_OVERRIDE, as the engine tests), containers have no NAT here.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import yaml
from _bench import ROOT, SCRATCH, deploytool_command, ratio, timed

SPEC = """\
project: {project}
services:
  web:
    kind: flask
    source: flask_service
    port: {web_port}
    start: gunicorn --bind "[::]:$PORT" flask_service.wsgi:app
    local_start: python -m flask_service migrate && exec python -m flask_service serve
    pre_deploy: python -m flask_service migrate
  whatsapp:
    kind: whatsapp
    source: node_service
    port: {wa_port}
    start: node src/server.js
    local_start: exec node node_service/src/server.js
    driver: sandbox
    volume: true
database: {{engine: sqlite}}
tenants: {{from: 1, to: {tenants}}}
targets: [local, compose]
"""
ENVIRONMENTS = {"perport": "topology: {kind: per-port}\n", "shared": "topology: {kind: shared}\n"}
PROJECT_LABEL = "com.docker.compose.project"


def free_block(size: int) -> int:
    for _ in range(200):
        base = random.randint(20000, 45000)
        sockets: list[socket.socket] = []
        try:
            for port in range(base, base + size):
                sock = socket.socket()
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise SystemExit("no free block of ports")


class Bench:
    def __init__(self, tenants: int) -> None:
        SCRATCH.mkdir(parents=True, exist_ok=True)
        self.folder = Path(tempfile.mkdtemp(dir=SCRATCH, prefix="compose-"))
        self.tenants = tenants
        self.base = free_block(tenants + 2)
        self.env = {**os.environ, "PATH": f"{Path(deploytool_command()[0]).parent}{os.pathsep}{os.environ['PATH']}"}
        self.env.pop("COMPOSE_PROJECT_NAME", None)
        (self.folder / "environments").mkdir()
        for name, text in ENVIRONMENTS.items():
            (self.folder / "environments" / f"{name}.yaml").write_text(text)
        for source in ("flask_service", "node_service"):
            (self.folder / source).symlink_to(ROOT / source)
        self.projects: set[str] = set()  # Compose projects this run created (their images are ours to remove)
        self.new_project()

    def new_project(self) -> None:
        """A spec under a project name never used before: no image of its Compose projects exists yet."""
        self.name = f"benchcompose{uuid.uuid4().hex[:8]}"
        spec = SPEC.format(project=self.name, web_port=self.base, wa_port=self.base + 1, tenants=self.tenants)
        (self.folder / "deploytool.yaml").write_text(spec)
        for env in ENVIRONMENTS:
            self.cli("render", env)
            out = self.folder / "deploy" / env
            compose = yaml.safe_load((out / "docker-compose.yml").read_text())
            self.projects.add(compose["name"])
            services = {
                name: {"build": {"network": "host"}} for name, svc in compose["services"].items() if "build" in svc
            }
            (out / "override.yml").write_text(yaml.safe_dump({"services": services}))

    def cli(self, *args: str, env_name: str | None = None) -> float:
        env = dict(self.env)
        if env_name is not None:
            env["DEPLOYTOOL_COMPOSE_OVERRIDE"] = str(self.folder / "deploy" / env_name / "override.yml")
        return timed([*deploytool_command(), "--spec", str(self.folder / "deploytool.yaml"), *args], env=env)

    def up(self, env: str, runner: str) -> float:
        return self.cli("up", env, "--runner", runner, "--timeout", "600", env_name=env)

    def down(self, env: str, volumes: bool = False) -> None:
        self.cli("down", env, *(["--volumes"] if volumes else []), env_name=env)

    def start_sessions(self, env: str) -> None:
        """Ask every tenant's QR once on its own node service: every sandbox session is started."""
        out = self.folder / "deploy" / env
        manifest = json.loads((out / "deploytool-manifest.json").read_text())
        urls = {s["name"]: s["local_url"] for s in manifest["services"]}
        key = next(
            line.split("=", 1)[1]
            for line in (out / ".secrets.env").read_text().splitlines()
            if line.startswith("WHATSAPP_API_KEY=")
        )
        for row in manifest["tenants"]:
            request = urllib.request.Request(f"{urls[row['service']]}/tenants/{row['tenant']}/qr")
            request.add_header("X-Api-Key", key)
            with urllib.request.urlopen(request, timeout=10) as answer:
                assert answer.status == 200, (row, answer.status)
        time.sleep(3)  # let the QR timers and first allocations settle

    def node_memory_mib(self, env: str) -> list[float]:
        # the project `up` used: <name>-<hash of the output folder>, written beside the run state
        project = (self.folder / "deploy" / env / ".run" / "compose-project").read_text().strip()
        ids = subprocess.run(
            ["docker", "ps", "-q", "--filter", f"label={PROJECT_LABEL}={project}"],
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        stats = subprocess.run(
            ["docker", "stats", "--no-stream", "--format", "{{.Name}}\t{{.MemUsage}}", *ids],
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        memory = []
        for line in stats.splitlines():
            name, usage = line.split("\t")
            if "-whatsapp" in name:
                memory.append(mib(usage.split("/")[0].strip()))
        return memory

    def remove(self) -> None:
        """Our projects' containers, networks and volumes (down --volumes), then their images; nothing else."""
        for env in ENVIRONMENTS:
            if (self.folder / "deploy" / env / "docker-compose.yml").is_file():
                subprocess.run(
                    [*deploytool_command(), "--spec", str(self.folder / "deploytool.yaml"), "down", env, "--volumes"],
                    env=self.env,
                    capture_output=True,
                    check=False,
                )
        self.remove_images()

    def remove_images(self) -> None:
        for project in self.projects:
            refs = subprocess.run(
                ["docker", "images", "--format", "{{.Repository}}:{{.Tag}}", f"{project}-*"],
                env=self.env,
                capture_output=True,
                text=True,
                check=False,
            ).stdout.split()
            if refs:  # the tags; layers shared with other images (the build cache) stay
                subprocess.run(["docker", "rmi", *refs], env=self.env, capture_output=True, check=False)


def mib(text: str) -> float:
    units = {"B": 1 / 2**20, "KiB": 1 / 1024, "MiB": 1.0, "GiB": 1024.0}
    for unit in sorted(units, key=len, reverse=True):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * units[unit]
    raise ValueError(text)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenants", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    bench = Bench(args.tenants)
    times: dict[str, list[float]] = {"procfile": [], "cold": [], "warm": []}
    memory: dict[str, list[float]] = {}
    try:
        for round_ in range(args.repeat):
            if round_:
                bench.remove()
                bench.new_project()
            times["procfile"].append(bench.up("perport", "procfile"))
            bench.down("perport")
            times["cold"].append(bench.up("perport", "compose"))
            bench.down("perport")
            times["warm"].append(bench.up("perport", "compose"))
            if round_ == args.repeat - 1:
                bench.start_sessions("perport")
                memory["perport"] = bench.node_memory_mib("perport")
            bench.down("perport", volumes=True)
            print(f"round {round_ + 1}: " + ", ".join(f"{k} {v[-1]:.1f} s" for k, v in times.items()), flush=True)
        bench.up("shared", "compose")
        bench.start_sessions("shared")
        memory["shared"] = bench.node_memory_mib("shared")
        bench.down("shared", volumes=True)
    finally:
        bench.remove()
        shutil.rmtree(bench.folder, ignore_errors=True)

    anchor = statistics.median(times["procfile"])
    n = args.tenants
    print()
    print(f"Time from `deploytool up perport` to every service healthy (per-port, {n} sandbox tenants, SQLite;")
    print(f"medians of {args.repeat} interleaved rounds):")
    print()
    print("| runner | median | runs | ratio |")
    print("|---|---:|---|---:|")
    labels = {
        "procfile": "Procfile (`up perport`)",
        "cold": "compose, cold (new project: builds its images)",
        "warm": "compose, warm (`up` again after `down`)",
    }
    for key, values in times.items():
        value, runs = statistics.median(values), ", ".join(f"{v:.1f}" for v in values)
        print(f"| {labels[key]} | {value:.1f} s | {runs} | {ratio(value, anchor)} |")
    print()
    per_port, shared = sum(memory["perport"]), sum(memory["shared"])
    print("Memory of the node containers (`docker stats --no-stream`), every tenant's QR asked once:")
    print()
    print("| topology | node containers | total | per tenant | ratio |")
    print("|---|---:|---:|---:|---:|")
    print(f"| shared | {len(memory['shared'])} | {shared:.1f} MiB | {shared / n:.1f} MiB | 1.00x |")
    print(
        f"| per-port | {len(memory['perport'])} | {per_port:.1f} MiB | {per_port / n:.1f} MiB "
        f"| {ratio(per_port, shared)} |"
    )


if __name__ == "__main__":
    main()
