"""`deploytool tenants move` of one linked tenant on a running environment, against one `deploytool restart` of a
shard (the anchor), in the same run.

    .venv/bin/python benchmarks/tenant_move.py [--repeat 5] [--store postgres|files]

A scratch project (this checkout's node_service and flask_service, sandbox driver, sharded: 4 tenants on 2
shards of at most 3) runs with the Procfile runner. Tenant 1 is linked once (sandbox scan); then, interleaved:
- the anchor: `deploytool restart ENV whatsapp-shard-1`, which returns once its /health answers;
- `deploytool tenants move ENV 1 --shard N`, back and forth between the shards; it returns once the tenant is
  `connected` on its new shard (same `me`, checked) and web has restarted with the new routes. The time until
  `connected` alone is read from the command's own output lines as they arrive.
`--store postgres` needs BENCH_DATABASE_URL or TEST_DATABASE_URL (a fresh database is created and dropped).
A move restarts three services (two shards and web), so ~3x the anchor is its floor.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

from _bench import ROOT, deploytool_command

SPEC = """\
project: bench
stage: development
services:
  web:
    kind: flask
    source: flask_service
    port: {web}
    local_start: python -m flask_service migrate && exec python -m flask_service serve
  whatsapp:
    kind: whatsapp
    source: node_service
    port: {wa}
    local_start: exec node node_service/src/server.js
    driver: sandbox
    volume: false
database: {{engine: {engine}}}
tenants: ["1", "2", "3", "4"]
topology: {{kind: sharded, max_tenants_per_shard: 3}}
targets: [local]
"""


def free_base(size: int = 8) -> int:
    for _ in range(200):
        base = random.randint(20000, 45000)
        try:
            for port in range(base, base + size):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
    raise RuntimeError("no free ports")


def call(url: str, key: str, method: str = "GET") -> dict:  # type: ignore[type-arg]
    request = urllib.request.Request(url, method=method, headers={"X-Api-Key": key})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"{}")  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--store", choices=["postgres", "files"], default="postgres")
    args = parser.parse_args()
    admin_url = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL")
    if args.store == "postgres" and not admin_url:
        raise SystemExit("--store postgres needs BENCH_DATABASE_URL or TEST_DATABASE_URL")
    env = dict(os.environ)
    database = None
    with tempfile.TemporaryDirectory(prefix="bench-move-") as scratch:
        root = Path(scratch)
        (root / "environments").mkdir()
        for folder in ("node_service", "flask_service"):
            (root / folder).symlink_to(ROOT / folder)
        base = free_base()
        engine = "postgres" if args.store == "postgres" else "sqlite"
        (root / "deploytool.yaml").write_text(SPEC.format(web=base, wa=base + 1, engine=engine))
        (root / "environments" / "bench.yaml").write_text("{}\n")
        lock = {"version": 1, "env": "bench", "assignments": {"1": 1, "2": 1, "3": 2, "4": 2}}
        (root / "environments" / "bench.lock.json").write_text(json.dumps(lock))
        if admin_url and args.store == "postgres":
            import sqlalchemy as sa

            database = f"bench_{uuid.uuid4().hex[:12]}"
            admin = sa.create_engine(
                admin_url.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT"
            )
            with admin.connect() as conn:
                conn.execute(sa.text(f'CREATE DATABASE "{database}"'))
            env["DATABASE_URL"] = admin_url.rsplit("/", 1)[0] + f"/{database}"
        tool = [*deploytool_command(), "--spec", str(root / "deploytool.yaml")]

        def run(*words: str) -> tuple[float, float]:
            """(seconds until the command returned, seconds until its `connected on` line, or 0)."""
            started = time.perf_counter()
            connected = 0.0
            with subprocess.Popen([*tool, *words], env=env, stdout=subprocess.PIPE, text=True) as process:
                assert process.stdout is not None
                for line in process.stdout:
                    if "connected on" in line:
                        connected = time.perf_counter() - started
            assert process.returncode == 0, words
            return time.perf_counter() - started, connected

        try:
            subprocess.run([*tool, "up", "bench"], env=env, check=True, capture_output=True)
            out = root / "deploy" / "bench"
            key = next(
                line.split("=", 1)[1]
                for line in (out / ".secrets.env").read_text().splitlines()
                if line.startswith("WHATSAPP_API_KEY=")
            )
            shard = {1: f"http://127.0.0.1:{base + 1}", 2: f"http://127.0.0.1:{base + 2}"}
            call(f"{shard[1]}/tenants/1/qr", key)
            me = call(f"{shard[1]}/tenants/1/sandbox/scan", key, "POST")["me"]
            anchor, moves, until_connected = [], [], []
            where = 1
            for _ in range(args.repeat):
                anchor.append(run("restart", "bench", "whatsapp-shard-1")[0])
                where = 2 if where == 1 else 1
                total, connected = run("tenants", "move", "bench", "1", "--shard", str(where))
                status = call(f"{shard[where]}/tenants/1/status", key)
                assert status["state"] == "connected" and status["me"] == me, status
                moves.append(total)
                until_connected.append(connected)
        finally:
            subprocess.run([*tool, "down", "bench"], env=env, capture_output=True)
            if database is not None:
                with admin.connect() as conn:
                    conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
    a, m, c = statistics.median(anchor), statistics.median(moves), statistics.median(until_connected)
    print(f"store {args.store}, {args.repeat} rounds (medians, interleaved)")
    print(f"{'restart of one shard (anchor)':44} {a:7.2f} s  1.00x   runs {', '.join(f'{x:.2f}' for x in anchor)}")
    print(f"{'tenants move: until connected on new shard':44} {c:7.2f} s  {c / a:.2f}x")
    runs = ", ".join(f"{x:.2f}" for x in moves)
    print(f"{'tenants move: whole command (+ web restart)':44} {m:7.2f} s  {m / a:.2f}x   runs {runs}")


if __name__ == "__main__":
    main()
