"""deploytool.probe against real HTTP servers on 127.0.0.1 that follow the node/flask contract."""

from __future__ import annotations

import base64
import json
import re
import socket
import struct
import threading
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from deploytool.errors import UserError
from deploytool.probe import (
    PRIVATE_SKIP,
    ProbeReport,
    ProbeResult,
    build_targets,
    format_report,
    judge,
    live_progress,
    load_manifest,
    parse_url_options,
    probe_environment,
    run_probe,
)

WA_KEY = "wa-key-9f8e7d6c5b4a39281706"
OPS_KEY = "ops-key-0a1b2c3d4e5f60718293"
KEYS = {"WHATSAPP_API_KEY": WA_KEY, "OPS_API_KEY": OPS_KEY}
FAST: dict[str, Any] = {"timeout": 1.0, "interval": 0.1, "concurrency": 8}


@pytest.fixture(autouse=True)
def no_proxy_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The probe honours HTTP_PROXY as requests does, even for 127.0.0.1 (unless NO_PROXY names it): a shell's
    proxy must not send these loopback stand-ins elsewhere. tests/deploytool/test_probe_http.py tests proxies."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def png_bytes() -> bytes:
    """A real 1x1 grey PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    body = chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00\x80")) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body


PNG_URL = "data:image/png;base64," + base64.b64encode(png_bytes()).decode()

Answer = tuple[int, dict[str, str], bytes]


def answer(status: int, body: Any, headers: dict[str, str] | None = None) -> Answer:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return status, {"Content-Type": "application/json", **(headers or {})}, raw


class Server:
    """A threaded loopback HTTP server calling `app(path, query, headers) -> (status, headers, body)`."""

    def __init__(self, app: Callable[[str, dict[str, str], dict[str, str]], Answer]) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                status, headers, body = app(parts.path, query, {k.lower(): v for k, v in self.headers.items()})
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        ThreadingHTTPServer.request_queue_size = 128
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def closed_port_url() -> str:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}"


class NodeApp:
    """node_service's /health and /tenants/{id}/qr. `script[tenant]`: answers in order, the last one repeats.

    Steps: "qr", "connected" (409), "starting" (503), "starting-ra" (503 + Retry-After: 1), "wrong", "svg",
    "notpng", "error" (500, long body), "echo" (500 echoing the key), "slow" (qr after `delay` s), "hang" (2 s),
    "expired" (410 qr_expired naming the tenant, as node answers once nobody scanned), "expired-wrong" (410 naming
    tenant 2), "gone" (410 with another error), "connected-wrong" (409 naming tenant 2).
    """

    def __init__(self, tenants: list[str], script: dict[str, list[str]] | None = None, delay: float = 0.0) -> None:
        self.tenants = tenants
        self.script = {t: list((script or {}).get(t, ["qr"])) for t in tenants}
        self.delay = delay
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self.qr_calls = 0

    def __call__(self, path: str, query: dict[str, str], headers: dict[str, str]) -> Answer:
        if path == "/health":
            return answer(
                200,
                {
                    "status": "ok",
                    "mode": "multi",
                    "driver": "sandbox",
                    "tenants": {"total": len(self.tenants), "connected": 0},
                    "auth_root_writable": True,
                },
            )
        if headers.get("x-api-key") != WA_KEY:
            return answer(401, {"error": "unauthorized", "message": "missing or wrong X-Api-Key"})
        m = re.fullmatch(r"/tenants/([^/]+)/qr", path)
        tenant = m.group(1) if m else query.get("user_id") if path == "/qr" else None
        if tenant is None:
            return answer(404, {"error": "not_found", "message": path})
        if tenant not in self.tenants:
            return answer(404, {"error": "unknown_tenant", "message": f"tenant {tenant} is not served here"})
        with self.lock:
            self.qr_calls += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            steps = self.script[tenant]
            step = steps.pop(0) if len(steps) > 1 else steps[0]
        try:
            return self.step(step, tenant, headers)
        finally:
            with self.lock:
                self.in_flight -= 1

    def step(self, step: str, tenant: str, headers: dict[str, str]) -> Answer:
        qr = {
            "tenant_id": tenant,
            "state": "qr",
            "qr": f"2@{tenant}",
            "qr_data_url": PNG_URL,
            "expires_at": "2026-01-01T00:00:00Z",
        }
        if step == "slow":
            time.sleep(self.delay)
            return answer(200, qr)
        if step == "hang":
            time.sleep(2.0)
            return answer(200, qr)
        if step == "qr":
            return answer(200, qr)
        if step == "connected":
            return answer(409, {"error": "already_connected", "message": f"tenant {tenant} is already connected"})
        if step == "expired":
            return answer(
                410,
                {
                    "error": "qr_expired",
                    "message": f"the QR codes of tenant {tenant} expired without a scan",
                    "tenant_id": tenant,
                    "state": "qr_expired",
                },
            )
        if step == "expired-wrong":
            return answer(410, {"error": "qr_expired", "message": "expired", "tenant_id": "2", "state": "qr_expired"})
        if step == "gone":
            return answer(410, {"error": "gone", "message": "this route was removed"})
        if step == "connected-wrong":
            return answer(409, {"error": "already_connected", "message": "connected", "tenant_id": "2"})
        if step == "starting":
            return answer(503, {"error": "qr_not_ready", "message": f"no QR code for tenant {tenant} yet"})
        if step == "starting-ra":
            return answer(503, {"error": "qr_not_ready", "message": "retry shortly"}, {"Retry-After": "1"})
        if step == "wrong":
            return answer(200, {**qr, "tenant_id": "2"})
        if step == "svg":
            return answer(200, {**qr, "qr_data_url": "data:image/svg+xml;base64,PHN2Zy8+"})
        if step == "notpng":
            gif = base64.b64encode(b"GIF89a...").decode()
            return answer(200, {**qr, "qr_data_url": "data:image/png;base64," + gif})
        if step == "error":
            return answer(500, ("E" * 200 + "TAIL-NOT-SHOWN" + "x" * 100).encode())
        if step == "echo":
            return answer(500, f"internal error; you sent key {headers.get('x-api-key')}".encode())
        raise AssertionError(step)


class FlaskApp:
    """flask_service's /health and /api/qr?user_id=N: relays the tenant's node answer, 503 when unreachable."""

    def __init__(self, routes: dict[str, str]) -> None:
        self.routes = routes

    def __call__(self, path: str, query: dict[str, str], headers: dict[str, str]) -> Answer:
        if path == "/health":
            return answer(200, {"status": "ok", "db": "ok"})
        if path != "/api/qr":
            return answer(404, {"error": "not_found", "message": path})
        if headers.get("x-api-key") != OPS_KEY:
            return answer(401, {"error": "unauthorized", "message": "log in or give X-Api-Key"})
        tenant = query.get("user_id", "")
        if tenant not in self.routes:
            return answer(404, {"error": "unknown_tenant", "message": f"no WhatsApp server for tenant {tenant}"})
        url = f"{self.routes[tenant]}/tenants/{tenant}/qr"
        req = urllib.request.Request(url, headers={"X-Api-Key": WA_KEY, "Accept": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                return resp.status, {"Content-Type": "application/json"}, resp.read()
        except urllib.error.HTTPError as exc:
            extra = {"Retry-After": exc.headers["Retry-After"]} if exc.headers.get("Retry-After") else {}
            return answer(exc.code, exc.read(), extra)
        except (urllib.error.URLError, OSError):
            return answer(
                503,
                {
                    "error": "whatsapp_unreachable",
                    "tenant_id": tenant,
                    "url": url,
                    "message": f"The WhatsApp server of tenant {tenant} at {url} is unreachable",
                },
                {"Retry-After": "5"},
            )


def make_manifest(
    services: dict[str, str], layout: dict[str, list[str]], env: str = "dev", public: dict[str, str] | None = None
) -> dict[str, Any]:
    """A manifest shaped like deploytool/render/manifest.py writes it: `web` plus the WhatsApp services."""
    svc_list = [
        {
            "name": name,
            "role": "web" if name == "web" else "whatsapp",
            "port": int(url.rsplit(":", 1)[1]),
            "local_url": url,
            "public_url": (public or {}).get(name),
            "health_path": "/health",
            "tenants": layout.get(name, []),
            "secrets": [],
            "passthrough": [],
        }
        for name, url in services.items()
    ]
    targets: list[dict[str, Any]] = [
        {"id": f"health:{name}", "kind": "health", "service": name, "path": "/health"} for name in services
    ]
    for server, tenants in layout.items():
        for t in tenants:
            targets.append(
                {
                    "id": f"qr:{t}@{server}",
                    "kind": "qr",
                    "service": server,
                    "tenant": t,
                    "path": f"/tenants/{t}/qr",
                    "auth": "WHATSAPP_API_KEY",
                }
            )
            targets.append(
                {
                    "id": f"qr:{t}@web",
                    "kind": "qr",
                    "service": "web",
                    "tenant": t,
                    "via": server,
                    "path": f"/api/qr?user_id={t}",
                    "auth": "OPS_API_KEY",
                }
            )
    return {
        "version": 4,
        "project": "acme",
        "environment": env,
        "stage": "development",
        "topology": "per-port",
        "targets": ["local"],
        "root": "../..",
        "services": svc_list,
        "tenants": [{"tenant": t, "service": s} for s, ts in layout.items() for t in ts],
        "secrets": ["OPS_API_KEY", "WHATSAPP_API_KEY"],
        "probe_targets": targets,
        "artifacts": {},
    }


class Deployment:
    def __init__(self, manifest: dict[str, Any], nodes: dict[str, NodeApp], flask: Server) -> None:
        self.manifest, self.nodes, self.flask = manifest, nodes, flask


@pytest.fixture
def deploy() -> Iterator[Callable[..., Deployment]]:
    """deploy(layout, script=..., down={service}) starts one NodeApp per WhatsApp service and a FlaskApp."""
    servers: list[Server] = []

    def start(
        layout: dict[str, list[str]] | None = None,
        script: dict[str, list[str]] | None = None,
        down: frozenset[str] = frozenset(),
        delay: float = 0.0,
    ) -> Deployment:
        layout = layout or {"whatsapp-1": ["1"], "whatsapp-2": ["2"], "whatsapp-3": ["3"]}
        urls: dict[str, str] = {}
        nodes: dict[str, NodeApp] = {}
        for name, tenants in layout.items():
            if name in down:
                urls[name] = closed_port_url()
                continue
            nodes[name] = NodeApp(tenants, script, delay)
            servers.append(Server(nodes[name]))
            urls[name] = servers[-1].url
        flask = Server(FlaskApp({t: urls[s] for s, ts in layout.items() for t in ts}))
        servers.append(flask)
        return Deployment(make_manifest({"web": flask.url, **urls}, layout), nodes, flask)

    yield start
    for s in servers:
        s.close()


def by_id(report: ProbeReport) -> dict[str, ProbeResult]:
    return {r.id: r for r in report.results}


def all_outputs(report: ProbeReport) -> str:
    return "".join(format_report(report, fmt) for fmt in ("table", "json", "junit"))


# ---- behaviour ---------------------------------------------------------------------------------------------


def test_all_pass_is_ok(deploy: Callable[..., Deployment]) -> None:
    d = deploy()
    seen: list[str] = []
    report = run_probe(build_targets(d.manifest, {}), KEYS, on_result=lambda r: seen.append(r.id), **FAST)
    assert report.ok
    assert [r.id for r in report.results] == [t["id"] for t in d.manifest["probe_targets"]]
    assert sorted(seen) == sorted(r.id for r in report.results)  # on_result: once per target
    assert {r.status for r in report.results} == {"pass"}
    assert all(r.attempts == 1 and r.http_status == 200 for r in report.results)
    r = by_id(report)["qr:3@web"]
    assert (r.kind, r.service, r.tenant, r.via) == ("qr", "web", "3", "whatsapp-3")
    assert r.url == f"{d.flask.url}/api/qr?user_id=3"


def test_one_whatsapp_server_down_fails_only_its_tenant(deploy: Callable[..., Deployment]) -> None:
    d = deploy(down=frozenset({"whatsapp-2"}))
    started = time.monotonic()
    report = run_probe(build_targets(d.manifest, {}), KEYS, **FAST)
    assert time.monotonic() - started < 3
    results = by_id(report)
    failed = {r.id for r in report.results if r.status == "fail"}
    assert failed == {"health:whatsapp-2", "qr:2@whatsapp-2", "qr:2@web"}
    for tid in ("health:whatsapp-2", "qr:2@whatsapp-2"):
        assert results[tid].reason.startswith("connection refused"), results[tid].reason
        assert results[tid].attempts > 1 and results[tid].http_status is None
    # flask answers 503 naming the unreachable server: retried, then reported with the body
    assert results["qr:2@web"].reason.startswith("HTTP 503:") and "unreachable" in results["qr:2@web"].reason
    assert {r.status for r in report.results if r.id not in failed} == {"pass"}
    assert report.failed_tenants == ["2"] and not report.ok


def test_409_already_connected_passes(deploy: Callable[..., Deployment]) -> None:
    d = deploy(script={"1": ["connected"]})
    report = run_probe(build_targets(d.manifest, {}), KEYS, **FAST)
    for tid in ("qr:1@whatsapp-1", "qr:1@web"):
        r = by_id(report)[tid]
        assert (r.status, r.http_status, r.attempts) == ("pass", 409, 1)
    assert report.ok


def test_expired_qr_is_idle_and_passes_in_every_format(deploy: Callable[..., Deployment]) -> None:
    """An environment nobody scanned for a few minutes: node answers 410 qr_expired for every tenant."""
    d = deploy(script={t: ["expired"] for t in ("1", "2", "3")})
    report = run_probe(build_targets(d.manifest, {}), KEYS, **FAST)
    assert report.ok and report.failed_tenants == []
    qr = [r for r in report.results if r.kind == "qr"]
    assert len(qr) == 6 and {(r.status, r.http_status, r.attempts) for r in qr} == {("idle", 410, 1)}
    assert all(r.reason.startswith("idle: the QR codes expired") for r in qr)
    assert (report.passed, report.idle, report.failed) == (4, 6, 0)

    data = json.loads(format_report(report, "json"))
    assert data["ok"] is True and data["summary"]["idle"] == 6 and data["summary"]["passed"] == 4
    assert {r["status"] for r in data["results"] if r["kind"] == "qr"} == {"idle"}

    table = format_report(report, "table")
    assert "IDLE" in table and "OK: 4 passed, 6 idle, 0 failed, 0 skipped" in table

    suite = ET.fromstring(format_report(report, "junit")).find("testsuite")
    assert suite is not None and (suite.get("tests"), suite.get("failures")) == ("10", "0")
    idle_cases = [
        c.get("name")
        for c in suite.findall("testcase")
        if c.find("properties/property[@name='probe.status'][@value='idle']") is not None
    ]
    assert idle_cases == [r.id for r in qr]
    assert all(c.find("failure") is None for c in suite.findall("testcase"))


@pytest.mark.parametrize(
    ("step", "reason"),
    [
        ("expired-wrong", "wrong tenant in answer: expected 3, got 2"),
        ("connected-wrong", "wrong tenant in answer: expected 3, got 2"),
        ("gone", "HTTP 410: "),
    ],
)
def test_idle_answers_of_another_tenant_or_kind_fail(deploy: Callable[..., Deployment], step: str, reason: str) -> None:
    d = deploy(script={"3": [step]})
    report = run_probe(build_targets(d.manifest, {}), KEYS, **FAST)
    for tid in ("qr:3@whatsapp-3", "qr:3@web"):
        r = by_id(report)[tid]
        assert r.status == "fail" and r.attempts == 1 and r.reason.startswith(reason), r
    assert report.failed_tenants == ["3"] and not report.ok


def test_idle_does_not_hide_a_failure(deploy: Callable[..., Deployment]) -> None:
    d = deploy(script={"1": ["expired"], "2": ["error"]})
    report = run_probe(build_targets(d.manifest, {}), KEYS, **FAST)
    assert by_id(report)["qr:1@web"].status == "idle"
    assert not report.ok and report.failed_tenants == ["2"]
    assert "FAILED: 6 passed, 2 idle, 2 failed" in format_report(report, "table")


def test_wrong_tenant_fails_at_once(deploy: Callable[..., Deployment]) -> None:
    d = deploy(script={"3": ["wrong"]})
    report = run_probe(build_targets(d.manifest, {}), KEYS, **FAST)
    for tid in ("qr:3@whatsapp-3", "qr:3@web"):
        r = by_id(report)[tid]
        assert r.status == "fail" and r.attempts == 1
        assert r.reason == "wrong tenant in answer: expected 3, got 2"
    assert report.failed_tenants == ["3"]


@pytest.mark.parametrize("step", ["svg", "notpng"])
def test_qr_that_is_not_a_png_fails(deploy: Callable[..., Deployment], step: str) -> None:
    d = deploy(script={"1": [step]})
    report = run_probe(build_targets(d.manifest, {}), KEYS, **FAST)
    r = by_id(report)["qr:1@whatsapp-1"]
    assert r.status == "fail" and r.reason.startswith("qr_data_url is not a PNG")
    assert by_id(report)["qr:2@whatsapp-2"].status == "pass"


def test_http_500_fails_at_once_with_body_excerpt(deploy: Callable[..., Deployment]) -> None:
    d = deploy(script={"2": ["error"]})
    report = run_probe(build_targets(d.manifest, {}), KEYS, **FAST)
    r = by_id(report)["qr:2@whatsapp-2"]
    assert (r.status, r.http_status, r.attempts) == ("fail", 500, 1)
    assert r.reason.startswith("HTTP 500: " + "E" * 200)
    assert "TAIL-NOT-SHOWN" not in r.reason


def test_503_then_200_passes_after_retries(deploy: Callable[..., Deployment]) -> None:
    d = deploy(script={"1": ["starting", "starting", "qr"]})
    targets = [t for t in build_targets(d.manifest, {}) if t.id == "qr:1@whatsapp-1"]
    report = run_probe(targets, KEYS, timeout=5, interval=0.1)
    r = report.results[0]
    assert (r.status, r.http_status, r.attempts) == ("pass", 200, 3)
    assert r.elapsed >= 0.2  # waited `interval` between attempts


def test_retry_after_is_honoured(deploy: Callable[..., Deployment]) -> None:
    d = deploy(script={"1": ["starting-ra", "qr"]})
    targets = [t for t in build_targets(d.manifest, {}) if t.id == "qr:1@whatsapp-1"]
    r = run_probe(targets, KEYS, timeout=5, interval=0.05).results[0]
    assert (r.status, r.attempts) == ("pass", 2)
    assert r.elapsed >= 0.95


def test_deadline_respected_when_always_503(deploy: Callable[..., Deployment]) -> None:
    d = deploy(script={"1": ["starting"]})
    targets = [t for t in build_targets(d.manifest, {}) if t.id == "qr:1@whatsapp-1"]
    started = time.monotonic()
    r = run_probe(targets, KEYS, timeout=1.0, interval=0.1).results[0]
    wall = time.monotonic() - started
    assert r.status == "fail" and r.reason.startswith("HTTP 503:") and r.http_status == 503
    assert "still failing after" in r.reason
    assert r.attempts >= 5
    assert 0.7 <= r.elapsed <= 1.3 and wall < 2.0


def test_hung_server_times_out_within_deadline(deploy: Callable[..., Deployment]) -> None:
    d = deploy(script={"1": ["hang"]})
    targets = [t for t in build_targets(d.manifest, {}) if t.id == "qr:1@whatsapp-1"]
    started = time.monotonic()
    r = run_probe(targets, KEYS, timeout=0.6, interval=0.1).results[0]
    assert r.status == "fail" and r.reason.startswith("timeout after")
    assert time.monotonic() - started < 1.3


def test_missing_key_fails_only_its_targets_and_no_key_is_printed(deploy: Callable[..., Deployment]) -> None:
    d = deploy()
    report = run_probe(build_targets(d.manifest, {}), {"WHATSAPP_API_KEY": WA_KEY}, **FAST)
    for r in report.results:
        if r.id.endswith("@web"):
            assert r.status == "fail" and r.attempts == 0
            assert r.reason == "OPS_API_KEY is not set: give it in the environment or render the environment first"
        else:
            assert r.status == "pass", r
    out = all_outputs(report)
    assert "OPS_API_KEY is not set" in out
    assert WA_KEY not in out and OPS_KEY not in out


def test_key_echoed_by_a_server_is_redacted(deploy: Callable[..., Deployment]) -> None:
    d = deploy(script={"1": ["echo"]})
    report = run_probe(build_targets(d.manifest, {}), KEYS, **FAST)
    r = by_id(report)["qr:1@whatsapp-1"]
    assert r.status == "fail" and "you sent key ***" in r.reason
    out = all_outputs(report)
    assert WA_KEY not in out and OPS_KEY not in out


def test_redirect_is_not_followed(deploy: Callable[..., Deployment]) -> None:
    d = deploy()
    other = NodeApp(["1"])
    target = Server(other)
    redirector = Server(lambda p, q, h: answer(302, b"", {"Location": f"{target.url}{p}"}))
    try:
        report = run_probe(build_targets(d.manifest, {"web": redirector.url}), KEYS, **FAST)
    finally:
        redirector.close()
        target.close()
    r = by_id(report)["qr:1@web"]
    assert r.status == "fail" and "redirected to" in r.reason
    assert other.qr_calls == 0  # the key was not sent on to the redirect target


def test_remote_mode_probes_only_public_services(deploy: Callable[..., Deployment]) -> None:
    d = deploy()
    for manifest, urls in (
        (d.manifest, {"web": d.flask.url + "/"}),  # --url
        (
            make_manifest(
                {s["name"]: s["local_url"] for s in d.manifest["services"]},
                {"whatsapp-1": ["1"], "whatsapp-2": ["2"], "whatsapp-3": ["3"]},
                public={"web": d.flask.url},
            ),
            {},
        ),  # public_url in the manifest (Railway)
    ):
        report = run_probe(build_targets(manifest, urls), KEYS, **FAST)
        for r in report.results:
            if r.service == "web":
                assert r.status == "pass", r
            else:
                assert (r.status, r.reason, r.attempts, r.url) == ("skip", PRIVATE_SKIP, 0, None)
        assert report.ok and report.skipped == 6 and report.passed == 4
    assert all(n.qr_calls == 2 for n in d.nodes.values())  # only through flask, once per run


def test_nothing_probed_is_not_ok() -> None:
    manifest = make_manifest(
        {"web": "http://127.0.0.1:1", "whatsapp-1": "http://127.0.0.1:2"},
        {"whatsapp-1": ["1"]},
        public={"whatsapp-1": "https://wa.example.com"},
    )
    targets = [t for t in build_targets(manifest, {}) if t.service == "web"]
    assert all(t.url is None for t in targets)
    report = run_probe(targets, KEYS, **FAST)
    assert report.skipped == len(targets) and not report.ok


def test_unknown_url_service_is_a_user_error() -> None:
    manifest = make_manifest({"web": "http://127.0.0.1:1", "whatsapp-1": "http://127.0.0.1:2"}, {"whatsapp-1": ["1"]})
    with pytest.raises(UserError) as err:
        build_targets(manifest, {"webb": "https://x.example.com", "web": "https://y.example.com"})
    assert "webb" in str(err.value) and "known services: web, whatsapp-1" in str(err.value)


@pytest.mark.parametrize("url", ["ftp://host", "not a url", "http://", "https://host:99999", "web.example.com"])
def test_malformed_url_is_a_user_error(url: str) -> None:
    manifest = make_manifest({"web": "http://127.0.0.1:1"}, {})
    with pytest.raises(UserError, match="--url web"):
        build_targets(manifest, {"web": url})


def test_url_options_parse() -> None:
    assert parse_url_options(["web=https://a.example.com", " whatsapp-1 = http://b:5001 "]) == {
        "web": "https://a.example.com",
        "whatsapp-1": "http://b:5001",
    }
    for bad in (["web"], ["=http://x"], ["web="], ["web=http://a", "web=http://b"]):
        with pytest.raises(UserError):
            parse_url_options(bad)


def test_credentials_in_url_are_not_shown() -> None:
    manifest = make_manifest({"web": "http://127.0.0.1:1"}, {})
    report = run_probe(
        build_targets(manifest, {"web": "http://user:hunter22@127.0.0.1:1"}), {}, timeout=0.2, interval=0.1
    )
    assert report.results[0].url == "http://127.0.0.1:1/health"
    assert "hunter22" not in all_outputs(report)


def test_concurrency_bound_respected(deploy: Callable[..., Deployment]) -> None:
    tenants = [str(i) for i in range(1, 21)]
    d = deploy(layout={"whatsapp": tenants}, script={t: ["slow"] for t in tenants}, delay=0.05)
    targets = [t for t in build_targets(d.manifest, {}) if t.kind == "qr" and t.service == "whatsapp"]
    node = d.nodes["whatsapp"]
    for limit in (1, 5):
        node.max_in_flight = 0
        started = time.monotonic()
        report = run_probe(targets, KEYS, timeout=10, interval=0.1, concurrency=limit)
        wall = time.monotonic() - started
        assert report.ok
        assert node.max_in_flight == limit  # never above the bound, and the bound is actually used
        assert wall >= (len(targets) / limit) * 0.05 * 0.9


# ---- output formats ----------------------------------------------------------------------------------------


@pytest.fixture
def mixed_report(deploy: Callable[..., Deployment]) -> ProbeReport:
    """Remote mode (web only) with tenant 2's server down: 1+2 pass, 1 fail, 7 skipped."""
    d = deploy(down=frozenset({"whatsapp-2"}))
    return run_probe(build_targets(d.manifest, {"web": d.flask.url}), KEYS, environment="staging", **FAST)


