"""POST /webhook/whatsapp: signature, freshness, de-duplication, storage."""

from __future__ import annotations

import json
import threading
import time
import uuid

import pytest
from flask_service_testlib import WEBHOOK_SECRET, db
from sqlalchemy import func, select

from flask_service.models import Message, SessionState, WebhookEvent
from flask_service.webhook import sign


def deliver(
    client,
    event: str,
    payload: dict | bytes,
    *,
    webhook_id: str | None = None,
    ts: int | None = None,
    secret: str = WEBHOOK_SECRET,
    signature: str | None = None,
):  # type: ignore[no-untyped-def]
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    timestamp = str(int(time.time()) if ts is None else ts)
    webhook_id = webhook_id or str(uuid.uuid4())
    headers = {
        "Content-Type": "application/json",
        "X-Webhook-Id": webhook_id,
        "X-Webhook-Event": event,
        "X-Webhook-Timestamp": timestamp,
        "X-Webhook-Signature": signature if signature is not None else sign(secret, timestamp, webhook_id, event, body),
    }
    return client.post("/webhook/whatsapp", data=body, headers=headers)


def inbound(tenant: str = "1", message_id: str = "ABC123", text: str = "oi") -> dict:
    return {"tenant_id": tenant, "data": {"message_id": message_id, "from": "5511988887777", "text": text}}


def count(app, model) -> int:  # type: ignore[no-untyped-def]
    with app.app_context():
        return db.session.execute(select(func.count()).select_from(model)).scalar_one()


