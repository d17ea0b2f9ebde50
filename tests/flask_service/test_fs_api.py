"""/api/qr, /api/whatsapp-status, /api/whatsapp/send against a stand-in node server over real HTTP."""

from __future__ import annotations

import json

import pytest
from flask_service_testlib import NODE_KEY, OPS_KEY, FakeNode, add_user, db, free_port, login
from sqlalchemy import select

from flask_service.models import Message

OPS = {"X-Api-Key": OPS_KEY}


@pytest.fixture
def app(make_app, node: FakeNode):  # type: ignore[no-untyped-def]
    return make_app(WHATSAPP_SERVER_URL=node.url)


def test_qr_is_relayed_for_a_logged_in_user_with_the_node_key(app, node: FakeNode) -> None:  # type: ignore[no-untyped-def]
    add_user(app, "ana", "pw-ana", "3")
    client = app.test_client()
    assert login(client, "ana", "pw-ana").status_code == 302
    resp = client.get("/api/qr")
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["tenant_id"] == "3"
    assert body["qr_data_url"] == FakeNode.QR_DATA_URL
    assert resp.headers["Cache-Control"] == "no-store"
    call = node.requests[-1]
    assert call["method"] == "GET" and call["path"] == "/tenants/3/qr"
    assert call["headers"].get("X-Api-Key") == NODE_KEY


def test_qr_with_ops_key_uses_the_user_id_tenant(app, node: FakeNode) -> None:  # type: ignore[no-untyped-def]
    resp = app.test_client().get("/api/qr?user_id=7", headers=OPS)
    assert resp.status_code == 200
    assert resp.get_json()["tenant_id"] == "7"
    assert node.requests[-1]["path"] == "/tenants/7/qr"
    assert node.requests[-1]["headers"].get("X-Api-Key") == NODE_KEY


def test_per_port_map_routes_each_tenant_to_its_own_server(make_app) -> None:  # type: ignore[no-untyped-def]
    a, b = FakeNode(), FakeNode()
    try:
        app = make_app(WHATSAPP_TENANT_URLS={"1": a.url, "2": b.url})
        client = app.test_client()
        assert client.get("/api/qr?user_id=1", headers=OPS).status_code == 200
        assert client.get("/api/qr?user_id=2", headers=OPS).status_code == 200
        assert [r["path"] for r in a.requests] == ["/tenants/1/qr"]
        assert [r["path"] for r in b.requests] == ["/tenants/2/qr"]
        unknown = client.get("/api/qr?user_id=3", headers=OPS)
        assert unknown.status_code == 404
        assert unknown.get_json()["error"] == "unknown_tenant"
        assert unknown.get_json()["tenant_id"] == "3"
    finally:
        a.close()
        b.close()


def test_unknown_tenant_without_any_server_is_404(make_app) -> None:  # type: ignore[no-untyped-def]
    resp = make_app().test_client().get("/api/whatsapp-status?user_id=1", headers=OPS)
    assert resp.status_code == 404
    assert resp.get_json()["error"] == "unknown_tenant"


def test_unreachable_node_is_503_naming_tenant_and_url(make_app) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    app = make_app(WHATSAPP_SERVER_URL=f"http://127.0.0.1:{port}")
    resp = app.test_client().get("/api/qr?user_id=3", headers=OPS)
    assert resp.status_code == 503
    body = resp.get_json()
    assert body["error"] == "whatsapp_unreachable"
    assert body["tenant_id"] == "3"
    assert body["url"] == f"http://127.0.0.1:{port}/tenants/3/qr"
    assert f"127.0.0.1:{port}" in body["message"] and "3" in body["message"]
    raw = resp.get_data(as_text=True)
    assert NODE_KEY not in raw and OPS_KEY not in raw


