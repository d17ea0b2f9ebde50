"""/health, login/logout, /connect and /dashboard."""

from __future__ import annotations

import re

from flask_service_testlib import FakeNode, add_user, create_app, csrf_from, db, free_port, login, logout
from sqlalchemy import select

from flask_service.models import Message

FAKE_PASSWORD = "Sup3rS3cret"  # interpolated, so no credential-looking URL is committed


def test_health_ok(make_app) -> None:  # type: ignore[no-untyped-def]
    resp = make_app().test_client().get("/health")
    assert resp.status_code == 200
    assert resp.get_json() == {"status": "ok", "db": "ok"}


def test_health_503_when_database_unreachable_without_leaking_the_password() -> None:
    port = free_port()
    app = create_app({"DATABASE_URL": f"postgresql://app:{FAKE_PASSWORD}@127.0.0.1:{port}/app", "SECRET_KEY": "x"})
    resp = app.test_client().get("/health")
    assert resp.status_code == 503
    body = resp.get_json()
    assert body["status"] == "error" and body["db"] == "error"
    assert FAKE_PASSWORD not in resp.get_data(as_text=True)


def test_login_with_good_and_bad_password(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    add_user(app, "maria", "correct horse", "1")
    client = app.test_client()
    bad = login(client, "maria", "wrong")
    assert bad.status_code == 401
    assert "Invalid username or password" in bad.get_data(as_text=True)
    assert client.get("/dashboard").status_code == 302  # still anonymous
    unknown = login(client, "nobody", "correct horse")
    assert unknown.status_code == 401
    good = login(client, "maria", "correct horse")
    assert good.status_code == 302
    assert good.headers["Location"].endswith("/connect")
    assert client.get("/dashboard").status_code == 200
    logout(client)
    assert client.get("/dashboard").status_code == 302


def test_login_requires_the_csrf_token(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    add_user(app, "joao", "pw", "1")
    client = app.test_client()
    client.get("/login")
    missing = client.post("/login", data={"username": "joao", "password": "pw"})
    assert missing.status_code == 400
    forged = client.post("/login", data={"username": "joao", "password": "pw", "csrf_token": "forged"})
    assert forged.status_code == 400
    assert client.get("/dashboard").status_code == 302


def test_login_next_is_only_followed_to_local_paths(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    add_user(app, "lia", "pw", "1")
    client = app.test_client()
    token = csrf_from(client.get("/login").get_data(as_text=True))
    resp = client.post(
        "/login", data={"username": "lia", "password": "pw", "csrf_token": token, "next": "https://evil.example/"}
    )
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/connect")
    logout(client)
    token = csrf_from(client.get("/login").get_data(as_text=True))
    resp = client.post("/login", data={"username": "lia", "password": "pw", "csrf_token": token, "next": "/dashboard"})
    assert resp.headers["Location"].endswith("/dashboard")


def test_pages_redirect_anonymous_users_to_login(make_app) -> None:  # type: ignore[no-untyped-def]
    client = make_app().test_client()
    for path in ("/connect", "/dashboard"):
        resp = client.get(path)
        assert resp.status_code == 302
        assert "/login" in resp.headers["Location"]


def test_connect_renders_the_qr_image_but_never_the_raw_qr(make_app, node: FakeNode) -> None:  # type: ignore[no-untyped-def]
    app = make_app(WHATSAPP_SERVER_URL=node.url)
    add_user(app, "rui", "pw", "3")
    client = app.test_client()
    login(client, "rui", "pw")
    resp = client.get("/connect")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    img = re.search(r"<img[^>]*\bid=\"qr\"[^>]*>", html)
    assert img, html
    assert f'src="{FakeNode.QR_DATA_URL}"' in img.group(0)
    assert FakeNode.QR_RAW not in html
    assert "RAWQRSECRET" not in html
    assert 'src="/static/connect.js"' in html
    assert resp.headers["Cache-Control"] == "no-store"
    assert node.requests[-1]["path"] == "/tenants/3/qr"
    js = client.get("/static/connect.js").get_data(as_text=True)
    assert "2000" in js and "qr_data_url" in js


def test_connect_shows_connected_when_the_session_is_up(make_app, node: FakeNode) -> None:  # type: ignore[no-untyped-def]
    node.behaviour["3"] = "connected"
    app = make_app(WHATSAPP_SERVER_URL=node.url)
    add_user(app, "eva", "pw", "3")
    client = app.test_client()
    login(client, "eva", "pw")
    html = client.get("/connect").get_data(as_text=True)
    assert 'data-state="connected"' in html
    assert "WhatsApp connected" in html
    assert re.search(r'<img[^>]*id="qr"[^>]*hidden', html)


def test_connect_page_survives_an_unreachable_server(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app(WHATSAPP_SERVER_URL=f"http://127.0.0.1:{free_port()}")
    add_user(app, "ivo", "pw", "1")
    client = app.test_client()
    login(client, "ivo", "pw")
    resp = client.get("/connect")
    assert resp.status_code == 200
    assert 'data-state="whatsapp_unreachable"' in resp.get_data(as_text=True)


def test_dashboard_lists_only_the_tenants_messages(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    add_user(app, "zeca", "pw", "1")
    with app.app_context():
        db.session.add_all(
            [
                Message(tenant_id="1", message_id="m1", sender="5511", text="mine <b>", direction="in"),
                Message(tenant_id="2", message_id="m2", sender="5522", text="someone else's", direction="in"),
            ]
        )
        db.session.commit()
        assert len(db.session.execute(select(Message)).all()) == 2
    client = app.test_client()
    login(client, "zeca", "pw")
    html = client.get("/dashboard").get_data(as_text=True)
    assert "mine &lt;b&gt;" in html
    assert "someone else" not in html
