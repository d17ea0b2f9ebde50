"""Reading the manifest back (`up`, `ps`, `probe` set-up, the stale-file check) against parsing its JSON alone.

    .venv/bin/python benchmarks/manifest.py [--tenants 1000] [--repeat 20]

A per-port project of --tenants tenants is rendered once; then `read_manifest` (pydantic's
`model_validate_json` over every service, route, probe target and file hash) and the floor, `json.loads` of
the same text, are timed in this process, interleaved. The typed records this replaced took 181 ms for the
1 MB manifest of 1,000 tenants (measured on the machine of issue 18; goal: at least 5x faster).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import time

from _bench import clean, deploytool_command, project, ratio, timed

from deploytool.output.manifest import read_manifest
from deploytool.render.manifest import MANIFEST


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    folder = project("per-port", args.tenants)
    try:
        clean(folder)
        timed([*deploytool_command(), "--spec", str(folder / "deploytool.yaml"), "render", "bench"])
        out = folder / "deploy" / "bench"
        text = (out / MANIFEST).read_text()
        ours, floor = [], []
        for _ in range(args.repeat):
            started = time.perf_counter()
            read_manifest(out)
            ours.append(time.perf_counter() - started)
            started = time.perf_counter()
            json.loads((out / MANIFEST).read_text())
            floor.append(time.perf_counter() - started)
    finally:
        shutil.rmtree(folder)
    mine, anchor = statistics.median(ours), statistics.median(floor)
    print(f"manifest of {args.tenants} tenants: {len(text) / 1e6:.2f} MB")
    print(f"{'read_manifest':16} {mine * 1000:>8.1f} ms  {ratio(mine, anchor):>7} of json.loads")
    print(f"{'json.loads':16} {anchor * 1000:>8.1f} ms")
    print(f"vs the typed records' 181 ms: {0.181 / mine:.1f}x faster")


if __name__ == "__main__":
    main()
