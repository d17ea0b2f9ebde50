"""Judging one HTTP answer: pass, fail now, or retry (not ready yet). Pure functions, no I/O."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DATA_URL_PREFIX = "data:image/png;base64,"
EXCERPT_CHARS = 200
MAX_RETRY_AFTER = 10.0  # seconds; a longer Retry-After is capped so one probe run stays bounded

Outcome = Literal["pass", "idle", "fail", "retry"]

# node's answers for a session that simply waits for a person: the tenant's server is routed, took the
# key and knows the tenant, so the deployment is healthy; only nobody scanned in time. 410 `qr_expired`
# stays until someone asks for a new code (WhatsApp limits pairing attempts), so failing on it would make
# a probe of an idle environment fail a few minutes after `up`, with nothing changed.
IDLE_ANSWERS = {410: "qr_expired"}


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    reason: str
    retry_after: float | None = None


def excerpt(body: bytes, limit: int = EXCERPT_CHARS) -> str:
    """The first `limit` characters of a body, on one line."""
    text = " ".join(body.decode("utf-8", errors="replace").split())
    if not text:
        return "(empty body)"
    return text if len(text) <= limit else text[:limit] + "…"


def retry_after_seconds(value: str | None) -> float | None:
    """`Retry-After` in seconds (delta-seconds form only; an HTTP date is ignored), capped."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    if seconds != seconds or seconds < 0:  # NaN or negative
        return None
    return min(seconds, MAX_RETRY_AFTER)


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def _is_png_data_url(value: Any) -> str | None:
    """None when `value` is a base64 PNG data URL, else why not."""
    if not isinstance(value, str):
        return f"got {type(value).__name__}"
    if not value.startswith(DATA_URL_PREFIX):
        return f"starts with {value[:30]!r}"
    try:
        data = base64.b64decode(value[len(DATA_URL_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        return "invalid base64"
    if not data.startswith(PNG_SIGNATURE):
        return "decoded bytes lack the PNG signature"
    return None


def judge(kind: str, tenant: str | None, status: int, headers: Mapping[str, str], body: bytes) -> Verdict:
    """The verdict on one answer to a `health` or `qr` target."""
    if status == 503:
        return Verdict("retry", f"HTTP 503: {excerpt(body)}", retry_after_seconds(headers.get("retry-after")))
    if kind == "qr" and status == 409:
        wrong = _wrong_tenant(tenant, _json(body))
        return Verdict("fail", wrong) if wrong else Verdict("pass", "already connected (HTTP 409)")
    if kind == "qr" and status in IDLE_ANSWERS:
        idle = judge_idle(tenant, status, body)
        if idle is not None:
            return idle
    if status != 200:
        reason = f"HTTP {status}: {excerpt(body)}"
        if 300 <= status < 400 and headers.get("location"):
            reason = f"HTTP {status}: redirected to {headers['location']} (give that URL instead)"
        elif status in (401, 403):
            reason += " (is the API key right?)"
        return Verdict("fail", reason)
    data = _json(body)
    if not isinstance(data, dict):
        return Verdict("fail", f"HTTP 200 but the body is not a JSON object: {excerpt(body)}")
    if kind == "health":
        if data.get("status") != "ok":
            return Verdict("fail", f"unhealthy: status is {data.get('status')!r}, expected 'ok': {excerpt(body)}")
        return Verdict("pass", "ok")
    got = data.get("tenant_id")
    if got is None or str(got) != str(tenant):
        return Verdict("fail", f"wrong tenant in answer: expected {tenant}, got {'nothing' if got is None else got}")
    why = _is_png_data_url(data.get("qr_data_url"))
    if why:
        return Verdict("fail", f"qr_data_url is not a PNG ({why})")
    return Verdict("pass", "QR code served")


def _wrong_tenant(tenant: str | None, data: Any) -> str | None:
    """Why an error answer belongs to another tenant, or None. Older servers name no tenant: not held against them."""
    got = data.get("tenant_id") if isinstance(data, dict) else None
    if got is not None and str(got) != str(tenant):
        return f"wrong tenant in answer: expected {tenant}, got {got}"
    return None


def judge_idle(tenant: str | None, status: int, body: bytes) -> Verdict | None:
    """`idle` for node's idle-session answer (see IDLE_ANSWERS), a failure when it names another tenant,
    None when this is not that answer (e.g. a 410 from something else), so it is judged as any other status."""
    data = _json(body)
    if not isinstance(data, dict) or data.get("error") != IDLE_ANSWERS.get(status):
        return None
    wrong = _wrong_tenant(tenant, data)
    if wrong:
        return Verdict("fail", wrong)
    return Verdict(
        "idle",
        f"idle: the QR codes expired without a scan (HTTP {status} {data['error']}); server, routing and key work,"
        " and /connect offers a new code",
    )