def test_json_output(mixed_report: ProbeReport) -> None:
    data = json.loads(format_report(mixed_report, "json"))
    assert list(data) == ["environment", "ok", "summary", "failed_tenants", "results"]
    assert data["environment"] == "staging" and data["ok"] is False
    assert {k: data["summary"][k] for k in ("total", "passed", "failed", "skipped")} == {
        "total": 10,
        "passed": 3,
        "failed": 1,
        "skipped": 6,
    }
    assert data["failed_tenants"] == ["2"]
    first = data["results"][0]
    assert list(first) == [
        "id",
        "kind",
        "service",
        "tenant",
        "via",
        "url",
        "status",
        "http_status",
        "attempts",
        "elapsed_s",
        "reason",
    ]
    failed = [r for r in data["results"] if r["status"] == "fail"]
    assert [r["id"] for r in failed] == ["qr:2@web"] and failed[0]["via"] == "whatsapp-2"
    assert format_report(mixed_report, "json") == format_report(mixed_report, "json")


def test_junit_output(mixed_report: ProbeReport) -> None:
    root = ET.fromstring(format_report(mixed_report, "junit"))
    suites = root.findall("testsuite") if root.tag == "testsuites" else [root]
    assert len(suites) == 1
    suite = suites[0]
    assert suite.get("name") == "deploytool probe staging"
    counts = (suite.get("tests"), suite.get("failures"), suite.get("skipped"), suite.get("errors"))
    assert counts == ("10", "1", "6", "0")
    assert float(suite.get("time", "x")) >= 0
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [r.id for r in mixed_report.results]
    assert all(c.get("classname") == r.service for c, r in zip(cases, mixed_report.results, strict=True))
    failures = [c for c in cases if c.find("failure") is not None]
    assert [c.get("name") for c in failures] == ["qr:2@web"]
    message = failures[0].find("failure").get("message")  # type: ignore[union-attr]
    assert message is not None and message.startswith("HTTP 503:")
    assert len([c for c in cases if c.find("skipped") is not None]) == 6


