"""Session hardening: Secure cookie and HSTS in production, POST-only logout, login throttling."""

from __future__ import annotations

import re

import pytest
from flask_service_testlib import add_user, csrf_from, login, logout

from flask_service.throttle import LoginThrottle, address_key


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


class FakeClock:
    """Stands in for time.monotonic, so lock-outs expire without the test sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def throttled_app(make_app, clock: FakeClock, *, per_account: int = 100, per_address: int = 100, window: int = 60):  # type: ignore[no-untyped-def]
    return make_app(
        LOGIN_MAX_FAILURES_PER_ACCOUNT=per_account,
        LOGIN_MAX_FAILURES_PER_ADDRESS=per_address,
        LOGIN_THROTTLE_WINDOW_S=window,
        LOGIN_THROTTLE_CLOCK=clock,
    )


def attempt(app, username: str, password: str, address: str = "198.51.100.7", **headers: str):  # type: ignore[no-untyped-def]
    """One log-in attempt from a fresh browser at ``address``; returns (response, client)."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    token = csrf_from(client.get("/login").get_data(as_text=True))
    resp = client.post(
        "/login", data={"username": username, "password": password, "csrf_token": token}, headers=headers
    )
    return resp, client


def test_the_finding_50_wrong_passwords_then_the_right_one_does_not_log_in(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()  # the shipped defaults
    add_user(app, "ana", "right-password", "1")
    client = app.test_client()
    statuses = [login(client, "ana", f"guess-{i}").status_code for i in range(50)]
    assert statuses[:5] == [401] * 5
    assert set(statuses[5:]) == {429}
    resp = login(client, "ana", "right-password")
    assert resp.status_code == 429
    assert 0 < int(resp.headers["Retry-After"]) <= 900
    assert client.get("/dashboard").status_code == 302, "still anonymous"


def test_account_lockout_holds_across_addresses_and_expires(make_app) -> None:  # type: ignore[no-untyped-def]
    clock = FakeClock()
    app = throttled_app(make_app, clock, per_account=3, window=60)
    add_user(app, "bia", "right-password", "1")
    for i in range(3):
        assert attempt(app, "bia", "wrong", address=f"198.51.100.{i}")[0].status_code == 401
    # the right password, from an address that never failed, case variant of the name
    for name in ("bia", "BIA"):
        resp, client = attempt(app, name, "right-password", address="203.0.113.9")
        assert resp.status_code == 429
        assert resp.headers["Retry-After"] == "60"
        page = resp.get_data(as_text=True)
        assert 'id="login-error"' in page and "Too many failed log-in attempts. Try again in 1 minute." in page
        assert client.get("/dashboard").status_code == 302
    clock.advance(59)
    resp, _ = attempt(app, "bia", "right-password")
    assert resp.status_code == 429 and resp.headers["Retry-After"] == "1"
    clock.advance(1)
    resp, client = attempt(app, "bia", "right-password")
    assert resp.status_code == 302
    assert client.get("/dashboard").status_code == 200


def test_address_lockout_covers_every_account_from_that_address(make_app) -> None:  # type: ignore[no-untyped-def]
    clock = FakeClock()
    app = throttled_app(make_app, clock, per_address=4, window=300)
    add_user(app, "caio", "right-password", "1")
    for name in ("u1", "u2", "u3", "caio"):
        assert attempt(app, name, "wrong", address="192.0.2.10")[0].status_code == 401
    resp, _ = attempt(app, "caio", "right-password", address="192.0.2.10")
    assert resp.status_code == 429 and resp.headers["Retry-After"] == "300"
    # another client is not punished for that address
    assert attempt(app, "caio", "right-password", address="192.0.2.11")[0].status_code == 302
    # an IPv6 client owns its whole /64: hopping inside it does not reset the count
    for host in range(1, 5):
        attempt(app, "u9", "wrong", address=f"2001:db8:1:2::{host}")
    assert attempt(app, "u9", "wrong", address="2001:db8:1:2::ffff")[0].status_code == 429
    assert attempt(app, "u9", "wrong", address="2001:db8:1:3::1")[0].status_code == 401


def test_json_clients_get_a_json_429(make_app) -> None:  # type: ignore[no-untyped-def]
    clock = FakeClock()
    app = throttled_app(make_app, clock, per_account=1, window=120)
    add_user(app, "davi", "right-password", "1")
    attempt(app, "davi", "wrong")
    resp, _ = attempt(app, "davi", "right-password", Accept="application/json")
    assert resp.status_code == 429
    assert resp.headers["Retry-After"] == "120"
    body = resp.get_json()
    assert body["error"] == "too_many_attempts" and body["retry_after"] == 120
    assert "2 minutes" in body["message"]
    assert "right-password" not in resp.get_data(as_text=True)


def test_a_successful_login_clears_the_account_counter(make_app) -> None:  # type: ignore[no-untyped-def]
    clock = FakeClock()
    app = throttled_app(make_app, clock, per_account=3)
    add_user(app, "edu", "right-password", "1")
    for _ in range(3):
        assert attempt(app, "edu", "wrong")[0].status_code == 401
        assert attempt(app, "edu", "wrong")[0].status_code == 401
        assert attempt(app, "edu", "right-password")[0].status_code == 302


def test_forwarded_for_is_believed_only_from_configured_proxies(make_app) -> None:  # type: ignore[no-untyped-def]
    limits = {"LOGIN_MAX_FAILURES_PER_ADDRESS": 2, "LOGIN_THROTTLE_CLOCK": FakeClock()}
    direct = make_app(**limits)
    # without TRUSTED_PROXIES a forged header buys no fresh addresses
    for i in range(2):
        attempt(direct, f"user{i}", "wrong", address="192.0.2.1", **{"X-Forwarded-For": f"198.51.100.{i}"})
    resp, _ = attempt(direct, "user9", "wrong", address="192.0.2.1", **{"X-Forwarded-For": "198.51.100.99"})
    assert resp.status_code == 429

    # behind one proxy (Railway's edge), clients are told apart by the address it forwards
    proxied = make_app(TRUSTED_PROXIES=1, **limits)
    for i in range(2):
        attempt(proxied, f"user{i}", "wrong", address="10.0.0.2", **{"X-Forwarded-For": "198.51.100.1"})
    assert (
        attempt(proxied, "user9", "wrong", address="10.0.0.2", **{"X-Forwarded-For": "198.51.100.1"})[0].status_code
        == 429
    )
    other = attempt(proxied, "user9", "wrong", address="10.0.0.2", **{"X-Forwarded-For": "198.51.100.2"})[0]
    assert other.status_code == 401
    # only the hop the proxy appended counts: a value the client put in front is ignored
    spoofed = {"X-Forwarded-For": "203.0.113.50, 198.51.100.1"}
    assert attempt(proxied, "user9", "wrong", address="10.0.0.2", **spoofed)[0].status_code == 429


def test_trusted_proxies_is_validated() -> None:
    from flask_service.config import ConfigError, load_config

    assert load_config({"APP_ENV": "development", "TRUSTED_PROXIES": "1"})["TRUSTED_PROXIES"] == 1
    assert load_config({"APP_ENV": "development"})["TRUSTED_PROXIES"] == 0
    for bad in ("-1", "6", "one", "9" * 5000, "\u0661"):
        with pytest.raises(ConfigError, match="TRUSTED_PROXIES"):
            load_config({"APP_ENV": "development", "TRUSTED_PROXIES": bad})


def test_throttle_table_stays_bounded_and_forgets_old_failures() -> None:
    clock = FakeClock()
    throttle = LoginThrottle(max_per_account=2, max_per_address=500, window_s=10, clock=clock, max_keys=50)
    for i in range(500):
        throttle.failure(f"name{i}", "192.0.2.1")
    assert len(throttle) <= 50
    assert throttle.retry_after("anyone", "192.0.2.1") == 10  # the address key is the most recent: kept
    clock.advance(10)
    throttle.failure("last", "192.0.2.2")
    assert len(throttle) == 2  # everything older than the window was dropped
    assert throttle.retry_after("name499", "192.0.2.1") == 0


@pytest.mark.parametrize(
    "address, key",
    [
        ("192.0.2.1", "192.0.2.1"),
        ("::ffff:192.0.2.1", "192.0.2.1"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        (None, "unknown"),
        ("not an address", "not an address"),
    ],
)
def test_address_keys(address, key) -> None:  # type: ignore[no-untyped-def]
    assert address_key(address) == key
