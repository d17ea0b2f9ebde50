"""Session hardening: Secure cookie and HSTS in production, POST-only logout, login throttling."""

from __future__ import annotations

import re

from flask_service_testlib import add_user, csrf_from, login, logout


def cookie_attributes(header: str) -> set[str]:
    return {part.strip().split("=", 1)[0].lower() for part in header.split(";")[1:]}


def session_cookies(resp) -> list[str]:  # type: ignore[no-untyped-def]
    return [c for c in resp.headers.getlist("Set-Cookie") if c.startswith("session=")]


def test_production_session_cookie_is_secure_and_hsts_is_sent(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()  # APP_ENV unset means production
    add_user(app, "sofia", "pw", "1")
    client = app.test_client()
    page = client.get("/login")
    resp = login(client, "sofia", "pw")
    assert resp.status_code == 302
    cookies = session_cookies(page) + session_cookies(resp)
    assert len(cookies) == 2, cookies
    for cookie in cookies:
        assert {"secure", "httponly", "samesite"} <= cookie_attributes(cookie), cookie
    for answer in (page, resp, client.get("/health"), client.get("/dashboard")):
        hsts = answer.headers.get("Strict-Transport-Security", "")
        match = re.fullmatch(r"max-age=(\d+)", hsts)
        assert match and int(match.group(1)) >= 180 * 24 * 3600, hsts


def test_development_stays_plain_http(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app(APP_ENV="development")
    add_user(app, "tiago", "pw", "1")
    client = app.test_client()
    resp = login(client, "tiago", "pw")
    assert resp.status_code == 302
    cookies = session_cookies(resp)
    assert cookies and all("secure" not in cookie_attributes(c) for c in cookies), cookies
    assert "Strict-Transport-Security" not in resp.headers
    assert client.get("/dashboard").status_code == 200  # the cookie works over http


def test_logout_is_a_post_with_the_csrf_token(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    add_user(app, "vera", "pw", "1")
    client = app.test_client()
    assert login(client, "vera", "pw").status_code == 302
    html = client.get("/dashboard").get_data(as_text=True)
    assert 'href="/logout"' not in html
    assert re.search(r'<form method="post" action="/logout"[^>]*>\s*<input type="hidden" name="csrf_token"', html)

    # what a link, an <img> or a cross-site form could do
    assert client.get("/logout").status_code == 405
    assert client.post("/logout").status_code == 400
    assert client.post("/logout", data={"csrf_token": "forged"}).status_code == 400
    assert client.get("/dashboard").status_code == 200, "still logged in"

    resp = logout(client)
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/login")
    assert client.get("/dashboard").status_code == 302


def test_logout_token_is_the_sessions_own(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    add_user(app, "rita", "pw", "1")
    add_user(app, "mallory", "pw", "2")
    victim, attacker = app.test_client(), app.test_client()
    login(victim, "rita", "pw")
    login(attacker, "mallory", "pw")
    foreign = csrf_from(attacker.get("/dashboard").get_data(as_text=True))
    assert victim.post("/logout", data={"csrf_token": foreign}).status_code == 400
    assert victim.get("/dashboard").status_code == 200
