"""Findings of an attacker-minded review of flask_service: each test failed before its fix."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from flask_service_testlib import STRONG_SECRET_KEY, add_user, csrf_from, free_port, login, logout, subprocess_env

from flask_service import create_app
from flask_service.config import ConfigError, load_config

# deploytool's .env.example writes `<NAME>=change-me` for every secret (deploytool/render/env_example.py)
KEY_NAMES = ("SECRET_KEY", "OPS_API_KEY", "WHATSAPP_API_KEY", "WEBHOOK_SECRET")
ENV_EXAMPLE_PLACEHOLDER = "change-me"
STRONG = {name: f"{n}-Zq8wX3vN7pL2mK9rT4yB6cD1fG5hJ0sA" for n, name in enumerate(KEY_NAMES)}

# --- 17: every key and secret meets the production rule -------------------------------------------------

WEAK_VALUES = [
    ENV_EXAMPLE_PLACEHOLDER,
    "x",
    "change-me-change-me-change-me-change-me",  # long and varied enough, still the placeholder
    "CHANGE_ME_" + STRONG_SECRET_KEY,
    "replace-me-Zq8wX3vN7pL2mK9rT4yB6cD1fG5hJ0sA",
    STRONG_SECRET_KEY[:31],
    "ab" * 40,
]


@pytest.mark.parametrize("name", KEY_NAMES)
@pytest.mark.parametrize("weak", WEAK_VALUES)
def test_every_weak_or_placeholder_key_is_refused_in_production_by_name(name: str, weak: str) -> None:
    for app_env in ({}, {"APP_ENV": "production"}):
        with pytest.raises(ConfigError) as info:
            load_config({**STRONG, **app_env, name: weak})
        message = str(info.value)
        assert message.startswith(f"{name} is too weak") and "\n" not in message
        assert weak not in message


def test_development_keeps_accepting_easy_keys() -> None:
    cfg = load_config({"APP_ENV": "development", **{name: ENV_EXAMPLE_PLACEHOLDER for name in KEY_NAMES}})
    assert cfg["OPS_API_KEY"] == ENV_EXAMPLE_PLACEHOLDER
    # unset optional keys stay allowed in production: that way in is simply closed
    cfg = load_config({"SECRET_KEY": STRONG["SECRET_KEY"]})
    assert cfg["OPS_API_KEY"] == "" and cfg["WEBHOOK_SECRET"] == ""
    assert load_config(STRONG)["OPS_API_KEY"] == STRONG["OPS_API_KEY"]


def test_the_app_refuses_the_env_example_ops_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # the finding: APP_ENV=production, OPS_API_KEY=change-me, and `X-Api-Key: change-me` was let in
    for name, value in STRONG.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("OPS_API_KEY", ENV_EXAMPLE_PLACEHOLDER)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'db.sqlite3'}")
    with pytest.raises(ConfigError, match=r"^OPS_API_KEY is too weak"):
        create_app()


def test_serve_with_a_placeholder_webhook_secret_exits_with_one_line(tmp_path: Path) -> None:
    env = {**STRONG, "WEBHOOK_SECRET": ENV_EXAMPLE_PLACEHOLDER, "PORT": str(free_port())}
    result = subprocess.run(
        [sys.executable, "-m", "flask_service", "serve"],
        cwd=tmp_path,
        env=subprocess_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if "flask_service: error:" in line]
    assert len(lines) == 1 and "WEBHOOK_SECRET is too weak" in lines[0], result.stderr
    assert ENV_EXAMPLE_PLACEHOLDER not in result.stderr and "Traceback" not in result.stderr


# --- 18: a failed log-in costs the same hash work whether the username exists or not --------------------


def test_unknown_and_known_usernames_cost_one_hash_check_of_the_same_kind(make_app, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import werkzeug.security

    from flask_service import models

    app = make_app()
    with app.app_context():
        user = models.User(username="known", tenant_id="1")
        user.set_password("right-password")  # how real accounts are made (create-user): the default cost
        models.db.session.add(user)
        models.db.session.commit()
    calls: list[str] = []
    real_check = werkzeug.security.check_password_hash

    def counting_check(pwhash: str, password: str) -> bool:
        calls.append(pwhash.split("$", 1)[0])  # the method and its cost, e.g. scrypt:32768:8:1
        return real_check(pwhash, password)

    monkeypatch.setattr(models, "check_password_hash", counting_check)
    methods = {}
    for username in ("known", "nobody-has-this-name", "NOBODY", ""):
        calls.clear()
        assert login(app.test_client(), username, "wrong-password").status_code == 401
        assert len(calls) == 1, f"{username!r}: {calls}"
        methods[username] = calls[0]
    assert len(set(methods.values())) == 1, methods  # the very same method and cost on every path
    assert methods["known"].startswith("scrypt:")


# --- 19: a logged-out, password-changed or unlinked session cookie opens nothing ------------------------


def _session_cookie(client) -> str:  # type: ignore[no-untyped-def]
    cookie = client.get_cookie("session")
    assert cookie is not None
    return cookie.value


def _with_cookie(app, value: str):  # type: ignore[no-untyped-def]
    client = app.test_client()
    client.set_cookie("session", value)
    return client


def test_a_cookie_kept_past_logout_opens_nothing(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    add_user(app, "lia", "pw", "1")
    client = app.test_client()
    assert login(client, "lia", "pw").status_code == 302
    kept = _session_cookie(client)
    assert _with_cookie(app, kept).get("/dashboard").status_code == 200
    assert logout(client).status_code == 302
    stolen = _with_cookie(app, kept)
    resp = stolen.get("/dashboard")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]
    assert stolen.get("/api/whatsapp-status").status_code == 401
    # logging in again works, and gets a cookie of its own
    assert login(client, "lia", "pw").status_code == 302
    assert client.get("/dashboard").status_code == 200
    assert _with_cookie(app, kept).get("/dashboard").status_code == 302


def test_a_new_password_ends_every_session(make_app) -> None:  # type: ignore[no-untyped-def]
    from flask_service.models import User, db

    app = make_app()
    add_user(app, "rui", "pw", "1")
    client = app.test_client()
    login(client, "rui", "pw")
    assert client.get("/dashboard").status_code == 200
    with app.app_context():
        user = db.session.execute(db.select(User).where(User.username == "rui")).scalar_one()
        user.set_password("a-new-password")
        db.session.commit()
    assert client.get("/dashboard").status_code == 302


def test_unlinking_whatsapp_ends_the_tenants_other_sessions(make_app, node) -> None:  # type: ignore[no-untyped-def]
    app = make_app(WHATSAPP_SERVER_URL=node.url)
    add_user(app, "ivo", "pw", "3")
    add_user(app, "eva", "pw", "3")
    add_user(app, "max", "pw", "4")
    here, elsewhere, colleague, other_tenant = (app.test_client() for _ in range(4))
    login(here, "ivo", "pw")
    login(elsewhere, "ivo", "pw")
    login(colleague, "eva", "pw")
    login(other_tenant, "max", "pw")
    page = here.get("/dashboard").get_data(as_text=True)
    token = csrf_from(page)
    resp = here.post("/whatsapp/unlink", data={"csrf_token": token}, headers={"Accept": "application/json"})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert here.get("/dashboard").status_code == 200, "the browser that unlinked stays logged in"
    assert elsewhere.get("/dashboard").status_code == 302
    assert colleague.get("/dashboard").status_code == 302
    assert other_tenant.get("/dashboard").status_code == 200


# --- 20: the log-in form and the throttle are bounded ---------------------------------------------------


def test_overlong_usernames_and_passwords_are_a_400_before_any_work(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    throttle = app.extensions["login_throttle"]
    for username, password in (("a" * 100_000, "pw"), ("ana", "p" * 100_000), ("a" * 81, "pw")):
        for headers in ({}, {"Accept": "application/json"}):
            client = app.test_client()
            token = csrf_from(client.get("/login").get_data(as_text=True))
            resp = client.post(
                "/login", data={"username": username, "password": password, "csrf_token": token}, headers=headers
            )
            assert resp.status_code == 400
            assert len(resp.get_data()) < 10_000, "the input is not echoed back"
            if headers:
                assert resp.get_json()["error"] == "input_too_long"
    assert len(throttle) == 0, "nothing was stored for them"


def test_throttle_memory_does_not_grow_with_the_username_length() -> None:
    import tracemalloc

    from flask_service.throttle import LoginThrottle

    throttle = LoginThrottle(max_per_account=5, max_per_address=20, window_s=900)
    names = [f"{i}-" + "A" * 1_000_000 for i in range(20)]  # allocated before measuring
    tracemalloc.start()
    try:
        for name in names:
            throttle.failure(name, "192.0.2.1")
        kept, _peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert kept < 200_000, f"{kept} bytes kept for 20 failures"  # was 20 MB: the casefolded names
    assert throttle.retry_after(names[0].lower(), "192.0.2.9") == 0  # still counted per account
    for _ in range(4):
        throttle.failure(names[0], "192.0.2.2")
    assert throttle.retry_after(names[0].lower(), "192.0.2.9") > 0


# --- 21: a browser session's send needs the CSRF token; the ops key needs none --------------------------


def test_send_from_a_browser_session_needs_the_csrf_token(make_app, node) -> None:  # type: ignore[no-untyped-def]
    node.behaviour["5"] = "connected"
    app = make_app(WHATSAPP_SERVER_URL=node.url)
    add_user(app, "ana", "pw", "5")
    client = app.test_client()
    login(client, "ana", "pw")
    message = {"to": "5511999990000", "text": "sent by another site"}
    for headers in ({}, {"X-CSRF-Token": "forged"}):
        resp = client.post("/api/whatsapp/send", json=message, headers=headers)
        assert resp.status_code == 403 and resp.get_json()["error"] == "csrf_failed"
    assert not [r for r in node.requests if r["path"].endswith("/messages")], "nothing reached node"
    token = csrf_from(client.get("/dashboard").get_data(as_text=True))
    resp = client.post("/api/whatsapp/send", json=message, headers={"X-CSRF-Token": token})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    ops = app.test_client().post(
        "/api/whatsapp/send?user_id=5", json=message, headers={"X-Api-Key": app.config["OPS_API_KEY"]}
    )
    assert ops.status_code == 200


# --- 22: hostile signed webhook bodies are a 4xx JSON error, never a 500 --------------------------------


def _deliver(client, body: bytes, event: str = "session.status"):  # type: ignore[no-untyped-def]
    import time
    import uuid

    from flask_service_testlib import WEBHOOK_SECRET

    from flask_service.webhook import sign

    timestamp, webhook_id = str(int(time.time())), str(uuid.uuid4())
    headers = {
        "Content-Type": "application/json",
        "X-Webhook-Id": webhook_id,
        "X-Webhook-Event": event,
        "X-Webhook-Timestamp": timestamp,
        "X-Webhook-Signature": sign(WEBHOOK_SECRET, timestamp, webhook_id, event, body),
    }
    return client.post("/webhook/whatsapp", data=body, headers=headers)


def _status(code: str) -> bytes:
    return (
        b'{"event": "session.status", "tenant_id": "1", "data": {"state": "failed", "previous_state": "qr", "code": '
        + code.encode()
        + b"}}"
    )


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(
            b'{"event": "session.status", "tenant_id": "1", "data": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
            id="100k-deep",
        ),
        pytest.param(
            b'{"tenant_id": "1", "data": {"state": "x", "x": ' + b'{"a": ' * 40 + b"1" + b"}" * 40 + b"}}", id="40-deep"
        ),
        pytest.param(_status(str(10**300)), id="code-10**300"),
        pytest.param(_status(str(2**70)), id="code-2**70"),
        pytest.param(_status("1e308"), id="code-1e308"),
        pytest.param(_status("1e400"), id="code-1e400"),
        pytest.param(_status("-1"), id="code-negative"),
        pytest.param(_status("515.5"), id="code-fraction"),
        pytest.param(_status('"99999999999999999999"'), id="code-long-digit-string"),
        pytest.param(_status("NaN"), id="code-NaN"),
        pytest.param(_status("Infinity"), id="code-Infinity"),
        pytest.param(_status("1" * 5000), id="code-5000-digits"),
    ],
)
def test_hostile_signed_webhook_bodies_are_a_4xx_json_error(make_app, body: bytes) -> None:  # type: ignore[no-untyped-def]
    from flask_service.models import SessionState, db

    app = make_app()
    resp = _deliver(app.test_client(), body)
    assert 400 <= resp.status_code < 500, resp.get_data(as_text=True)[:300]
    assert resp.get_json()["error"] in ("invalid_json", "json_too_deep", "invalid_code")
    with app.app_context():
        assert db.session.get(SessionState, "1") is None


def test_sane_close_codes_are_still_stored(make_app) -> None:  # type: ignore[no-untyped-def]
    from flask_service.models import SessionState, db

    app = make_app()
    for raw, expected in (("515", 515), ('"401"', 401), ("440.0", 440), ("null", None), ("0", 0), ("99999", 99999)):
        assert _deliver(app.test_client(), _status(raw)).status_code == 200, raw
        with app.app_context():
            row = db.session.get(SessionState, "1")
            assert row is not None and row.code == expected, raw