def test_junit_parses_with_junitparser(mixed_report: ProbeReport, tmp_path: Path) -> None:
    junitparser = pytest.importorskip("junitparser")
    path = tmp_path / "probe.xml"
    path.write_text(format_report(mixed_report, "junit"))
    xml = junitparser.JUnitXml.fromfile(str(path))
    suite = next(iter(xml))
    assert (suite.name, suite.tests, suite.failures, suite.skipped) == ("deploytool probe staging", 10, 1, 6)
    failed = [case.name for case in suite if any(isinstance(r, junitparser.Failure) for r in case.result)]
    assert failed == ["qr:2@web"]


def test_table_output(mixed_report: ProbeReport) -> None:
    plain = format_report(mixed_report, "table")
    assert "\x1b[" not in plain
    assert "qr:2@web" in plain and "FAIL" in plain and "SKIP" in plain
    assert "FAILED: 3 passed, 1 failed, 6 skipped" in plain and "failed tenants: 2" in plain
    assert "\x1b[" in format_report(mixed_report, "table", color=True)
    with pytest.raises(UserError):
        format_report(mixed_report, "yaml")


def test_live_progress_only_on_a_terminal(mixed_report: ProbeReport) -> None:
    import io

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    with live_progress(3, io.StringIO()) as callback:
        assert callback is None
    stream = Tty()
    with live_progress(len(mixed_report.results), stream) as callback:
        assert callback is not None
        for r in mixed_report.results:
            callback(r)
    assert "FAIL qr:2@web" in stream.getvalue()


