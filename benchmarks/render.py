"""Whole-process time of `deploytool render` (which validates first: plan checks, Compose schema,
Compose v2 `config -q`, railway-sdk evaluation) for growing tenant counts in every topology.

    .venv/bin/python benchmarks/render.py [--tenants 10,100,1000,5000] [--repeat 3] [--dir DIR]

Each cell is the best of --repeat runs of a fresh `python -m deploytool render` process, so import
time is included, as a user would see it. The last column is the 5,000 / 1,000 ratio (5 = linear).
The projects are written under --dir (default: benchmarks/.scratch, on the same disk as a checkout,
since /tmp may be a slower file system). A second table splits one in-process render of --split
tenants into its stages, to show where the time goes.
"""

from __future__ import annotations

import argparse
import shutil
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


STAGES = """
import gc, sys, time
gc.freeze(); gc.set_threshold(200_000, 50, 100)  # as deploytool.cli.main does
started = time.perf_counter()
from pathlib import Path
from deploytool import pipeline
from deploytool.checks import check_plan
marks = [time.perf_counter()]
rendered = pipeline.render_environment(Path(sys.argv[1]), "bench"); marks.append(time.perf_counter())
check_plan(rendered.plan, 50); marks.append(time.perf_counter())
pipeline.findings_of(rendered, deep=False); marks.append(time.perf_counter())
pipeline.write(rendered); marks.append(time.perf_counter())
plan_checks = marks[2] - marks[1]
files_checks = marks[3] - marks[2] - plan_checks  # findings_of runs the plan checks again
steps = [marks[0] - started, marks[1] - marks[0], plan_checks, files_checks, marks[4] - marks[3]]
print(" ".join(f"{t:.3f}" for t in steps))
"""


def project(scratch: Path, topology: str, count: int) -> Path:
    folder = Path(tempfile.mkdtemp(dir=scratch))
    (folder / "environments").mkdir()
    (folder / "deploytool.yaml").write_text(SPEC.replace("TENANTS", str(count)))
    (folder / "environments" / "bench.yaml").write_text(TOPOLOGIES[topology])
    return folder


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenants", default="10,100,1000,5000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--split", type=int, default=1000, help="tenants for the per-stage table")
    parser.add_argument("--dir", type=Path, default=Path(__file__).resolve().parent / ".scratch")
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    counts = [int(n) for n in args.tenants.split(",")]
    print(f"{'topology':10} " + " ".join(f"{n:>9}" for n in counts) + "   5000/1000")
    for topology in TOPOLOGIES:
        row = []
        for count in counts:
            folder = project(args.dir, topology, count)
            try:
                times = []
                for _ in range(args.repeat):  # every run starts from an empty output folder and no lock
                    for leftover in (folder / "deploy", folder / ".railway"):
                        shutil.rmtree(leftover, ignore_errors=True)
                    (folder / "environments" / "bench.lock.json").unlink(missing_ok=True)
                    times.append(run_once(folder, "bench"))
                row.append(min(times))
            finally:
                shutil.rmtree(folder)
        ratio = ""
        if 1000 in counts and 5000 in counts:
            ratio = f"{row[counts.index(5000)] / row[counts.index(1000)]:.2f}"
        print(f"{topology:10} " + " ".join(f"{t:8.2f}s" for t in row) + f"   {ratio:>9}")

    print(f"\nstages of one in-process render of {args.split} tenants (seconds)")
    print(f"{'topology':10} {'imports':>8} {'render':>8} {'plan chk':>9} {'files chk':>9} {'write':>8}")
    for topology in TOPOLOGIES:
        folder = project(args.dir, topology, args.split)
        try:
            result = subprocess.run(
                [sys.executable, "-c", STAGES, str(folder / "deploytool.yaml")],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
        finally:
            shutil.rmtree(folder)
        steps = [float(x) for x in result.stdout.split()]
        print(f"{topology:10} " + " ".join(f"{t:8.3f}" for t in steps))


if __name__ == "__main__":
    main()
