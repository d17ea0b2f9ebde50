"""`deploytool validate` against the Compose v2 binary alone on the same file, in the same run.

    .venv/bin/python benchmarks/validate.py [--tenants 1000] [--topology per-port] [--repeat 3]

`validate` runs every check (plan checks, the Compose shape, Compose v2 `config -q` itself, railway-sdk
evaluation of the Railway file and the builder rules) without writing anything. The anchor is
`docker-compose config -q` alone on the docker-compose.yml that `render` wrote for the same spec: the
part of `validate` that no work of ours can remove. Medians of --repeat runs, interleaved.
"""

from __future__ import annotations

import argparse
import shutil
import statistics

from _bench import TOPOLOGIES, clean, compose_config, deploytool_command, project, ratio, timed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenants", default="1000")
    parser.add_argument("--topology", default="per-port", choices=list(TOPOLOGIES))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"{'case':24} {'validate':>9} {'compose':>9} {'ratio':>7}")
    for count in (int(n) for n in args.tenants.split(",")):
        folder = project(args.topology, count)
        try:
            spec = str(folder / "deploytool.yaml")
            clean(folder)
            timed([*deploytool_command(), "--spec", spec, "render", "bench"])  # the file Compose reads
            ours, theirs = [], []
            for _ in range(args.repeat):
                ours.append(timed([*deploytool_command(), "--spec", spec, "validate", "bench"]))
                theirs.append(compose_config(folder)())
        finally:
            shutil.rmtree(folder)
        mine, anchor = statistics.median(ours), statistics.median(theirs)
        print(f"{f'{args.topology} {count}':24} {mine:>8.3f}s {anchor:>8.3f}s {ratio(mine, anchor):>7}")


if __name__ == "__main__":
    main()
