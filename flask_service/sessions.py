"""WhatsApp session controls for a logged-in person: a new QR code, unlinking, and a simulated scan.

* ``POST /connect/new-code``: node keeps an expired session expired until someone asks (WhatsApp limits
  pairing attempts), so this is the asking: node's ``POST /tenants/{id}/connect``.
* ``POST /whatsapp/unlink``: node's ``POST /tenants/{id}/logout`` (the link is removed from the auth
  folder, so a restart does not bring it back).
* ``POST /connect/simulate-scan``: development with the sandbox driver only; node's sandbox scan, called
  server-side with flask's own key so the browser never holds one.

All three are CSRF-protected form posts. A browser without JavaScript gets a redirect to ``/connect`` with
the outcome flashed; ``connect.js`` asks for JSON (``Accept: application/json``) and stays on the page.
Operators do the same with ``OPS_API_KEY`` through ``/api/whatsapp/connect`` and ``/api/whatsapp/logout``.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, current_app, flash, jsonify, redirect, request, url_for
from flask_login import current_user, login_required
from werkzeug.exceptions import BadRequest

from . import whatsapp
from .pages import check_csrf, revoke_sessions
from .resolver import UnknownTenant

log = logging.getLogger(__name__)
bp = Blueprint("sessions", __name__)


def _wants_json() -> bool:
    return request.accept_mimetypes.best_match(["text/html", "application/json"]) == "application/json"


def _finish(status: int, ok: bool, message: str, state: str | None = None):  # type: ignore[no-untyped-def]
    if _wants_json():
        body: dict[str, Any] = {"ok": ok, "message": message, "state": state}
        if not ok:
            body["error"] = state or "failed"
        return jsonify(body), status, {"Cache-Control": "no-store"}
    flash(message, "notice" if ok else "error")
    return redirect(url_for("pages.connect"), 303)


def _csrf_failed():  # type: ignore[no-untyped-def]
    message = "The form expired or is invalid (CSRF token mismatch); reload the page and try again."
    if _wants_json():
        return jsonify({"ok": False, "error": "csrf_failed", "message": message, "state": None}), 400
    flash(message, "error")
    return redirect(url_for("pages.connect"), 303)


def _call(method: str, action: str) -> whatsapp.NodeResponse | None:
    """Node's answer for the logged-in tenant, or None when no WhatsApp server is configured for it."""
    try:
        return whatsapp.call_node(method, current_user.tenant_id, action, {})
    except UnknownTenant:
        return None


def _node_message(node: whatsapp.NodeResponse) -> tuple[str, str]:
    body = node.body if isinstance(node.body, dict) else {}
    return str(body.get("error") or "failed"), str(body.get("message") or f"The WhatsApp server answered {node.status}")


def _no_server():  # type: ignore[no-untyped-def]
    return _finish(
        404, False, f"No WhatsApp server is configured for tenant {current_user.tenant_id}.", "unknown_tenant"
    )


def simulate_scan_available(tenant_id: str) -> bool:
    """Development with the sandbox driver only: a real deployment must never offer a fake pairing."""
    if current_app.config.get("APP_ENV") != "development":
        return False
    try:
        node = whatsapp.call_node("GET", tenant_id, "status")
    except UnknownTenant:
        return False
    return node.status == 200 and isinstance(node.body, dict) and node.body.get("driver") == "sandbox"


@bp.post("/connect/new-code")
@login_required
def new_code():  # type: ignore[no-untyped-def]
    try:
        check_csrf()
    except BadRequest:
        return _csrf_failed()
    node = _call("POST", "connect")
    if node is None:
        return _no_server()
    if node.status == 202:
        return _finish(202, True, "Getting a new QR code…", "starting")
    if node.status == 409:
        return _finish(200, True, "WhatsApp connected.", "connected")
    error, message = _node_message(node)
    return _finish(node.status, False, message, error)


@bp.post("/whatsapp/unlink")
@login_required
def unlink():  # type: ignore[no-untyped-def]
    try:
        check_csrf()
    except BadRequest:
        return _csrf_failed()
    node = _call("POST", "logout")
    if node is None:
        return _no_server()
    error, message = _node_message(node)
    # 404 unknown_tenant: this server never ran a session for the tenant, so nothing is linked.
    if node.status == 200 or (node.status == 404 and error == "unknown_tenant"):
        log.info("tenant %s unlinked its WhatsApp", current_user.tenant_id)
        revoke_sessions(current_user.tenant_id)  # other cookies of the tenant's users stop working
        return _finish(200, True, "WhatsApp unlinked. Scan a new code to link it again.", "logged_out")
    return _finish(node.status, False, message, error)


@bp.post("/connect/simulate-scan")
@login_required
def simulate_scan():  # type: ignore[no-untyped-def]
    if current_app.config.get("APP_ENV") != "development":
        return _finish(404, False, "Simulating a scan exists in development only.", "not_found")
    try:
        check_csrf()
    except BadRequest:
        return _csrf_failed()
    node = _call("POST", "sandbox/scan")
    if node is None:
        return _no_server()
    if node.status == 200:
        return _finish(200, True, "WhatsApp connected.", "connected")
    error, message = _node_message(node)
    if node.status == 404 and error == "not_found":
        message = "Simulating a scan needs the sandbox WhatsApp driver (WA_DRIVER=sandbox)."
    elif error == "not_showing_qr":
        message = "No QR code is showing right now; get a new code first."
    return _finish(node.status, False, message, error)
