"""The probe against a real shared node_service with sandbox tenants, against a sequential `curl` loop over the
same URLs (one `curl` process per URL, one after another), in the same run.

    .venv/bin/python benchmarks/live_probe.py [--tenants 200] [--repeat 7] [--concurrency 16]

Starts `node node_service/src/server.js` (WA_MODE=multi, WA_DRIVER=sandbox, TENANTS=1..N, a scratch
AUTH_ROOT, QR codes that do not rotate during the run), asks every tenant's QR once to warm it up, then
times, interleaved:
- the anchor, a sequential curl loop: `for url in URL1 … URLN; do curl -s -H 'X-Api-Key: …' "$url"; done`,
  what a shell script checking each tenant does;
- deploytool: `run_probe` on the N QR targets in this process (warm: imports done), judging every answer
  as `deploytool probe` does (200 with the right tenant_id and a PNG data URL, or idle/409);
- for reference: deploytool in a fresh Python process (startup and imports included), and one `curl`
  process fetching all N URLs over one kept-alive connection (curl's own floor).
Medians of --repeat runs. Goal: the warm probe >= 5x faster than the curl loop (exit status 1 when missed).
Needs Node.js, node_service/node_modules and curl.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from _bench import ROOT, ratio, timed

KEY = "live-probe-benchmark-key-0123456789abcdef"  # production length: node refuses a weak key
COLD = """
import sys, time
started = time.perf_counter()
from deploytool.probe import ProbeTarget, run_probe
port, count, concurrency = (int(x) for x in sys.argv[1:4])
targets = [ProbeTarget(id=f"qr:{i}", kind="qr", service="whatsapp", path=f"/tenants/{i}/qr",
                       url=f"http://127.0.0.1:{port}/tenants/{i}/qr", tenant=str(i), auth="WHATSAPP_API_KEY")
           for i in range(1, count + 1)]
report = run_probe(targets, {"WHATSAPP_API_KEY": sys.argv[4]}, concurrency=concurrency)
assert report.ok and report.passed + report.idle == count, report
"""


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_node(port: int, count: int, auth_root: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "WA_MODE": "multi",
        "WA_DRIVER": "sandbox",
        "TENANTS": ",".join(str(i) for i in range(1, count + 1)),
        "AUTH_ROOT": str(auth_root),
        "WHATSAPP_API_KEY": KEY,
        "SANDBOX_QR_TTL_MS": "3600000",  # one QR per tenant for the whole run
        "LOG_LEVEL": "warn",
    }
    node = subprocess.Popen(
        ["node", "src/server.js"], cwd=ROOT / "node_service", env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as answer:
                if answer.status == 200:
                    return node
        except OSError:
            time.sleep(0.1)
    node.kill()
    raise SystemExit(f"node_service did not start: {node.stderr.read().decode() if node.stderr else ''}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenants", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--concurrency", type=int, default=16, help="as `deploytool probe --concurrency`")
    args = parser.parse_args()
    if shutil.which("curl") is None or shutil.which("node") is None:
        raise SystemExit("needs curl and node on PATH")

    from deploytool.probe import ProbeTarget, run_probe

    port = free_port()
    urls = [f"http://127.0.0.1:{port}/tenants/{i}/qr" for i in range(1, args.tenants + 1)]
    targets = [
        ProbeTarget(
            id=f"qr:{i}", kind="qr", service="whatsapp", path=f"/tenants/{i}/qr", url=url, tenant=str(i),
            auth="WHATSAPP_API_KEY",
        )
        for i, url in enumerate(urls, start=1)
    ]  # fmt: skip
    curl = ["curl", "-s", "--fail-early", "-H", f"X-Api-Key: {KEY}", *urls]
    # One curl per URL, one after another; `|| exit` so a failed fetch fails the run as `--fail-early` does.
    loop = ["sh", "-c", 'for url; do curl -s -H "X-Api-Key: $0" "$url" > /dev/null || exit 1; done', KEY, *urls]
    cold = [sys.executable, "-c", COLD, str(port), str(args.tenants), str(args.concurrency), KEY]
    keys = {"WHATSAPP_API_KEY": KEY}

    def probe() -> float:
        started = time.perf_counter()
        report = run_probe(targets, keys, concurrency=args.concurrency)
        elapsed = time.perf_counter() - started
        if not report.ok or report.passed + report.idle != args.tenants:
            raise SystemExit(f"probe failed: {[r.reason for r in report.results if r.status == 'fail'][:3]}")
        return elapsed

    with tempfile.TemporaryDirectory(prefix="deploytool-bench-") as auth_root:
        node = start_node(port, args.tenants, Path(auth_root))
        try:
            timed(curl)  # every tenant's session starts and draws its QR code once
            probe()
            times: dict[str, list[float]] = {"loop": [], "probe": [], "cold": [], "curl": []}
            for _ in range(args.repeat):
                times["loop"].append(timed(loop))
                times["probe"].append(probe())
                times["cold"].append(timed(cold, cwd=ROOT))
                times["curl"].append(timed(curl))
        finally:
            node.terminate()
            node.wait(timeout=10)
    median = {name: statistics.median(values) for name, values in times.items()}
    anchor = median["loop"]
    rows = [
        (f"sequential curl loop, {args.tenants} processes", anchor),
        (f"deploytool run_probe (warm, concurrency {args.concurrency})", median["probe"]),
        ("deploytool run_probe (fresh process)", median["cold"]),
        (f"one curl, {args.tenants} URLs, keep-alive", median["curl"]),
    ]
    print(f"{'method':52} {'median':>9} {'ratio':>7} {'speed-up':>9}")
    for name, value in rows:
        print(f"{name:52} {value * 1000:>7.1f}ms {ratio(value, anchor):>7} {anchor / value:>8.1f}x")
    speedup = anchor / median["probe"]
    verdict = "goal met" if speedup >= 5 else "goal MISSED"
    print(f"{verdict}: the warm probe is {speedup:.1f}x faster than the curl loop (goal >= 5x)")
    return 0 if speedup >= 5 else 1


if __name__ == "__main__":
    sys.exit(main())