def test_node_timeout_is_503(make_app, node: FakeNode) -> None:  # type: ignore[no-untyped-def]
    node.behaviour["5"] = "slow"
    node.slow_s = 1.5
    app = make_app(WHATSAPP_SERVER_URL=node.url, WHATSAPP_TIMEOUT_S=0.3)
    resp = app.test_client().get("/api/whatsapp-status?user_id=5", headers=OPS)
    assert resp.status_code == 503
    body = resp.get_json()
    assert body["error"] == "whatsapp_unreachable"
    assert body["url"] == f"{node.url}/tenants/5/status"
    assert "0.3" in body["message"]


@pytest.mark.parametrize(
    "mode, status, error",
    [
        ("connected", 409, "already_connected"),
        ("expired", 410, "qr_expired"),
        ("unknown", 404, "unknown_tenant"),
        ("not_ready", 503, "not_ready"),
    ],
)
def test_node_errors_are_relayed_with_their_status(app, node: FakeNode, mode: str, status: int, error: str) -> None:  # type: ignore[no-untyped-def]
    node.behaviour["2"] = mode
    resp = app.test_client().get("/api/qr?user_id=2", headers=OPS)
    assert resp.status_code == status
    assert resp.get_json()["error"] == error
    if mode == "not_ready":
        assert resp.headers["Retry-After"] == "2"


def test_status_is_relayed(app, node: FakeNode) -> None:  # type: ignore[no-untyped-def]
    node.behaviour["1"] = "connected"
    resp = app.test_client().get("/api/whatsapp-status?user_id=1", headers=OPS)
    assert resp.status_code == 200
    assert resp.get_json()["state"] == "connected"
    assert node.requests[-1]["path"] == "/tenants/1/status"


def test_no_credentials_is_401(app, node: FakeNode) -> None:  # type: ignore[no-untyped-def]
    client = app.test_client()
    for path in ("/api/qr", "/api/qr?user_id=1", "/api/whatsapp-status"):
        resp = client.get(path)
        assert resp.status_code == 401
        assert resp.get_json()["error"] == "unauthorized"
    assert client.post("/api/whatsapp/send", json={"to": "1", "text": "x"}).status_code == 401
    assert node.requests == []


def test_wrong_ops_key_is_401_even_when_logged_in(app, node: FakeNode) -> None:  # type: ignore[no-untyped-def]
    client = app.test_client()
    assert client.get("/api/qr?user_id=1", headers={"X-Api-Key": "wrong"}).status_code == 401
    assert client.get("/api/qr?user_id=1", headers={"X-Api-Key": ""}).status_code == 401
    add_user(app, "bo", "pw", "1")
    login(client, "bo", "pw")
    assert client.get("/api/qr", headers={"X-Api-Key": OPS_KEY + "x"}).status_code == 401
    assert node.requests == []


def test_ops_key_disabled_when_unset(make_app, node: FakeNode) -> None:  # type: ignore[no-untyped-def]
    app = make_app(WHATSAPP_SERVER_URL=node.url, OPS_API_KEY="")
    assert app.test_client().get("/api/qr?user_id=1", headers={"X-Api-Key": ""}).status_code == 401


@pytest.mark.parametrize("user_id", ["../etc", "a b", "x" * 65, "", "1;drop", "é"])
def test_bad_user_id_is_400(app, node: FakeNode, user_id: str) -> None:  # type: ignore[no-untyped-def]
    resp = app.test_client().get("/api/qr", query_string={"user_id": user_id}, headers=OPS)
    assert resp.status_code == 400
    assert resp.get_json()["error"] == "invalid_user_id"
    assert node.requests == []


def test_missing_user_id_with_ops_key_is_400(app) -> None:  # type: ignore[no-untyped-def]
    resp = app.test_client().get("/api/qr", headers=OPS)
    assert resp.status_code == 400


def test_logged_in_user_cannot_read_another_tenant(app, node: FakeNode) -> None:  # type: ignore[no-untyped-def]
    add_user(app, "cy", "pw", "1")
    client = app.test_client()
    login(client, "cy", "pw")
    assert client.get("/api/qr?user_id=2").status_code == 403
    assert client.get("/api/qr?user_id=1").status_code == 200
    assert [r["path"] for r in node.requests] == ["/tenants/1/qr"]