# ---- pieces ------------------------------------------------------------------------------------------------


def test_judge_health_bodies() -> None:
    assert judge("health", None, 200, {}, b'{"status":"ok","db":"ok"}').outcome == "pass"
    bad = judge("health", None, 200, {}, b'{"status":"degraded"}')
    assert bad.outcome == "fail" and "degraded" in bad.reason
    assert judge("health", None, 200, {}, b"<html>ok</html>").outcome == "fail"
    assert judge("health", None, 503, {"retry-after": "120"}, b"").retry_after == 10.0
    assert judge("health", None, 409, {}, b"").outcome == "fail"  # 409 is a pass only for QR
    expired = b'{"error":"qr_expired","message":"expired","tenant_id":"1"}'
    assert judge("health", None, 410, {}, expired).outcome == "fail"  # idle only for QR
    assert judge("qr", "1", 410, {}, expired).outcome == "idle"
    # a server older than tenant-named errors: still idle, nothing to compare
    assert judge("qr", "1", 410, {}, b'{"error":"qr_expired","message":"expired"}').outcome == "idle"
    assert judge("qr", "1", 410, {}, b"gone").outcome == "fail"


def test_probe_environment_reads_keys_from_secrets_file(deploy: Callable[..., Deployment], tmp_path: Path) -> None:
    d = deploy()
    (tmp_path / "deploytool-manifest.json").write_text(json.dumps(d.manifest))
    (tmp_path / ".secrets.env").write_text(f"WHATSAPP_API_KEY={WA_KEY}\nOPS_API_KEY=wrong-one\n")
    manifest = load_manifest(tmp_path)
    report = probe_environment(manifest, tmp_path, {}, {}, timeout=1, concurrency=4, interval=0.1)
    assert {r.id for r in report.results if r.status == "fail"} == {"qr:1@web", "qr:2@web", "qr:3@web"}
    assert "HTTP 401" in by_id(report)["qr:1@web"].reason
    report = probe_environment(manifest, tmp_path, {}, {"OPS_API_KEY": OPS_KEY}, timeout=1, concurrency=4, interval=0.1)
    assert report.ok and report.environment == "dev"


