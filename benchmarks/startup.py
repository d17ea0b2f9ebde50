"""Startup: `deploytool --help`, a command's help and `deploytool validate dev` against bare Python startup.

    .venv/bin/python benchmarks/startup.py [--repeat 20]

The anchor is `python -c pass` with the same interpreter (the floor of any Python CLI). `--help` pays for
typer alone (with its copy of click and its completion options); a command's `--help` also pays for the
pydantic that typer 0.29 converts every option value with (here the global `--spec`), and for nothing the
command itself imports. `validate dev` is the repository's own dev environment (per-port, 3 tenants,
local + compose): it loads the spec, plans, renders, and runs every check, Compose v2 `config -q`
included. Its own floor (goal: <= 1.5x) is the stack it stands on: the least command on typer, pydantic,
PyYAML and Jinja2 (benchmarks/stack_floor.py, reading the same spec), plus Compose v2 `config -q` on dev's
rendered compose file. The earlier rounds' floor, `python -c "import pydantic, typer, jinja2, yaml"` plus
Compose, is printed too: it loads none of pydantic's model machinery. Medians of --repeat runs, interleaved.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys

from _bench import ROOT, compose_binary, deploytool_command, ratio, stack_floor, stack_imports, timed

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
    dev = ROOT / "deploy" / "dev"
    # Compose as validate runs it: every secret the file names as a placeholder, nothing else of ours
    secrets = json.loads((dev / "deploytool-manifest.json").read_text())["secrets"]
    compose_env = {"PATH": os.environ.get("PATH", ""), **{name: "placeholder" for name in secrets}}
    compose = [str(compose_binary()), "-f", str(dev / "docker-compose.yml"), "config", "-q"]
    floors = ("floor", "imports floor")
    times: dict[str, list[float]] = {"python -c pass": [], **{case: [] for case in CASES}, **{f: [] for f in floors}}
    for _ in range(args.repeat):
        times["python -c pass"].append(timed(bare, cwd=ROOT))
        for case, argv in CASES.items():
            times[case].append(timed([*deploytool_command(), *argv], cwd=ROOT))
        compose_time = timed(compose, cwd=ROOT, env=compose_env)
        times["floor"].append(stack_floor(ROOT / "deploytool.yaml") + compose_time)
        times["imports floor"].append(stack_imports() + compose_time)
    anchor = statistics.median(times["python -c pass"])
    print(f"{'command':26} {'median':>9} {'ratio':>7}")
    for case, values in times.items():
        if case not in floors:
            value = statistics.median(values)
            print(f"{case:26} {value * 1000:>7.1f}ms {ratio(value, anchor):>7}")
    validate = statistics.median(times["deploytool validate dev"])
    for name, what in (("floor", "benchmarks/stack_floor.py"), ("imports floor", "the stack's imports")):
        floor = statistics.median(times[name])
        print(f"{'validate dev ' + name:26} {floor * 1000:>7.1f}ms  ({what} + Compose config -q on dev)")
        print(f"{'validate dev / ' + name:26} {'':>9} {ratio(validate, floor):>7}")


if __name__ == "__main__":
    main()
