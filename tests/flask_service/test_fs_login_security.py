"""Session hardening: Secure cookie and HSTS in production, POST-only logout, login throttling."""

from __future__ import annotations

import re

from flask_service_testlib import add_user, login


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
