"""Pages for people: /login, /logout, /connect (QR code), /dashboard (messages)."""

from __future__ import annotations

import hmac
import math
import secrets
import time
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import LoginManager, current_user, login_required, login_user, logout_user
from sqlalchemy import select, update

from . import whatsapp
from .config import DEFAULT_APP_NAME
from .errors import json_error, wants_json
from .models import Message, SessionState, User, db, verify_password
from .resolver import UnknownTenant
from .throttle import LoginThrottle

bp = Blueprint("pages", __name__)
login_manager = LoginManager()
login_manager.login_view = "pages.login"
login_manager.login_message = None  # type: ignore[assignment]

CSRF_SESSION_KEY = "_csrf_token"
# The user's session generation at log-in; a cookie whose generation is no longer the user's opens nothing.
GENERATION_SESSION_KEY = "_generation"
# Longer input is refused with 400 before any work (no hashing, no database, no throttle key).
MAX_USERNAME_LEN = 80  # users.username is VARCHAR(80)
MAX_PASSWORD_LEN = 1024
# The status badge of a WhatsApp session state (node's states and the errors flask shows on /connect):
# label and tone (ok, wait, bad, neutral; colours in static/app.css). connect.js gets the same table.
STATE_BADGES: dict[str, tuple[str, str]] = {
    "qr": ("Waiting for scan", "wait"),
    "connected": ("Connected", "ok"),
    "qr_expired": ("Code expired", "bad"),
    "starting": ("Starting", "wait"),
    "reconnecting": ("Reconnecting", "wait"),
    "waiting": ("Waiting for server", "wait"),
    "qr_not_ready": ("Preparing code", "wait"),
    "stopped": ("Not linked", "neutral"),
    "logged_out": ("Unlinked", "neutral"),
    "failed": ("Failed", "bad"),
    "whatsapp_unreachable": ("Server unreachable", "bad"),
    "whatsapp_auth_failed": ("Server refused", "bad"),
    "unknown_tenant": ("Not configured", "bad"),
}
OTHER_STATE_BADGE = ("Not connected", "neutral")


def state_badge(state: str | None) -> tuple[str, str]:
    """(label, tone) of the status badge for a session state; unknown states get a neutral one."""
    return STATE_BADGES.get(state or "", OTHER_STATE_BADGE)


def init_app(app: Flask) -> None:
    login_manager.init_app(app)
    app.jinja_env.globals["csrf_token"] = csrf_token
    app.jinja_env.globals["state_badge"] = state_badge
    # APP_NAME (config.py) in every page's title and header.
    app.context_processor(lambda: {"app_name": current_app.config.get("APP_NAME") or DEFAULT_APP_NAME})
    app.config.setdefault("LOGIN_MAX_FAILURES_PER_ACCOUNT", 5)
    # Higher than per account: people behind one NAT share an address.
    app.config.setdefault("LOGIN_MAX_FAILURES_PER_ADDRESS", 20)
    app.config.setdefault("LOGIN_THROTTLE_WINDOW_S", 900)
    app.extensions["login_throttle"] = LoginThrottle(
        max_per_account=int(app.config["LOGIN_MAX_FAILURES_PER_ACCOUNT"]),
        max_per_address=int(app.config["LOGIN_MAX_FAILURES_PER_ADDRESS"]),
        window_s=float(app.config["LOGIN_THROTTLE_WINDOW_S"]),
        clock=app.config.get("LOGIN_THROTTLE_CLOCK") or time.monotonic,
    )


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    try:
        user = db.session.get(User, int(user_id))
    except (TypeError, ValueError):
        return None
    # Checked on every request: a cookie from before a log-out, a new password or an unlink is refused.
    if user is None or session.get(GENERATION_SESSION_KEY) != user.session_generation:
        return None
    return user


def revoke_sessions(tenant_id: str | None = None) -> None:
    """End the sessions of the logged-in user (or of every user of ``tenant_id``) by bumping their generation.

    The current browser keeps its session when it belongs to one of them (it is stamped again): only
    other cookies, such as a copied one, stop working.
    """
    user_id = current_user.id if current_user.is_authenticated else None
    query = update(User).values(session_generation=User.session_generation + 1)
    if tenant_id is not None:
        query = query.where(User.tenant_id == tenant_id)
    elif user_id is not None:
        query = query.where(User.id == user_id)
    else:
        return
    db.session.execute(query)
    db.session.commit()
    if user_id is not None:
        user = db.session.get(User, user_id)
        if user is not None and (tenant_id is None or user.tenant_id == tenant_id):
            session[GENERATION_SESSION_KEY] = user.session_generation


@login_manager.unauthorized_handler
def unauthorized():  # type: ignore[no-untyped-def]
    if wants_json():
        return json_error(401, "unauthorized", "Log in or send X-Api-Key")
    return redirect(url_for("pages.login", next=request.full_path if request.query_string else request.path))


def csrf_token() -> str:
    token = session.get(CSRF_SESSION_KEY)
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        session[CSRF_SESSION_KEY] = token
    return token


def check_csrf() -> None:
    expected = session.get(CSRF_SESSION_KEY)
    sent = request.form.get("csrf_token", "")
    if not isinstance(expected, str) or not expected or not hmac.compare_digest(expected.encode(), sent.encode()):
        abort(400, description="The form expired or is invalid (CSRF token mismatch); reload the page and try again.")


