"""The probe's HTTP stack (requests): kept-alive connections per worker, errors named, the limits on an answer,
and the environment honoured as requests does (HTTP_PROXY / NO_PROXY, REQUESTS_CA_BUNDLE); the local runner's
health polls never go through a proxy."""

from __future__ import annotations

import http.client
import shutil
import socket
import ssl
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from deploytool.probe import ProbeTarget, build_targets, fetch, run_probe
from tests.deploytool.test_probe import KEYS, NodeApp, Server, closed_port_url, make_manifest

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


@pytest.fixture(autouse=True)
def no_proxy_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test sets the variables it is about; the shell's own must not send loopback requests elsewhere."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


class Counting(ThreadingHTTPServer):
    daemon_threads = True
    connections = 0
    close_after = 0  # answer this many requests per connection, then close it (0: keep it open)
    extra_headers = 0  # header lines added to every answer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: no delayed-ACK wait between them
    server: Counting

    def setup(self) -> None:
        super().setup()
        self.server.connections += 1
        self.served = 0

    def do_GET(self) -> None:
        self.served += 1
        body = b'{"status": "ok"}'
        self.send_response(200)
        for i in range(self.server.extra_headers):
            self.send_header(f"X-Filler-{i}", "x")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        if self.server.close_after and self.served >= self.server.close_after:
            self.close_connection = True  # without `Connection: close`: the client finds out on its next request

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[Counting]:
    srv = Counting(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()


def health_targets(base: str, count: int) -> list[ProbeTarget]:
    return [
        ProbeTarget(id=f"health:{i}", kind="health", service=f"s{i}", path="/health", url=f"{base}/health")
        for i in range(count)
    ]


# ---- connections ---------------------------------------------------------------------------------------------


def test_each_worker_keeps_its_connection_alive_for_many_requests(server: Counting) -> None:
    base = f"http://127.0.0.1:{server.server_address[1]}"
    report = run_probe(health_targets(base, 50), {}, timeout=5, interval=0.1, concurrency=1)
    assert report.ok and report.passed == 50
    assert server.connections == 1
    report = run_probe(health_targets(base, 60), {}, timeout=5, interval=0.1, concurrency=4)
    assert report.ok and report.passed == 60
    assert 2 <= server.connections <= 1 + 4  # a session per worker thread, each kept alive


def test_a_connection_the_server_closed_is_replaced_without_an_error(server: Counting) -> None:
    server.close_after = 2
    base = f"http://127.0.0.1:{server.server_address[1]}"
    report = run_probe(health_targets(base, 6), {}, timeout=5, interval=5, concurrency=1)
    assert [(r.status, r.attempts) for r in report.results] == [("pass", 1)] * 6  # sent again at once, not later
    assert server.connections == 3


def test_transport_errors_say_what_happened() -> None:
    session = requests.Session()

    def error(url: str, timeout: float = 2.0) -> fetch.TransportError:
        with pytest.raises(fetch.TransportError) as caught:
            fetch.get(session, url, {}, timeout)
        return caught.value

    refused = error(f"{closed_port_url()}/health")
    assert refused.reason == "connection refused" and refused.retry
    bad = error("ftp://127.0.0.1/x")
    assert not bad.retry and bad.reason.startswith("request failed:")
    unresolved = error("http://whatsapp.invalid/health")
    assert unresolved.reason.startswith("host name not resolved") and unresolved.retry
    with socket.socket() as silent:  # accepts, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        slow = error(f"http://127.0.0.1:{silent.getsockname()[1]}/", 0.2)
    assert slow.reason == "timeout after 0.2s" and slow.retry
    session.close()


# ---- limits on an answer -------------------------------------------------------------------------------------


def test_an_answer_with_more_than_100_header_lines_fails_at_once(server: Counting) -> None:
    server.extra_headers = 150  # http.client's limit is 100; a server sending this many is broken, not starting
    base = f"http://127.0.0.1:{server.server_address[1]}"
    r = run_probe(health_targets(base, 1), {}, timeout=5, interval=0.1).results[0]
    assert (r.status, r.attempts, r.http_status) == ("fail", 1, None)
    assert r.reason == "answer refused: got more than 100 headers"


def test_an_answer_larger_than_the_limit_fails(server: Counting, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fetch, "MAX_BODY", 8)  # the health body is 16 bytes
    base = f"http://127.0.0.1:{server.server_address[1]}"
    r = run_probe(health_targets(base, 1), {}, timeout=5, interval=0.1).results[0]
    assert (r.status, r.attempts) == ("fail", 1)
    assert r.reason == "request failed: answer larger than 8 bytes"


# ---- the environment: proxies, CA bundle -------------------------------------------------------------------------


class Proxy(ThreadingHTTPServer):
    """A forwarding HTTP proxy on loopback: GET with an absolute URI, to `hosts[name]` (its own DNS); counts the
    requests per host name. A request that is not for a proxy (no absolute URI) gets 400."""

    daemon_threads = True

    def __init__(self, hosts: dict[str, str]) -> None:
        self.hosts = hosts
        self.seen: Counter[str] = Counter()
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), ProxyHandler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()

    def close(self) -> None:
        self.shutdown()
        self.server_close()


class ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: Proxy
    HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "transfer-encoding", "content-length"})

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.scheme != "http" or not parts.hostname:
            return self.reply(400, b"not a proxy request", {})
        with self.server.lock:
            self.server.seen[parts.hostname] += 1
        address = self.server.hosts.get(parts.hostname, parts.hostname)
        upstream = http.client.HTTPConnection(address, parts.port or 80, timeout=10)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in self.HOP_BY_HOP}
        try:
            upstream.request("GET", f"{parts.path or '/'}{'?' + parts.query if parts.query else ''}", headers=headers)
            answer = upstream.getresponse()
            body = answer.read()
        except OSError as exc:
            return self.reply(502, f"proxy: {exc}".encode(), {})
        finally:
            upstream.close()
        kept = {k: v for k, v in answer.getheaders() if k.lower() not in self.HOP_BY_HOP}
        self.reply(answer.status, body, kept)

    def reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_a_deployment_reachable_only_through_an_http_proxy_is_probed_through_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As on a network where only the proxy resolves and reaches the deployment's host names."""
    node = Server(NodeApp(["1", "2"]))
    wa_port = int(node.url.rsplit(":", 1)[1])
    proxy = Proxy({"whatsapp.internal": "127.0.0.1"})
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    try:
        manifest = make_manifest({"web": closed_port_url(), "whatsapp-1": node.url}, {"whatsapp-1": ["1", "2"]})
        targets = build_targets(manifest, {"whatsapp-1": f"http://whatsapp.internal:{wa_port}"})
        report = run_probe(targets, KEYS, timeout=2, interval=0.1, concurrency=4)
    finally:
        proxy.close()
        node.close()
    probed = [r for r in report.results if r.status != "skip"]
    assert [r.id for r in probed] == ["health:whatsapp-1", "qr:1@whatsapp-1", "qr:2@whatsapp-1"]
    assert {(r.status, r.http_status, r.attempts) for r in probed} == {("pass", 200, 1)}, probed
    assert probed[1].url == f"http://whatsapp.internal:{wa_port}/tenants/1/qr"  # the URL asked, not the proxy's
    assert report.ok and proxy.seen == {"whatsapp.internal": 3}


def test_a_proxy_that_is_down_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", closed_port_url())
    target = ProbeTarget(
        id="health:web", kind="health", service="web", path="/health", url="http://web.internal/health"
    )
    r = run_probe([target], {}, timeout=0.5, interval=0.1).results[0]
    assert r.status == "fail" and r.reason.startswith("proxy failed: Connection refused (still failing after"), r


def test_no_proxy_is_honoured(monkeypatch: pytest.MonkeyPatch, server: Counting) -> None:
    proxy = Proxy({})
    base = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    try:
        # requests sends even loopback through HTTP_PROXY unless NO_PROXY names it (as curl does) ...
        assert run_probe(health_targets(base, 2), {}, timeout=2, interval=0.1).ok
        assert proxy.seen == {"127.0.0.1": 2}
        # ... and goes direct for the hosts NO_PROXY names (lower-case spelling too)
        for name, value in (("NO_PROXY", "127.0.0.1"), ("no_proxy", "localhost,127.0.0.1")):
            with monkeypatch.context() as env:
                env.setenv(name, value)
                assert run_probe(health_targets(base, 3), {}, timeout=2, interval=0.1).ok
        assert proxy.seen == {"127.0.0.1": 2} and server.connections >= 1
    finally:
        proxy.close()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make a certificate")
def test_requests_ca_bundle_is_honoured(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    httpd = Counting(("127.0.0.1", 0), Handler)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    targets = health_targets(f"https://127.0.0.1:{httpd.server_address[1]}", 1)
    try:
        untrusted = run_probe(targets, {}, timeout=0.5, interval=0.1).results[0]
        assert untrusted.status == "fail" and "CERTIFICATE_VERIFY_FAILED" in untrusted.reason, untrusted
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
        trusted = run_probe(targets, {}, timeout=2, interval=0.1).results[0]
        assert (trusted.status, trusted.http_status) == ("pass", 200), trusted
        assert untrusted.reason.startswith("TLS failed: [SSL: CERTIFICATE_VERIFY_FAILED]")
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_up_polls_its_own_processes_directly_whatever_the_proxy(
    monkeypatch: pytest.MonkeyPatch, server: Counting
) -> None:
    from deploytool.run import live

    monkeypatch.setenv("HTTP_PROXY", closed_port_url())  # a proxy that cannot reach this machine's loopback
    with live.client() as session:
        assert session.get(f"http://127.0.0.1:{server.server_address[1]}/health", timeout=2).status_code == 200
    with requests.Session() as default, pytest.raises(requests.exceptions.ProxyError):
        default.get(f"http://127.0.0.1:{server.server_address[1]}/health", timeout=2)  # what trust_env would do


# ---- startup -------------------------------------------------------------------------------------------------


def test_requests_is_imported_only_when_a_probe_sends_a_request(server: Counting) -> None:
    code = (
        "import sys\n"
        "import deploytool.cli, deploytool.probe, deploytool.run, deploytool.run.supervisor\n"
        "from deploytool.probe import ProbeTarget, run_probe\n"
        "def loaded(): return sorted({'requests', 'urllib3', 'concurrent.futures'} & set(sys.modules))\n"
        "print(loaded())\n"
        "run_probe([ProbeTarget(id='h', kind='health', service='s', path='/health', url=None)], {})\n"
        "print(loaded())\n"
        "assert run_probe([ProbeTarget(id='h', kind='health', service='s', path='/health', url=sys.argv[1])], {}).ok\n"
        "print(loaded())\n"
    )
    url = f"http://127.0.0.1:{server.server_address[1]}/health"
    result = subprocess.run([sys.executable, "-c", code, url], capture_output=True, text=True, check=True)
    assert result.stdout.splitlines() == ["[]", "[]", "['concurrent.futures', 'requests', 'urllib3']"]
