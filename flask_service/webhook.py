"""POST /webhook/whatsapp: signed events from the WhatsApp (node) servers.

Signature: ``X-Webhook-Signature: sha256=<hex HMAC-SHA256(WEBHOOK_SECRET,
"<X-Webhook-Timestamp>.<X-Webhook-Id>.<X-Webhook-Event>.<raw body>")>``: every header the
receiver acts on is signed, so none can be swapped on a captured delivery. Timestamps more
than 300 s away are refused. ``X-Webhook-Id`` is the primary key of ``webhook_events``, so a
retried (or replayed) delivery is stored once, even when two copies arrive at the same time.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import re
import time
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, current_app, jsonify, request
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from .errors import json_error
from .models import Message, SessionState, WebhookEvent, db
from .resolver import is_valid_tenant_id

log = logging.getLogger(__name__)
bp = Blueprint("webhook", __name__)

MAX_SKEW_S = 300
MAX_ID_LEN = 255
# ASCII digits only (int() would also take "+1", "1_0" and other scripts' digits), and few enough of
# them that the value stays a real date: 400 digits used to overflow into a 500.
TIMESTAMP_RE = re.compile(r"[0-9]{1,12}")
# No "." in the id and no "{" or whitespace in the event keep the signed string unambiguous: nothing
# can move between the id, the event and the body (a JSON object) without changing the signature.
WEBHOOK_ID_RE = re.compile(rf"[A-Za-z0-9_-]{{1,{MAX_ID_LEN}}}")
EVENT_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
# Bodies are at most MAX_CONTENT_LENGTH (1 MiB, 413 past it). node sends three levels; 100,000 used to
# exhaust the parser's recursion into a 500.
MAX_DEPTH = 32
# data.code is a WhatsApp close code (401, 408, 440, 515, …) stored in an INTEGER column: 2**70 or
# 10**300 used to overflow it into a 500.
MAX_CODE = 99_999
NUMBER_RE = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?")


def sign(secret: str, timestamp: str, webhook_id: str, event: str, body: bytes) -> str:
    """The ``X-Webhook-Signature`` value of a delivery (also used by tests)."""
    message = f"{timestamp}.{webhook_id}.{event}.".encode() + body
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def _verify(secret: str, body: bytes, webhook_id: str, event: str):  # type: ignore[no-untyped-def]
    """None when the request is authentic and fresh, else an error response."""
    timestamp = request.headers.get("X-Webhook-Timestamp", "").strip()
    signature = request.headers.get("X-Webhook-Signature", "").strip()
    if not timestamp or not signature:
        return json_error(401, "invalid_signature", "X-Webhook-Timestamp and X-Webhook-Signature are required")
    if not TIMESTAMP_RE.fullmatch(timestamp):
        return json_error(401, "invalid_timestamp", "X-Webhook-Timestamp must be unix seconds (ASCII digits)")
    expected = sign(secret, timestamp, webhook_id, event, body)
    scheme, _, digest = signature.partition("=")
    given = f"{scheme.lower()}={digest.lower()}"
    if not hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace")):
        return json_error(401, "invalid_signature", "X-Webhook-Signature does not match the delivery")
    if abs(time.time() - int(timestamp)) > MAX_SKEW_S:
        return json_error(
            401, "stale_timestamp", f"X-Webhook-Timestamp is more than {MAX_SKEW_S} s away from the server clock"
        )
    return None


def _as_text(value: Any, limit: int) -> str | None:
    if value is None:
        return None
    if isinstance(value, (dict, list)):
        value = json.dumps(value, ensure_ascii=False)
    return str(value)[:limit]


@bp.post("/webhook/whatsapp")
def receive():  # type: ignore[no-untyped-def]
    secret = current_app.config.get("WEBHOOK_SECRET") or ""
    if not secret:
        log.error("webhook refused: WEBHOOK_SECRET is not set")
        return json_error(503, "webhook_not_configured", "WEBHOOK_SECRET is not set on this server")
    body = request.get_data(cache=True)
    webhook_id = request.headers.get("X-Webhook-Id", "").strip()
    if not WEBHOOK_ID_RE.fullmatch(webhook_id):
        return json_error(400, "invalid_webhook_id", f"X-Webhook-Id is required: 1 to {MAX_ID_LEN} of A-Z a-z 0-9 _ -")
    header_event = request.headers.get("X-Webhook-Event", "").strip()
    if header_event and not EVENT_RE.fullmatch(header_event):
        return json_error(400, "invalid_event", "X-Webhook-Event must be 1 to 64 of A-Z a-z 0-9 . _ -")
    failure = _verify(secret, body, webhook_id, header_event)
    if failure is not None:
        return failure
    timestamp = int(request.headers["X-Webhook-Timestamp"].strip())

    try:
        payload = json.loads(body, parse_constant=_refuse_constant)
    except RecursionError:
        return json_error(400, "json_too_deep", f"The body is nested more than {MAX_DEPTH} levels deep")
    except ValueError:  # also UnicodeDecodeError, NaN/Infinity and integers of more than 4300 digits
        return json_error(400, "invalid_json", "The body is not valid JSON")
    if not isinstance(payload, dict):
        return json_error(400, "invalid_json", "The body must be a JSON object")
    if _deeper_than(payload, MAX_DEPTH):
        return json_error(400, "json_too_deep", f"The body is nested more than {MAX_DEPTH} levels deep")
    payload = _storable(payload)

    body_event = payload.get("event")
    if body_event is not None and not (isinstance(body_event, str) and EVENT_RE.fullmatch(body_event)):
        return json_error(400, "invalid_event", "event must be 1 to 64 of A-Z a-z 0-9 . _ -")
    if body_event and header_event and body_event != header_event:
        return json_error(400, "event_mismatch", "X-Webhook-Event and the body's event differ")
    event = body_event or header_event
    if not event:
        return json_error(400, "invalid_event", "the event is required (body field event or X-Webhook-Event)")
    tenant_id = payload.get("tenant_id")
    if isinstance(tenant_id, int) and not isinstance(tenant_id, bool):
        tenant_id = str(tenant_id)
    if not is_valid_tenant_id(tenant_id):
        return json_error(400, "invalid_tenant_id", "tenant_id must match ^[A-Za-z0-9_-]{1,64}$")
    data = payload.get("data")
    if not isinstance(data, dict):
        return json_error(400, "invalid_data", "data must be a JSON object")

    received_at = datetime.now(UTC)
    db.session.add(WebhookEvent(id=webhook_id, event=event, tenant_id=tenant_id, received_at=received_at))
    status = "stored"
    if event == "message.received":
        message_id = data.get("message_id")
        if message_id in (None, "") or isinstance(message_id, (dict, list, bool)):
            db.session.rollback()
            return json_error(400, "invalid_message", "data.message_id is required")
        db.session.add(
            Message(
                tenant_id=tenant_id,
                message_id=str(message_id)[:255],
                sender=_as_text(data.get("from"), 255),
                text=_as_text(data.get("text"), 65536),
                direction="in",
                created_at=received_at,
            )
        )
    elif event == "session.status":
        state = data.get("state")
        if not isinstance(state, str) or not state or len(state) > 32:
            db.session.rollback()
            return json_error(400, "invalid_state", "data.state is required")
        try:
            code = _code(data.get("code"))
        except ValueError:
            db.session.rollback()
            return json_error(400, "invalid_code", f"data.code must be a whole number from 0 to {MAX_CODE}")
        event_time = datetime.fromtimestamp(timestamp, UTC)
        status = _record_session_state(tenant_id, state, data, code, event_time)
    else:
        status = "ignored"  # recorded for de-duplication, nothing else to store

    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        if _is_duplicate(webhook_id, event, tenant_id, data):
            log.info("webhook %s (%s, tenant %s) is a duplicate", webhook_id, event, tenant_id)
            return jsonify({"status": "duplicate"}), 200
        # a concurrent event for the same tenant won the race: let node retry
        log.warning("webhook %s (%s, tenant %s) conflicted with a concurrent write", webhook_id, event, tenant_id)
        response, code = json_error(503, "conflict_retry", "A concurrent update won; retry the delivery")
        response.headers["Retry-After"] = "1"
        return response, code
    return jsonify({"status": status}), 200


# Valid JSON that no database column takes: a lone surrogate (`"\\ud800"`) is no UTF-8, which SQLite's driver
# then refuses to encode, and PostgreSQL's text types refuse NUL. Each becomes U+FFFD, so the message is kept
# (a 500 made node retry and give up, dropping it) and nothing else changes.
UNSTORABLE_RE = re.compile("[\x00\ud800-\udfff]")


def _storable(value: Any) -> Any:
    """``value`` with every string (keys too) storable in every database; depth is bounded by MAX_DEPTH already."""
    if isinstance(value, str):
        return UNSTORABLE_RE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_storable(key): _storable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_storable(item) for item in value]
    return value


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _deeper_than(value: Any, limit: int) -> bool:
    """True when ``value`` nests objects and arrays more than ``limit`` levels deep (no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def _code(value: Any) -> int | None:
    """A close code: None when absent or not a number; ValueError for a number outside 0..MAX_CODE."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):  # "515" was always accepted
        if not NUMBER_RE.fullmatch(value.strip()):
            return None
        value = float(value)  # a long digit string becomes inf or large, and is refused below
    if isinstance(value, float):
        if not (math.isfinite(value) and value.is_integer() and abs(value) <= MAX_CODE):
            raise ValueError("not a whole number in range")
        value = int(value)
    if not isinstance(value, int):
        return None
    if not 0 <= value <= MAX_CODE:
        raise ValueError("out of range")
    return value


def _record_session_state(
    tenant_id: str, state: str, data: dict[str, Any], code: int | None, event_time: datetime
) -> str:
    previous = data.get("previous_state")
    previous = previous[:32] if isinstance(previous, str) else None
    row = db.session.get(SessionState, tenant_id, with_for_update=db.engine.dialect.name == "postgresql")
    if row is None:
        db.session.add(
            SessionState(
                tenant_id=tenant_id,
                state=state,
                previous_state=previous,
                code=code,
                updated_at=event_time,
            )
        )
        return "stored"
    current = row.updated_at if row.updated_at.tzinfo else row.updated_at.replace(tzinfo=UTC)
    if current > event_time:
        return "stale"  # a retry of an older event must not overwrite a newer state
    row.state, row.previous_state, row.code, row.updated_at = state, previous, code, event_time
    return "stored"


def _is_duplicate(webhook_id: str, event: str, tenant_id: str, data: dict[str, Any]) -> bool:
    if db.session.get(WebhookEvent, webhook_id) is not None:
        return True
    if event == "message.received":
        existing = db.session.execute(
            select(Message.id).where(
                Message.tenant_id == tenant_id, Message.message_id == str(data.get("message_id"))[:255]
            )
        ).first()
        return existing is not None
    return False
