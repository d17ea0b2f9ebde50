"""Helpers shared by the flask_service tests (imported by conftest.py and the test modules)."""

from __future__ import annotations

import json
import os
import re
import socket
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from flask_service import create_app  # noqa: E402
from flask_service.models import db  # noqa: E402

# environment variables the app reads: tests never inherit them from the shell
APP_ENV_VARS = (
    "PORT",
    "DATABASE_URL",
    "SECRET_KEY",
    "APP_ENV",
    "WHATSAPP_SERVER_URL",
    "WHATSAPP_TENANT_URLS",
    "WHATSAPP_API_KEY",
    "WEBHOOK_SECRET",
    "OPS_API_KEY",
    "WHATSAPP_TIMEOUT_S",
    "TRUSTED_PROXIES",
    "WHATSAPP_CONNECT_TIMEOUT_S",
    "WHATSAPP_BREAKER_FAILURES",
    "WHATSAPP_BREAKER_COOLDOWN_S",
    "APP_NAME",
)

# strong enough for the production key rule (node_service runs in production mode in test_fs_sessions.py)
NODE_KEY = "node-key-5f1c2a-Zq8wX3vN7pL2mK9rT4yB6cD1"
OPS_KEY = "ops-key-9b7e41-Zq8wX3vN7pL2mK9rT4yB6cD1"
WEBHOOK_SECRET = "webhook-secret-3d8a-Zq8wX3vN7pL2mK9rT4y"
# passes the production SECRET_KEY check (length and variety), like deploytool's token_urlsafe(32) values
STRONG_SECRET_KEY = "test-only-Zq8wX3vN7pL2mK9rT4yB6cD1fG5hJ0sA"
PG_SKIP_REASON = (
    "TEST_DATABASE_URL is not set; set it (e.g. postgresql://postgres@127.0.0.1:5432/test)"
    " to run the PostgreSQL variant"
)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (bound, then closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def subprocess_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in APP_ENV_VARS}
    env["PYTHONPATH"] = str(REPO_ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.update(extra)
    return env


class PgAdmin:
    """Creates and drops throw-away databases on the TEST_DATABASE_URL server."""

    def __init__(self, url: str) -> None:
        from sqlalchemy.engine import make_url

        self.url = make_url(url.replace("postgres://", "postgresql://", 1)).set(drivername="postgresql")
        self.created: list[str] = []

    def _conninfo(self, database: str) -> str:
        return self.url.set(database=database).render_as_string(hide_password=False)

    def _admin(self):  # type: ignore[no-untyped-def]
        import psycopg

        try:
            return psycopg.connect(self._conninfo(self.url.database or "postgres"), autocommit=True, connect_timeout=5)
        except psycopg.OperationalError:
            return psycopg.connect(self._conninfo("postgres"), autocommit=True, connect_timeout=5)

    def create(self) -> str:
        """A new empty database; returns its SQLAlchemy URL (postgresql://, as users would write it)."""
        name = f"fs_test_{uuid.uuid4().hex[:12]}"
        with self._admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return self._conninfo(name)

    def drop_all(self) -> None:
        with self._admin() as conn:
            for name in self.created:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.created.clear()


def migrate(url: str) -> None:
    from flask_migrate import upgrade

    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "x", "TESTING": True})
    with app.app_context():
        upgrade()
        db.engine.dispose()


def truncate(url: str) -> None:
    from sqlalchemy import create_engine, text

    from flask_service.config import normalize_database_url

    engine = create_engine(normalize_database_url(url))
    try:
        with engine.begin() as conn:
            conn.execute(text("TRUNCATE users, messages, webhook_events, session_states RESTART IDENTITY"))
    finally:
        engine.dispose()


def add_user(app: Any, username: str, password: str, tenant_id: str) -> None:
    from werkzeug.security import generate_password_hash

    from flask_service.models import User

    with app.app_context():
        # a cheap hash keeps the suite fast; production hashes with werkzeug's default (scrypt)
        user = User(
            username=username,
            tenant_id=tenant_id,
            password_hash=generate_password_hash(password, method="pbkdf2:sha256:1000"),
        )
        db.session.add(user)
        db.session.commit()


def csrf_from(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "login form has no CSRF token"
    return match.group(1)


def login(client: Any, username: str, password: str):  # type: ignore[no-untyped-def]
    page = client.get("/login")
    token = csrf_from(page.get_data(as_text=True))
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token})


def logout(client: Any):  # type: ignore[no-untyped-def]
    """Press the page's "Log out" button (a POST carrying the form's CSRF token)."""
    page = client.get("/dashboard").get_data(as_text=True)
    form = re.search(r'<form method="post" action="/logout".*?</form>', page, re.S)
    assert form, "the page has no logout form"
    return client.post("/logout", data={"csrf_token": csrf_from(form.group(0))})


class FakeNode:
    """A tiny HTTP server following the node_service contract for the endpoints flask calls.

    ``behaviour[tenant_id]`` selects the answer: "qr" (default), "connected", "not_ready",
    "expired", "slow", "unknown".
    """

    QR_RAW = "2@RAWQRSECRET,abc123,def456"
    QR_DATA_URL = (
        "data:image/png;base64,"
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
    )

    def __init__(self, api_key: str = NODE_KEY, port: int = 0) -> None:
        self.api_key = api_key
        self.behaviour: dict[str, str] = {}
        self.requests: list[dict[str, Any]] = []
        self.slow_s = 3.0
        node = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _reply(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _handle(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                node.requests.append({"method": method, "path": self.path, "headers": dict(self.headers), "body": raw})
                if self.headers.get("X-Api-Key") != node.api_key:
                    return self._reply(401, {"error": "unauthorized", "message": "bad key"})
                parts = self.path.split("?")[0].strip("/").split("/")
                if len(parts) != 3 or parts[0] != "tenants":
                    return self._reply(404, {"error": "not_found", "message": self.path})
                tenant, action = parts[1], parts[2]
                mode = node.behaviour.get(tenant, "qr")
                if mode == "slow":
                    time.sleep(node.slow_s)
                if mode == "unknown":
                    return self._reply(404, {"error": "unknown_tenant", "message": f"tenant {tenant}"})
                if method == "GET" and action == "qr":
                    if mode == "connected":
                        return self._reply(409, {"error": "already_connected", "message": "connected"})
                    if mode == "not_ready":
                        return self._reply(503, {"error": "not_ready", "message": "starting"}, {"Retry-After": "2"})
                    if mode == "expired":
                        return self._reply(410, {"error": "qr_expired", "message": "expired"})
                    return self._reply(
                        200,
                        {
                            "tenant_id": tenant,
                            "state": "qr",
                            "qr": node.QR_RAW,
                            "qr_data_url": node.QR_DATA_URL,
                            "expires_at": "2099-01-01T00:00:00Z",
                        },
                    )
                if method == "GET" and action == "status":
                    state = "connected" if mode == "connected" else "qr"
                    return self._reply(200, {"tenant_id": tenant, "state": state, "me": None, "last_error": None})
                if method == "POST" and action == "logout":
                    return self._reply(200, {"tenant_id": tenant, "state": "logged_out", "connected": False})
                if method == "POST" and action == "messages":
                    if mode != "connected":
                        return self._reply(503, {"error": "not_connected", "message": "not connected"})
                    body = json.loads(raw or b"{}")
                    return self._reply(
                        200, {"id": f"MSG-{len(node.requests)}", "to": body.get("to"), "status": "sent", "timestamp": 1}
                    )
                return self._reply(404, {"error": "not_found", "message": self.path})

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
