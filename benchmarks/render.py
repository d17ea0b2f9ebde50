"""Whole-process time of `deploytool render` (which validates first: plan checks, Compose schema,
Compose v2 `config -q`, railway-sdk evaluation) for growing tenant counts in every topology.

    .venv/bin/python benchmarks/render.py [--tenants 10,100,1000,5000] [--repeat 3]

Each cell is the best of --repeat runs of a fresh `python -m deploytool render` process, so import
time is included, as a user would see it. The last column is the 5,000 / 1,000 ratio (5 = linear).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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
"""

TOPOLOGIES = {
    "per-port": "topology: {kind: per-port}\n",
    "shared": "topology: {kind: shared}\nservices: {whatsapp: {max_tenants: 100000}}\n",
    "sharded": "topology: {kind: sharded, max_tenants_per_shard: 50}\n",
}


def run_once(folder: Path, env: str) -> float:
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "deploytool", "--spec", str(folder / "deploytool.yaml"), "render", env],
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"render {env} failed:\n{result.stdout}\n{result.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenants", default="10,100,1000,5000")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    counts = [int(n) for n in args.tenants.split(",")]
    print(f"{'topology':10} " + " ".join(f"{n:>9}" for n in counts) + "   5000/1000")
    for topology, overlay in TOPOLOGIES.items():
        row = []
        for count in counts:
            with tempfile.TemporaryDirectory() as scratch:
                folder = Path(scratch)
                (folder / "environments").mkdir()
                (folder / "deploytool.yaml").write_text(SPEC.replace("TENANTS", str(count)))
                (folder / "environments" / "bench.yaml").write_text(overlay)
                # Every run starts from an empty output folder: the sharded lock is re-created each time.
                times = []
                for _ in range(args.repeat):
                    for leftover in (folder / "deploy", folder / ".railway"):
                        subprocess.run(["rm", "-rf", str(leftover)], check=True)
                    (folder / "environments" / "bench.lock.json").unlink(missing_ok=True)
                    times.append(run_once(folder, "bench"))
                row.append(min(times))
        ratio = ""
        if 1000 in counts and 5000 in counts:
            ratio = f"{row[counts.index(5000)] / row[counts.index(1000)]:.2f}"
        print(f"{topology:10} " + " ".join(f"{t:8.2f}s" for t in row) + f"   {ratio:>9}")


if __name__ == "__main__":
    main()