def test_valid_message_is_stored_once_even_when_delivered_twice(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    client = app.test_client()
    first = deliver(client, "message.received", inbound(), webhook_id="wh-1")
    assert first.status_code == 200, first.get_data(as_text=True)
    assert first.get_json()["status"] == "stored"
    second = deliver(client, "message.received", inbound(), webhook_id="wh-1")
    assert second.status_code == 200
    assert second.get_json() == {"status": "duplicate"}
    with app.app_context():
        rows = db.session.execute(select(Message)).scalars().all()
        assert [(m.tenant_id, m.message_id, m.sender, m.text, m.direction) for m in rows] == [
            ("1", "ABC123", "5511988887777", "oi", "in")
        ]
    assert count(app, WebhookEvent) == 1


def test_same_message_under_a_new_webhook_id_is_not_stored_twice(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    client = app.test_client()
    assert deliver(client, "message.received", inbound(), webhook_id="a").get_json()["status"] == "stored"
    assert deliver(client, "message.received", inbound(), webhook_id="b").get_json()["status"] == "duplicate"
    assert count(app, Message) == 1
    # the same message id in another tenant is a different message
    assert deliver(client, "message.received", inbound(tenant="2"), webhook_id="c").get_json()["status"] == "stored"
    assert count(app, Message) == 2


def test_concurrent_duplicate_deliveries_store_one_row(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    payload = inbound(message_id="CONC")
    results: list[int] = []

    def worker() -> None:
        results.append(deliver(app.test_client(), "message.received", payload, webhook_id="same-id").status_code)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == [200] * 6
    assert count(app, Message) == 1
    assert count(app, WebhookEvent) == 1


def test_event_name_may_come_from_the_body(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    payload = {"event": "message.received", **inbound(message_id="B1")}
    assert deliver(app.test_client(), "", payload).status_code == 200
    assert count(app, Message) == 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"signature": "sha256=" + "0" * 64},
        {"signature": ""},
        {"signature": "deadbeef"},
        {"secret": "another-secret"},
    ],
)
def test_bad_signature_is_401_and_stores_nothing(make_app, kwargs) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    resp = deliver(app.test_client(), "message.received", inbound(), **kwargs)
    assert resp.status_code == 401
    assert resp.get_json()["error"] in ("invalid_signature", "invalid_timestamp")
    assert count(app, Message) == 0
    assert count(app, WebhookEvent) == 0


def test_signature_covers_the_raw_body(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    ts = str(int(time.time()))
    signed = json.dumps(inbound()).encode()
    tampered = json.dumps(inbound(text="changed")).encode()
    resp = app.test_client().post(
        "/webhook/whatsapp",
        data=tampered,
        headers={
            "X-Webhook-Id": "t1",
            "X-Webhook-Event": "message.received",
            "X-Webhook-Timestamp": ts,
            "X-Webhook-Signature": sign(WEBHOOK_SECRET, ts, "t1", "message.received", signed),
            "Content-Type": "application/json",
        },
    )
    assert resp.status_code == 401
    # same JSON, different bytes (whitespace) is also a different body
    spaced = json.dumps(inbound(), indent=2).encode()
    resp = app.test_client().post(
        "/webhook/whatsapp",
        data=spaced,
        headers={
            "X-Webhook-Id": "t2",
            "X-Webhook-Event": "message.received",
            "X-Webhook-Timestamp": ts,
            "X-Webhook-Signature": sign(WEBHOOK_SECRET, ts, "t2", "message.received", signed),
            "Content-Type": "application/json",
        },
    )
    assert resp.status_code == 401
    assert count(app, Message) == 0


@pytest.mark.parametrize("skew", [-301, 301, -3600])
def test_stale_or_future_timestamp_is_401(make_app, skew: int) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    resp = deliver(app.test_client(), "message.received", inbound(), ts=int(time.time()) + skew)
    assert resp.status_code == 401
    assert resp.get_json()["error"] == "stale_timestamp"
    assert count(app, Message) == 0


def test_timestamp_within_300s_is_accepted(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    assert deliver(app.test_client(), "message.received", inbound(), ts=int(time.time()) - 250).status_code == 200


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"", b"\xff\xfe", b"[1, 2]", b'"text"'],
)
def test_malformed_json_is_400(make_app, body: bytes) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    resp = deliver(app.test_client(), "message.received", body)
    assert resp.status_code == 400
    assert resp.get_json()["error"] == "invalid_json"
    assert count(app, WebhookEvent) == 0


@pytest.mark.parametrize(
    "payload",
    [
        {"tenant_id": "../x", "data": {"message_id": "1"}},
        {"data": {"message_id": "1"}},
        {"tenant_id": "1", "data": "nope"},
        {"tenant_id": "1", "data": {"from": "55", "text": "no id"}},
    ],
)
def test_invalid_payload_is_400(make_app, payload: dict) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    resp = deliver(app.test_client(), "message.received", payload)
    assert resp.status_code == 400
    assert count(app, Message) == 0
    assert count(app, WebhookEvent) == 0


def test_missing_webhook_id_is_400(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    body = json.dumps(inbound()).encode()
    ts = str(int(time.time()))
    resp = app.test_client().post(
        "/webhook/whatsapp",
        data=body,
        headers={
            "X-Webhook-Event": "message.received",
            "X-Webhook-Timestamp": ts,
            "X-Webhook-Signature": sign(WEBHOOK_SECRET, ts, "", "message.received", body),
        },
    )
    assert resp.status_code == 400
    assert resp.get_json()["error"] == "invalid_webhook_id"


def test_session_status_is_recorded_and_updated(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    client = app.test_client()
    now = int(time.time())
    first = {"tenant_id": "2", "data": {"state": "qr", "previous_state": "starting", "code": None}}
    assert deliver(client, "session.status", first, ts=now - 10).status_code == 200
    with app.app_context():
        row = db.session.get(SessionState, "2")
        assert (row.state, row.previous_state, row.code) == ("qr", "starting", None)
    second = {"tenant_id": "2", "data": {"state": "connected", "previous_state": "qr", "code": 515}}
    assert deliver(client, "session.status", second, ts=now).status_code == 200
    # an older event retried late does not overwrite the newer state
    late = {"tenant_id": "2", "data": {"state": "reconnecting", "previous_state": "connected", "code": 428}}
    resp = deliver(client, "session.status", late, ts=now - 5)
    assert resp.status_code == 200 and resp.get_json()["status"] == "stale"
    with app.app_context():
        row = db.session.get(SessionState, "2")
        assert (row.state, row.previous_state, row.code) == ("connected", "qr", 515)
        assert db.session.execute(select(func.count()).select_from(SessionState)).scalar_one() == 1
    assert count(app, Message) == 0


def test_unknown_event_is_acknowledged_but_not_stored(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    resp = deliver(app.test_client(), "contacts.update", {"tenant_id": "1", "data": {}})
    assert resp.status_code == 200 and resp.get_json()["status"] == "ignored"
    assert count(app, Message) == 0


def test_without_webhook_secret_nothing_is_accepted(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app(WEBHOOK_SECRET="")
    resp = deliver(app.test_client(), "message.received", inbound(), secret="")
    assert resp.status_code == 503
    assert count(app, Message) == 0


def test_oversized_body_and_wrong_method_are_json_4xx(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    client = app.test_client()
    big = deliver(client, "message.received", b"x" * (2 * 1024 * 1024))
    assert big.status_code == 413 and big.get_json()["error"]
    get = client.get("/webhook/whatsapp")
    assert get.status_code == 405 and get.get_json()["error"] == "method_not_allowed"


def replay(client, sent, body: bytes, **changed: str):  # type: ignore[no-untyped-def]
    """Send a captured delivery again, with some headers changed and the signature kept."""
    headers = {k: v for k, v in sent.request.headers.items() if k.startswith("X-Webhook-")}
    headers.update({k.replace("_", "-"): v for k, v in changed.items()})
    return client.post("/webhook/whatsapp", data=body, headers=headers)


def test_event_and_id_headers_are_signed(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    client = app.test_client()
    # an event the receiver only records, carrying what looks like a message
    payload = {"event": "contacts.update", **inbound(message_id="SMUGGLED")}
    body = json.dumps(payload).encode()
    first = deliver(client, "contacts.update", body, webhook_id="orig-1")
    assert first.status_code == 200 and first.get_json()["status"] == "ignored"
    assert replay(client, first, body).get_json() == {"status": "duplicate"}

    for changed in (
        {"X_Webhook_Event": "message.received"},
        {"X_Webhook_Event": "message.received", "X_Webhook_Id": "orig-2"},
        {"X_Webhook_Id": "orig-3"},
        {"X_Webhook_Event": ""},
    ):
        resp = replay(client, first, body, **changed)
        assert resp.status_code == 401, (changed, resp.get_data(as_text=True))
        assert resp.get_json()["error"] == "invalid_signature"
    assert count(app, Message) == 0
    assert count(app, WebhookEvent) == 1


def test_header_event_must_match_the_signed_body_event(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    payload = {"event": "contacts.update", **inbound(message_id="MISMATCH")}
    resp = deliver(app.test_client(), "message.received", payload)  # correctly signed, contradicting itself
    assert resp.status_code == 400 and resp.get_json()["error"] == "event_mismatch"
    assert count(app, Message) == 0
    assert count(app, WebhookEvent) == 0


@pytest.mark.parametrize(
    "timestamp",
    [
        "9" * 400,
        "1" * 13,
        "+{now}",
        "{now}.0",
        "1_{now}",
        "-{now}",
        "0x10",
        "1e9",
        "\u0661\u0667\u0660\u0660",
        "{now}abc",
    ],
)
def test_absurd_or_non_numeric_timestamps_are_401_never_500(make_app, timestamp: str) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    now = str(int(time.time()))
    ts = timestamp.replace("{now}", now)
    body = json.dumps(inbound(message_id="TS")).encode()
    headers = {
        "X-Webhook-Id": "ts-1",
        "X-Webhook-Event": "message.received",
        "X-Webhook-Timestamp": ts,
        # signed over exactly what is sent: only the timestamp check may refuse it
        "X-Webhook-Signature": sign(WEBHOOK_SECRET, ts, "ts-1", "message.received", body),
        "Content-Type": "application/json",
    }
    resp = app.test_client().post("/webhook/whatsapp", data=body, headers=headers)
    assert resp.status_code == 401, resp.get_data(as_text=True)
    assert resp.get_json()["error"] in ("invalid_timestamp", "stale_timestamp")
    assert count(app, WebhookEvent) == 0


@pytest.mark.parametrize("webhook_id", ["a.b", "x" * 256, "id with space", "\u00e9"])
def test_malformed_webhook_ids_are_400(make_app, webhook_id: str) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    resp = deliver(app.test_client(), "message.received", inbound(), webhook_id=webhook_id)
    assert resp.status_code == 400 and resp.get_json()["error"] == "invalid_webhook_id"
    assert count(app, WebhookEvent) == 0