def test_load_manifest_missing_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="run `deploytool render ENV` first"):
        load_manifest(tmp_path)
    (tmp_path / "deploytool-manifest.json").write_text("{not json")
    with pytest.raises(UserError):
        load_manifest(tmp_path)


def test_rendered_manifest_of_the_repo_spec(deploy: Callable[..., Deployment], tmp_path: Path) -> None:
    """Contract with render/manifest.py: probe what `render dev` produces, served by stand-ins."""
    spec = Path(__file__).resolve().parents[2] / "deploytool.yaml"
    if not spec.is_file():
        pytest.skip(f"{spec} not found")
    from deploytool.pipeline import render_environment

    rendered = render_environment(spec, "dev", out=tmp_path)
    [artifact] = [a for a in rendered.artifacts if a.path.endswith("deploytool-manifest.json")]
    manifest = json.loads(artifact.content)
    layout = {s["name"]: s["tenants"] for s in manifest["services"] if s["role"] == "whatsapp"}
    d = deploy(layout=layout)
    local = {s["name"]: s["local_url"] for s in d.manifest["services"]}
    for s in manifest["services"]:
        s["local_url"], s["public_url"] = local[s["name"]], None
    report = run_probe(build_targets(manifest, {}), KEYS, **FAST)
    assert report.ok, format_report(report, "table")
    assert report.passed == len(manifest["probe_targets"]) > len(layout)
