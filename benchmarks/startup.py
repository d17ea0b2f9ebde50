"""Startup: `deploytool --help`, a command's help and `deploytool validate dev` against bare Python startup.

    .venv/bin/python benchmarks/startup.py [--repeat 20]

The anchor is `python -c pass` with the same interpreter (the floor of any Python CLI). `--help` pays for
typer alone (with its copy of click and its completion options); a command's `--help` also pays for the
pydantic that typer 0.29 converts every option value with (here the global `--spec`), and for nothing the
command itself imports. `validate dev` is the repository's own dev environment (per-port, 3 tenants,
local + compose): it loads the spec, plans, renders, and runs every check, Compose v2 `config -q`
included. Medians of --repeat runs, interleaved.
"""

from __future__ import annotations

import argparse
import statistics
import sys

from _bench import ROOT, deploytool_command, ratio, timed

CASES = {
    "deploytool --help": ["--help"],
    "deploytool probe --help": ["probe", "--help"],
    "deploytool validate dev": ["validate", "dev"],
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    bare = [sys.executable, "-c", "pass"]
    times: dict[str, list[float]] = {"python -c pass": [], **{case: [] for case in CASES}}
    for _ in range(args.repeat):
        times["python -c pass"].append(timed(bare, cwd=ROOT))
        for case, argv in CASES.items():
            times[case].append(timed([*deploytool_command(), *argv], cwd=ROOT))
    anchor = statistics.median(times["python -c pass"])
    print(f"{'command':26} {'median':>9} {'ratio':>7}")
    for case, values in times.items():
        value = statistics.median(values)
        print(f"{case:26} {value * 1000:>7.1f}ms {ratio(value, anchor):>7}")


if __name__ == "__main__":
    main()
