"""Sessions that never dead-end, through flask's HTTP API against the real node_service (sandbox driver):
a new code after expiry, a simulated scan (development only), unlinking by the tenant and by an operator."""

from __future__ import annotations

import json
import queue
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask_service_testlib import NODE_KEY, OPS_KEY, REPO_ROOT, add_user, csrf_from, login

JSON = {"Accept": "application/json"}


class RealNode:
    """node_service/src/server.js on a free loopback port, with short sandbox QR lifetimes."""

    def __init__(self, auth_root: Path, **env: str) -> None:
        self.auth_root = auth_root
        full_env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "PORT": "0",
            "HOST": "127.0.0.1",
            "WA_DRIVER": "sandbox",
            "WA_MODE": "multi",
            "WHATSAPP_API_KEY": NODE_KEY,
            "AUTH_ROOT": str(auth_root),
            "LOG_LEVEL": "info",
            **env,
        }
        node = shutil.which("node")
        if node is None:
            pytest.fail("node is required: run scripts/bootstrap --dev")
        self.proc = subprocess.Popen(
            [node, str(REPO_ROOT / "node_service" / "src" / "server.js")],
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.log: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        deadline = time.monotonic() + 20
        while True:
            line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            entry = json.loads(line) if line.startswith("{") else {}
            if entry.get("msg") == "listening":
                self.url = f"http://127.0.0.1:{entry['port']}"
                break

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.log.append(line)
            self.lines.put(line)

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def real_node(tmp_path: Path) -> Iterator[Callable[..., RealNode]]:
    started: list[RealNode] = []

    def start(**env: str) -> RealNode:
        started.append(RealNode(tmp_path / f"auth-{len(started)}", **env))
        return started[-1]

    yield start
    for n in started:
        n.close()


def until(what: str, check: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Poll `check` until it returns something truthy, or fail naming `what` once the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def logged_in(make_app: Callable[..., Any], node: RealNode, tenant: str, **config: Any) -> Any:
    app = make_app(WHATSAPP_SERVER_URL=node.url, **config)
    add_user(app, f"user{tenant}", "pw", tenant)
    client = app.test_client()
    login(client, f"user{tenant}", "pw")
    return client


def page_token(client: Any, path: str = "/connect") -> tuple[str, str]:
    html = client.get(path).get_data(as_text=True)
    return html, csrf_from(html)


def visible(html: str, element_id: str) -> bool:
    tag = re.search(rf'<(?:form|img)[^>]*\bid="{element_id}"[^>]*>', html)
    assert tag, f"#{element_id} missing"
    return " hidden" not in tag.group(0)


def test_get_a_new_code_after_the_qr_expired(make_app, real_node) -> None:  # type: ignore[no-untyped-def]
    node = real_node(SANDBOX_QR_TTL_MS="200", SANDBOX_QR_MAX="1")
    client = logged_in(make_app, node, "1")
    first = client.get("/api/qr")
    assert first.status_code == 200
    until("410 qr_expired", lambda: client.get("/api/qr").status_code == 410)

    html, token = page_token(client)
    assert 'data-state="qr_expired"' in html and "Get a new code" in html
    assert visible(html, "renew-form") and not visible(html, "qr")

    # No token, a wrong token: a 4xx JSON error (the browser's fetch) or a flashed error (a plain form).
    bad = client.post("/connect/new-code", headers=JSON)
    assert bad.status_code == 400 and bad.get_json()["error"] == "csrf_failed"
    assert client.get("/api/qr").status_code == 410, "a request without the token restarts nothing"
    plain = client.post("/connect/new-code", data={"csrf_token": "wrong"})
    assert plain.status_code == 303 and plain.headers["Location"].endswith("/connect")

    renewed = client.post("/connect/new-code", data={"csrf_token": token}, headers=JSON)
    assert renewed.status_code == 202, renewed.get_data(as_text=True)
    assert renewed.get_json() == {"ok": True, "message": "Getting a new QR code…", "state": "starting"}
    fresh = client.get("/api/qr")
    assert fresh.status_code == 200 and fresh.get_json()["qr"] != first.get_json()["qr"]

    # Without JavaScript: the form posts, flask redirects back to /connect, which shows the new code.
    until("410 again", lambda: client.get("/api/qr").status_code == 410)
    resp = client.post("/connect/new-code", data={"csrf_token": token})
    assert resp.status_code == 303 and resp.headers["Location"].endswith("/connect")
    html = client.get("/connect").get_data(as_text=True)
    assert 'data-state="qr"' in html or 'data-state="qr_expired"' in html  # 200 ms codes may expire again
    assert "Getting a new QR code" in html  # the flashed outcome


def test_simulate_scan_in_development_with_the_sandbox_then_unlink(make_app, real_node) -> None:  # type: ignore[no-untyped-def]
    node = real_node()
    client = logged_in(make_app, node, "2", APP_ENV="development")
    html, token = page_token(client)
    assert 'data-state="qr"' in html and visible(html, "scan-form") and "Simulate scan" in html
    for key in (NODE_KEY, OPS_KEY):
        assert key not in html, "no key reaches the browser"

    scan = client.post("/connect/simulate-scan", data={"csrf_token": token}, headers=JSON)
    assert scan.status_code == 200 and scan.get_json()["state"] == "connected"
    assert client.get("/api/qr").status_code == 409
    html, token = page_token(client)
    assert 'data-state="connected"' in html and visible(html, "unlink-form")
    creds = node.auth_root / "2" / "sandbox-creds.json"
    assert creds.is_file()

    # Unlink from the dashboard (a plain form post): node logs out and the session files are gone.
    dash, dash_token = page_token(client, "/dashboard")
    assert 'id="unlink-form"' in dash
    resp = client.post("/whatsapp/unlink", data={"csrf_token": dash_token})
    assert resp.status_code == 303 and resp.headers["Location"].endswith("/connect")
    assert not creds.exists()
    html = client.get("/connect").get_data(as_text=True)
    assert "WhatsApp unlinked" in html and 'data-state="qr"' in html, "a new QR right after unlinking"

    # Scanning when no code shows is a clear 4xx, never a 500.
    client.post("/connect/simulate-scan", data={"csrf_token": token}, headers=JSON)
    again = client.post("/connect/simulate-scan", data={"csrf_token": token}, headers=JSON)
    assert again.status_code == 409 and again.get_json()["error"] == "not_showing_qr"


def test_simulate_scan_exists_only_in_development_with_the_sandbox(make_app, real_node) -> None:  # type: ignore[no-untyped-def]
    node = real_node()
    client = logged_in(make_app, node, "3", APP_ENV="production")
    html, token = page_token(client)
    assert "Simulate scan" not in html and 'id="scan-form"' not in html
    resp = client.post("/connect/simulate-scan", data={"csrf_token": token}, headers=JSON)
    assert resp.status_code == 404
    assert client.get("/api/qr").status_code == 200, "still not paired"


def test_operator_unlinks_and_renews_any_tenant_with_the_ops_key(make_app, real_node) -> None:  # type: ignore[no-untyped-def]
    node = real_node(SANDBOX_QR_TTL_MS="200", SANDBOX_QR_MAX="1")
    app = make_app(WHATSAPP_SERVER_URL=node.url)
    client = app.test_client()
    ops = {"X-Api-Key": OPS_KEY}
    assert client.get("/api/qr?user_id=4", headers=ops).status_code == 200
    until("410", lambda: client.get("/api/qr?user_id=4", headers=ops).status_code == 410)
    renewed = client.post("/api/whatsapp/connect?user_id=4", headers=ops)
    assert renewed.status_code == 202 and renewed.get_json()["tenant_id"] == "4"
    assert client.get("/api/qr?user_id=4", headers=ops).status_code == 200

    out = client.post("/api/whatsapp/logout?user_id=4", headers=ops)
    assert out.status_code == 200 and out.get_json()["state"] == "logged_out"
    assert client.get("/api/whatsapp-status?user_id=4", headers=ops).get_json()["state"] == "logged_out"

    for headers, query, status, error in (
        ({"X-Api-Key": "wrong"}, "?user_id=4", 401, "unauthorized"),
        (ops, "", 400, "missing_user_id"),
        (ops, "?user_id=../4", 400, "invalid_user_id"),
        ({}, "?user_id=4", 401, "unauthorized"),
    ):
        resp = client.post(f"/api/whatsapp/logout{query}", headers=headers)
        assert (resp.status_code, resp.get_json()["error"]) == (status, error)
    assert client.get("/api/whatsapp/logout").status_code == 405

    # A logged-in browser may use the API route too, but only with the page's CSRF token.
    add_user(app, "ana", "pw", "4")
    login(client, "ana", "pw")
    _, token = page_token(client)
    assert client.post("/api/whatsapp/logout").status_code == 403
    assert client.post("/api/whatsapp/logout", headers={"X-CSRF-Token": token}).status_code == 200
    assert not any(NODE_KEY in line or OPS_KEY in line for line in node.log), "keys never logged by node"