def test_send_relays_and_stores_the_outgoing_message(app, node: FakeNode) -> None:  # type: ignore[no-untyped-def]
    node.behaviour["4"] = "connected"
    resp = app.test_client().post(
        "/api/whatsapp/send?user_id=4", headers=OPS, json={"to": "5511999990000", "text": "olá"}
    )
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.get_json()["status"] == "sent"
    call = node.requests[-1]
    assert call["method"] == "POST" and call["path"] == "/tenants/4/messages"
    assert json.loads(call["body"]) == {"to": "5511999990000", "text": "olá"}
    assert call["headers"].get("X-Api-Key") == NODE_KEY
    with app.app_context():
        rows = db.session.execute(select(Message)).scalars().all()
        assert [(m.tenant_id, m.direction, m.sender, m.text) for m in rows] == [("4", "out", "5511999990000", "olá")]


def test_send_not_connected_relays_503_and_stores_nothing(app, node: FakeNode) -> None:  # type: ignore[no-untyped-def]
    resp = app.test_client().post("/api/whatsapp/send?user_id=4", headers=OPS, json={"to": "55", "text": "x"})
    assert resp.status_code == 503
    assert resp.get_json()["error"] == "not_connected"
    with app.app_context():
        assert db.session.execute(select(Message)).first() is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"data": "not json", "content_type": "application/json"},
        {"data": "to=1&text=x", "content_type": "application/x-www-form-urlencoded"},
        {"json": ["to", "text"]},
        {"json": {"to": "", "text": "x"}},
        {"json": {"to": "55", "text": ""}},
        {"json": {"to": 55, "text": "x"}},
        {"json": {"to": "55"}},
    ],
)
def test_send_bad_input_is_400(app, node: FakeNode, kwargs) -> None:  # type: ignore[no-untyped-def]
    resp = app.test_client().post("/api/whatsapp/send?user_id=4", headers=OPS, **kwargs)
    assert resp.status_code == 400
    assert "error" in resp.get_json()
    assert node.requests == []


def test_api_404_and_405_are_json(app) -> None:  # type: ignore[no-untyped-def]
    client = app.test_client()
    missing = client.get("/api/nope")
    assert missing.status_code == 404 and missing.get_json()["error"] == "not_found"
    wrong = client.post("/api/qr", headers=OPS)
    assert wrong.status_code == 405 and wrong.get_json()["error"] == "method_not_allowed"
    assert "GET" in wrong.headers["Allow"]


def test_node_rejecting_our_key_is_502_not_401(make_app, node: FakeNode) -> None:  # type: ignore[no-untyped-def]
    app = make_app(WHATSAPP_SERVER_URL=node.url, WHATSAPP_API_KEY="not-the-node-key")
    resp = app.test_client().get("/api/qr?user_id=1", headers=OPS)
    assert resp.status_code == 502
    body = resp.get_json()
    assert body["error"] == "whatsapp_auth_failed" and body["url"] == f"{node.url}/tenants/1/qr"
    assert "not-the-node-key" not in resp.get_data(as_text=True)


def test_node_answering_without_json_is_502(make_app) -> None:  # type: ignore[no-untyped-def]
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Html(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # type: ignore[no-untyped-def]
            pass

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", "13")
            self.end_headers()
            self.wfile.write(b"<html></html>")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Html)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        app = make_app(WHATSAPP_SERVER_URL=f"http://127.0.0.1:{server.server_address[1]}")
        resp = app.test_client().get("/api/whatsapp-status?user_id=1", headers=OPS)
        assert resp.status_code == 502
        assert resp.get_json()["error"] == "whatsapp_bad_response"
    finally:
        server.shutdown()
        server.server_close()