def _safe_next(target: str | None) -> str:
    if target:
        parts = urlsplit(target)
        if (
            not parts.scheme
            and not parts.netloc
            and target.startswith("/")
            and not target.startswith("//")
            and "\\" not in target
        ):
            return target
    return url_for("pages.connect")


@bp.get("/")
def index():  # type: ignore[no-untyped-def]
    return redirect(url_for("pages.dashboard" if current_user.is_authenticated else "pages.login"))


@bp.route("/login", methods=["GET", "POST"])
def login():  # type: ignore[no-untyped-def]
    next_url = request.values.get("next")
    if request.method == "GET":
        if current_user.is_authenticated:
            return redirect(_safe_next(next_url))
        return render_template("login.html", error=None, username="", next=next_url or "")

    check_csrf()
    username = request.form.get("username") or ""
    password = request.form.get("password") or ""
    if len(username) > MAX_USERNAME_LEN or len(password) > MAX_PASSWORD_LEN:
        message = f"Usernames have at most {MAX_USERNAME_LEN} characters and passwords at most {MAX_PASSWORD_LEN}."
        if request.accept_mimetypes.best_match(["text/html", "application/json"]) == "application/json":
            return json_error(400, "input_too_long", message)
        return render_template("login.html", error=message, username="", next=next_url or ""), 400
    username = username.strip()
    throttle: LoginThrottle = current_app.extensions["login_throttle"]
    # Checked before the password: while locked, even the right password must not tell a guesser so.
    wait = throttle.retry_after(username, request.remote_addr)
    if wait:
        return _too_many_attempts(wait, username, next_url)
    user = None
    if username:
        user = db.session.execute(select(User).where(User.username == username)).scalar_one_or_none()
    # The same hash work whether the account exists or not: timing must not tell usernames apart.
    if not verify_password(user, password) or user is None:
        throttle.failure(username, request.remote_addr)
        return (
            render_template(
                "login.html", error="Invalid username or password.", username=username, next=next_url or ""
            ),
            401,
        )
    throttle.success(username)
    session.clear()  # no session fixation: a new CSRF token after login
    login_user(user)
    session[GENERATION_SESSION_KEY] = user.session_generation
    return redirect(_safe_next(next_url))


def _too_many_attempts(wait: int, username: str, next_url: str | None):  # type: ignore[no-untyped-def]
    minutes = math.ceil(wait / 60)
    message = f"Too many failed log-in attempts. Try again in {minutes} minute{'' if minutes == 1 else 's'}."
    headers = {"Retry-After": str(wait), "Cache-Control": "no-store"}
    if request.accept_mimetypes.best_match(["text/html", "application/json"]) == "application/json":
        response, status = json_error(429, "too_many_attempts", message, retry_after=wait)
        response.headers.update(headers)
        return response, status
    page = render_template("login.html", error=message, username=username, next=next_url or "")
    return page, 429, headers


# POST with the form's CSRF token: a link or an image on another site must not be able to log people out.
@bp.post("/logout")
def logout():  # type: ignore[no-untyped-def]
    check_csrf()
    if current_user.is_authenticated:
        revoke_sessions()  # a copy of this cookie must not stay logged in
    logout_user()
    session.clear()
    return redirect(url_for("pages.login"))


@bp.get("/connect")
@login_required
def connect():  # type: ignore[no-untyped-def]
    tenant_id = current_user.tenant_id
    qr_data_url = None
    state = "starting"
    message = "Waiting for the QR code…"
    try:
        node = whatsapp.call_node("GET", tenant_id, "qr")
    except UnknownTenant:
        node = None
        state = "unknown_tenant"
        message = f"No WhatsApp server is configured for tenant {tenant_id}."
    if node is not None:
        body = node.body if isinstance(node.body, dict) else {}
        if (
            node.status == 200
            and isinstance(body.get("qr_data_url"), str)
            and body["qr_data_url"].startswith("data:image/")
        ):
            qr_data_url = body["qr_data_url"]
            state = "qr"
            message = "Scan this QR code with WhatsApp (Settings → Linked devices)."
        elif node.status == 409:
            state = "connected"
            message = "WhatsApp connected."
        elif node.status == 410:
            # node waits for a request before pairing again; the page offers it ("Get a new code").
            state = "qr_expired"
            message = "The QR code expired. Get a new code to link WhatsApp."
        else:
            state = str(body.get("error") or "waiting")
            message = str(body.get("message") or "Waiting for the WhatsApp server…")
    from .sessions import simulate_scan_available

    response = render_template(
        "connect.html",
        tenant_id=tenant_id,
        qr_data_url=qr_data_url,
        state=state,
        message=message,
        simulate_scan=node is not None and simulate_scan_available(tenant_id),
        badges={**{state: list(badge) for state, badge in STATE_BADGES.items()}, "": list(OTHER_STATE_BADGE)},
    )
    return response, 200, {"Cache-Control": "no-store"}


@bp.get("/dashboard")
@login_required
def dashboard():  # type: ignore[no-untyped-def]
    tenant_id = current_user.tenant_id
    messages = (
        db.session.execute(
            select(Message)
            .where(Message.tenant_id == tenant_id)
            .order_by(Message.created_at.desc(), Message.id.desc())
            .limit(200)
        )
        .scalars()
        .all()
    )
    session_state = db.session.get(SessionState, tenant_id)
    return render_template("dashboard.html", tenant_id=tenant_id, messages=messages, session_state=session_state)
