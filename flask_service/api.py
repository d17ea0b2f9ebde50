"""Tenant API: /api/qr, /api/whatsapp-status, /api/whatsapp/send, /api/whatsapp/connect, /api/whatsapp/logout.

Auth: a logged-in user acts on their own tenant; with ``X-Api-Key: $OPS_API_KEY``
the caller names the tenant with ``?user_id=N``.
"""

from __future__ import annotations

import hmac
import logging
import uuid
from typing import Any

from flask import Blueprint, current_app, jsonify, request, session
from flask_login import current_user
from sqlalchemy.exc import IntegrityError

from . import whatsapp
from .errors import json_error
from .models import Message, db
from .resolver import UnknownTenant, is_valid_tenant_id

log = logging.getLogger(__name__)
bp = Blueprint("api", __name__, url_prefix="/api")

MAX_TO_LEN = 64
MAX_TEXT_LEN = 4096


class ApiError(Exception):
    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status, self.error, self.message = status, error, message


@bp.errorhandler(ApiError)
def _api_error(exc: ApiError):  # type: ignore[no-untyped-def]
    return json_error(exc.status, exc.error, exc.message)


def resolve_tenant() -> str:
    """The tenant this request acts on, or raise :class:`ApiError` (401/400/403)."""
    sent_key = request.headers.get("X-Api-Key")
    user_id = request.args.get("user_id")
    if sent_key is not None:
        ops_key = current_app.config.get("OPS_API_KEY") or ""
        if not ops_key or not hmac.compare_digest(sent_key.encode(), ops_key.encode()):
            raise ApiError(401, "unauthorized", "Invalid X-Api-Key")
        if user_id is None:
            raise ApiError(400, "missing_user_id", "With X-Api-Key, name the tenant with ?user_id=N")
        if not is_valid_tenant_id(user_id):
            raise ApiError(400, "invalid_user_id", "user_id must match ^[A-Za-z0-9_-]{1,64}$")
        return user_id
    if not current_user.is_authenticated:
        raise ApiError(401, "unauthorized", "Log in or send X-Api-Key")
    tenant_id: str = current_user.tenant_id
    if user_id is not None:
        if not is_valid_tenant_id(user_id):
            raise ApiError(400, "invalid_user_id", "user_id must match ^[A-Za-z0-9_-]{1,64}$")
        if user_id != tenant_id:
            raise ApiError(403, "forbidden", "A logged-in user can only act on their own tenant")
    return tenant_id


def relay(method: str, tenant_id: str, action: str, json_body: Any = None):  # type: ignore[no-untyped-def]
    try:
        node = whatsapp.call_node(method, tenant_id, action, json_body)
    except UnknownTenant:
        return (
            jsonify(
                {
                    "error": "unknown_tenant",
                    "message": f"No WhatsApp server is configured for tenant {tenant_id}"
                    " (not in WHATSAPP_TENANT_URLS and WHATSAPP_SERVER_URL is unset)",
                    "tenant_id": tenant_id,
                }
            ),
            404,
        ), None
    response = jsonify(node.body)
    response.status_code = node.status
    response.headers.update(node.headers)
    response.headers["Cache-Control"] = "no-store"
    return response, node


@bp.get("/qr")
def qr():  # type: ignore[no-untyped-def]
    tenant_id = resolve_tenant()
    response, _ = relay("GET", tenant_id, "qr")
    return response


@bp.get("/whatsapp-status")
def whatsapp_status():  # type: ignore[no-untyped-def]
    tenant_id = resolve_tenant()
    response, _ = relay("GET", tenant_id, "status")
    return response


@bp.post("/whatsapp/send")
def send():  # type: ignore[no-untyped-def]
    tenant_id = resolve_tenant()
    _require_csrf_header_for_browser()  # a message sent in someone's name is as sensitive as an unlink
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict):
        raise ApiError(400, "invalid_json", 'Send a JSON object {"to": "<phone>", "text": "<message>"}')
    to, text_ = payload.get("to"), payload.get("text")
    if not isinstance(to, str) or not to.strip() or len(to) > MAX_TO_LEN:
        raise ApiError(400, "invalid_to", f"'to' must be a non-empty string of at most {MAX_TO_LEN} characters")
    if not isinstance(text_, str) or not text_ or len(text_) > MAX_TEXT_LEN:
        raise ApiError(400, "invalid_text", f"'text' must be a non-empty string of at most {MAX_TEXT_LEN} characters")
    to = to.strip()
    response, node = relay("POST", tenant_id, "messages", {"to": to, "text": text_})
    if node is not None and node.status == 200:
        _store_outgoing(tenant_id, to, text_, node.body)
    return response


def _store_outgoing(tenant_id: str, to: str, text_: str, body: Any) -> None:
    node_id = body.get("id") if isinstance(body, dict) else None
    message_id = str(node_id)[:255] if node_id not in (None, "") else f"out-{uuid.uuid4()}"
    db.session.add(Message(tenant_id=tenant_id, message_id=message_id, sender=to, text=text_, direction="out"))
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()  # already stored (same node message id)
    except Exception:
        db.session.rollback()
        log.exception("could not store the outgoing message of tenant %s", tenant_id)


def _require_csrf_header_for_browser() -> None:
    """A logged-in browser must prove the request comes from our pages (X-CSRF-Token); the ops key needs none."""
    if request.headers.get("X-Api-Key") is not None:
        return
    from .pages import CSRF_SESSION_KEY

    expected = session.get(CSRF_SESSION_KEY)
    sent = request.headers.get("X-CSRF-Token", "")
    if not isinstance(expected, str) or not expected or not hmac.compare_digest(expected.encode(), sent.encode()):
        raise ApiError(403, "csrf_failed", "Send the page's CSRF token in X-CSRF-Token, or use X-Api-Key")


@bp.post("/whatsapp/connect")
def whatsapp_connect():  # type: ignore[no-untyped-def]
    """Start the tenant's session again (a new QR code after `qr_expired`): node's POST /tenants/{id}/connect."""
    tenant_id = resolve_tenant()
    _require_csrf_header_for_browser()
    response, _ = relay("POST", tenant_id, "connect", {})
    return response


@bp.post("/whatsapp/logout")
def whatsapp_logout():  # type: ignore[no-untyped-def]
    """Unlink the tenant's WhatsApp: node's POST /tenants/{id}/logout removes the session from its auth folder."""
    tenant_id = resolve_tenant()
    _require_csrf_header_for_browser()
    response, node = relay("POST", tenant_id, "logout", {})
    if node is not None and node.status == 200:
        log.info("WhatsApp of tenant %s unlinked through the API", tenant_id)
        from .pages import revoke_sessions

        revoke_sessions(tenant_id)  # the tenant's users log in again (this browser, if it is one, stays)
    return response
