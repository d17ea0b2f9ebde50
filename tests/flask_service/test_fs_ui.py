"""The web UI's design: one stylesheet served by the app (the CSP allows no other), the app's name
(APP_NAME) in every title and header, pages readable on a phone, and the session state as a badge."""

from __future__ import annotations

import html as html_lib
import json
import re

import pytest
from flask_service_testlib import FakeNode, add_user, free_port, login

from flask_service.config import DEFAULT_APP_NAME, ConfigError, load_config
from flask_service.pages import STATE_BADGES

STYLESHEET = '<link rel="stylesheet" href="/static/app.css">'
VIEWPORT = '<meta name="viewport" content="width=device-width, initial-scale=1">'


def pages(app) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """The HTML of every page a person sees: /login (anonymous), then /connect and /dashboard."""
    add_user(app, "ana", "pw", "1")
    client = app.test_client()
    seen = {"/login": client.get("/login").get_data(as_text=True)}
    login(client, "ana", "pw")
    for path in ("/connect", "/dashboard"):
        resp = client.get(path)
        assert resp.status_code == 200, path
        seen[path] = resp.get_data(as_text=True)
    return seen


def title(html: str) -> str:
    match = re.search(r"<title>(.*?)</title>", html, re.S)
    assert match, "no <title>"
    return html_lib.unescape(match.group(1))


def test_the_stylesheet_is_served_and_needs_no_network(make_app) -> None:  # type: ignore[no-untyped-def]
    resp = make_app().test_client().get("/static/app.css")
    assert resp.status_code == 200
    assert resp.mimetype == "text/css"
    css = resp.get_data(as_text=True)
    assert "body" in css and "#qr" in css and "@media" in css
    # Deployments may run offline: no CDN, no web fonts, nothing fetched from elsewhere.
    for remote in ("@import", "@font-face", "http://", "https://", "//fonts."):
        assert remote not in css, remote


def test_every_page_links_the_stylesheet_and_suits_a_phone(make_app, node: FakeNode) -> None:  # type: ignore[no-untyped-def]
    for path, html in pages(make_app(WHATSAPP_SERVER_URL=node.url)).items():
        assert html.count(STYLESHEET) == 1, path
        assert VIEWPORT in html, path
        # The CSP allows styles from the app's files only: no <style> blocks, no style="" attributes.
        assert "<style" not in html and not re.search(r"\sstyle=", html), path


def test_the_csp_allows_the_stylesheet_file_and_no_inline_styles(make_app) -> None:  # type: ignore[no-untyped-def]
    csp = make_app().test_client().get("/login").headers["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in csp.split(";"))
    assert directives["style-src"] == "'self'"


def test_titles_and_header_carry_the_default_app_name(make_app, node: FakeNode) -> None:  # type: ignore[no-untyped-def]
    assert DEFAULT_APP_NAME == "WhatsApp Link"
    seen = pages(make_app(WHATSAPP_SERVER_URL=node.url))
    assert title(seen["/login"]) == "Log in · WhatsApp Link"
    assert title(seen["/connect"]) == "Connect WhatsApp · WhatsApp Link"
    assert title(seen["/dashboard"]) == "Messages · WhatsApp Link"
    for html in seen.values():
        assert re.search(r'<a class="brand" href="/">WhatsApp Link</a>', html)
        assert "flask_service" not in html


def test_app_name_from_the_environment(make_app, node: FakeNode, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("APP_NAME", "  Acme <Chat>  ")
    seen = pages(make_app(WHATSAPP_SERVER_URL=node.url))
    assert title(seen["/login"]) == "Log in · Acme <Chat>"
    assert title(seen["/connect"]) == "Connect WhatsApp · Acme <Chat>"
    assert title(seen["/dashboard"]) == "Messages · Acme <Chat>"
    for html in seen.values():
        assert "Acme &lt;Chat&gt;</a>" in html and "<Chat>" not in html  # escaped, in the header too
    # the logged-in header: the person, their tenant and "Log out"
    assert "ana" in seen["/connect"] and "tenant 1" in seen["/connect"] and 'id="logout"' in seen["/connect"]


def test_app_name_config() -> None:
    base = {"APP_ENV": "development"}
    assert load_config(base)["APP_NAME"] == DEFAULT_APP_NAME
    assert load_config({**base, "APP_NAME": "   "})["APP_NAME"] == DEFAULT_APP_NAME
    assert load_config({**base, "APP_NAME": " Sua\tAgenda "})["APP_NAME"] == "Sua Agenda"
    with pytest.raises(ConfigError, match="APP_NAME must be at most 60 characters"):
        load_config({**base, "APP_NAME": "x" * 61})


def badge(html: str) -> tuple[str, str]:
    match = re.search(r'<span id="state-badge" class="badge" data-tone="([a-z]+)">([^<]*)</span>', html)
    assert match, "no status badge"
    return match.group(2), match.group(1)


@pytest.mark.parametrize(
    ("behaviour", "expected"),
    [("qr", ("Waiting for scan", "wait")), ("connected", ("Connected", "ok")), ("expired", ("Code expired", "bad"))],
)
def test_connect_shows_the_session_state_as_a_badge(make_app, node: FakeNode, behaviour, expected) -> None:  # type: ignore[no-untyped-def]
    node.behaviour["1"] = behaviour
    html = pages(make_app(WHATSAPP_SERVER_URL=node.url))["/connect"]
    assert badge(html) == expected
    # connect.js relabels the badge as the state changes, from the same table.
    section = re.search(r'<section id="connect"[^>]*\bdata-badges="([^"]*)"', html)
    assert section, html
    table = json.loads(html_lib.unescape(section.group(1)))
    assert table == {**{k: list(v) for k, v in STATE_BADGES.items()}, "": ["Not connected", "neutral"]}


def test_connect_badge_when_the_server_is_away(make_app) -> None:  # type: ignore[no-untyped-def]
    html = pages(make_app(WHATSAPP_SERVER_URL=f"http://127.0.0.1:{free_port()}"))["/connect"]
    assert badge(html) == ("Server unreachable", "bad")
