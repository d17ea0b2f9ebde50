"""Benchmark: deploytool's probe runner vs a plain sequential loop over the same QR URLs.

A loopback threaded HTTP server (in a child process) plays one shared WhatsApp server (node_service contract: GET
/tenants/{id}/qr with X-Api-Key -> 200 {tenant_id, qr_data_url: PNG data URL}) for N tenants, each QR
answer delayed by --delay-ms. Both methods probe every tenant's QR once in the same run.

    .venv/bin/python benchmarks/probe.py [--tenants 200] [--delay-ms 100] [--concurrency 32]

Goal: >= 20x faster than sequential and within 2x of the ideal ceil(N / concurrency) x delay.
Exit status 1 when a goal is missed or a probe did not pass.
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import multiprocessing as mp
import re
import struct
import sys
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import requests
from rich.console import Console
from rich.table import Table

from deploytool.probe import ProbeTarget, run_probe

KEY = "bench-key-not-a-secret"


def png_data_url() -> str:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00\x80")) + chunk(b"IEND", b"")
    return "data:image/png;base64," + base64.b64encode(png).decode()


class SharedWhatsApp(ThreadingHTTPServer):
    """One thread per connection; a deep accept queue so >= 32 clients connect at once."""

    daemon_threads = True
    request_queue_size = 256

    def __init__(self, tenants: int, delay: float, in_flight: Any, max_in_flight: Any) -> None:
        self.tenants = {str(i) for i in range(1, tenants + 1)}
        self.delay = delay
        self.data_url = png_data_url()
        self.in_flight = in_flight  # multiprocessing.Value("i"), shared with the benchmark process
        self.max_in_flight = max_in_flight
        super().__init__(("127.0.0.1", 0), Handler)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, fair to both methods
    disable_nagle_algorithm = True  # headers and body in separate writes must not wait for a delayed ACK
    wbufsize = 1 << 16  # ... and are sent as one segment (flushed after each request)
    server: SharedWhatsApp

    def do_GET(self) -> None:
        srv = self.server
        m = re.fullmatch(r"/tenants/([^/]+)/qr", self.path)
        if self.path == "/health":
            self.reply(200, {"status": "ok", "mode": "multi", "tenants": {"total": len(srv.tenants), "connected": 0}})
        elif self.headers.get("X-Api-Key") != KEY:
            self.reply(401, {"error": "unauthorized", "message": "missing or wrong X-Api-Key"})
        elif not m or m.group(1) not in srv.tenants:
            self.reply(404, {"error": "unknown_tenant", "message": self.path})
        else:
            with srv.in_flight.get_lock():
                srv.in_flight.value += 1
                srv.max_in_flight.value = max(srv.max_in_flight.value, srv.in_flight.value)
            time.sleep(srv.delay)
            with srv.in_flight.get_lock():
                srv.in_flight.value -= 1
            tenant = m.group(1)
            self.reply(200, {"tenant_id": tenant, "state": "qr", "qr": f"2@{tenant}", "qr_data_url": srv.data_url})

    def reply(self, status: int, body: dict[str, Any]) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args: Any) -> None:
        pass


def serve(tenants: int, delay: float, in_flight: Any, max_in_flight: Any, ports: Any) -> None:
    """Child process: the server must not share a GIL with the client it measures."""
    server = SharedWhatsApp(tenants, delay, in_flight, max_in_flight)
    ports.put(server.server_address[1])
    server.serve_forever(poll_interval=0.05)


def targets_for(url: str, tenants: int) -> list[ProbeTarget]:
    """Each tenant's QR on the shared server, as `build_targets` makes them from a rendered manifest."""
    return [
        ProbeTarget(
            id=f"qr:{t}@whatsapp",
            kind="qr",
            service="whatsapp",
            path=f"/tenants/{t}/qr",
            url=f"{url}/tenants/{t}/qr",
            tenant=str(t),
            auth="WHATSAPP_API_KEY",
        )
        for t in range(1, tenants + 1)
    ]


def sequential(urls: list[str]) -> tuple[float, int]:
    """One request after another on one kept-alive requests.Session (the probe's HTTP stack); returns
    (seconds, number of 200 answers)."""
    ok = 0
    started = time.perf_counter()
    with requests.Session() as client:
        for url in urls:
            resp = client.get(url, headers={"X-Api-Key": KEY, "Accept": "application/json"}, timeout=30)
            ok += resp.status_code == 200 and resp.json().get("qr_data_url", "").startswith("data:image/png;base64,")
    return time.perf_counter() - started, ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--tenants", type=int, default=200)
    parser.add_argument("--delay-ms", type=float, default=100.0)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args(argv)
    n, delay, conc = args.tenants, args.delay_ms / 1000.0, args.concurrency

    in_flight, max_in_flight, ports = mp.Value("i", 0), mp.Value("i", 0), mp.Queue()
    child = mp.Process(target=serve, args=(n, delay, in_flight, max_in_flight, ports), daemon=True)
    child.start()
    try:
        url = f"http://127.0.0.1:{ports.get(timeout=10)}"
        targets = targets_for(url, n)
        urls = [t.url for t in targets if t.url]

        started = time.perf_counter()
        report = run_probe(targets, {"WHATSAPP_API_KEY": KEY}, timeout=30, interval=1, concurrency=conc)
        probe_time = time.perf_counter() - started
        probe_max_in_flight = max_in_flight.value

        seq_time, seq_ok = sequential(urls)
    finally:
        child.terminate()
        child.join(5)

    def ideal(c: int) -> float:
        return math.ceil(n / c) * delay

    table = Table(title=f"probe benchmark: {n} QR targets, {args.delay_ms:g} ms per answer")
    for col in ("method", "N", "concurrency", "delay", "wall time", "speed-up vs sequential", "ratio to ideal"):
        table.add_column(col, justify="left" if col == "method" else "right")
    table.add_row(
        "sequential requests.Session loop",
        str(n),
        "1",
        f"{args.delay_ms:g} ms",
        f"{seq_time:.3f} s",
        "1.0x",
        f"{seq_time / ideal(1):.2f}",
    )
    table.add_row(
        "deploytool run_probe",
        str(n),
        str(conc),
        f"{args.delay_ms:g} ms",
        f"{probe_time:.3f} s",
        f"{seq_time / probe_time:.1f}x",
        f"{probe_time / ideal(conc):.2f}",
    )
    console = Console()
    console.width = max(console.width, 120)
    console.print(table)

    speedup, ratio = seq_time / probe_time, probe_time / ideal(conc)
    problems = []
    if report.passed != n or seq_ok != n:
        problems.append(f"not every probe passed (runner {report.passed}/{n}, sequential {seq_ok}/{n})")
    if probe_max_in_flight > conc:
        problems.append(f"server saw {probe_max_in_flight} requests in flight, above the bound {conc}")
    if speedup < 20:
        problems.append(f"speed-up {speedup:.1f}x < 20x")
    if ratio > 2:
        problems.append(f"{ratio:.2f}x the ideal {ideal(conc):.3f} s (goal: within 2x)")
    console.print(f"server max in flight during run_probe: {probe_max_in_flight} (bound {conc})")
    console.print("goals met" if not problems else "goals MISSED: " + "; ".join(problems))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
