"""Issue 28, F5: any signed delivery of valid JSON is stored safely (or refused with a 400), never a 500, on
SQLite and PostgreSQL: lone surrogates (no UTF-8 for SQLite's driver) and NUL (refused by PostgreSQL's text)
in every string field the webhook stores. Each case was a 500 before."""

from __future__ import annotations

import json

import pytest
from flask_service_testlib import db
from sqlalchemy import select
from test_fs_webhook import deliver

from flask_service.models import Message, SessionState

UNSTORABLE = ["\ud800", "a\udfffb", "\udbff\udc00".encode("utf-16", "surrogatepass").decode("utf-16"), "x\x00y", "\x00"]


def _body(payload: dict) -> bytes:  # type: ignore[type-arg]
    return json.dumps(payload).encode()  # ensure_ascii: "\\ud800" is valid JSON text, as node could send it


@pytest.mark.parametrize("value", UNSTORABLE)
@pytest.mark.parametrize("field", ["text", "message_id", "from"])
def test_a_message_with_any_json_string_is_stored_never_a_500(make_app, field, value) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    data = {"message_id": "M1", "from": "5511988887777", "text": "oi", field: value}
    response = deliver(app.test_client(), "message.received", _body({"tenant_id": "1", "data": data}))
    assert response.status_code in (200, 400), response.get_data(as_text=True)
    if response.status_code == 200:
        with app.app_context():
            row = db.session.execute(select(Message)).scalars().one()
            stored = {"text": row.text, "message_id": row.message_id, "from": row.sender}[field]
            assert "\x00" not in stored and all(not 0xD800 <= ord(ch) <= 0xDFFF for ch in stored)


@pytest.mark.parametrize("value", UNSTORABLE)
@pytest.mark.parametrize("field", ["state", "previous_state", "me", "last_error", "extra"])
def test_a_session_status_with_any_json_string_is_stored_never_a_500(make_app, field, value) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    data = {"state": "connected", "previous_state": "qr", field: value}
    response = deliver(app.test_client(), "session.status", _body({"tenant_id": "1", "data": data}))
    assert response.status_code in (200, 400), response.get_data(as_text=True)
    if response.status_code == 200:
        with app.app_context():
            assert db.session.execute(select(SessionState)).scalars().one() is not None


def test_a_key_with_a_lone_surrogate_is_no_500_either(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    payload = {"tenant_id": "1", "data": {"message_id": "M2", "text": "oi", "\ud800": "\x00"}, "\udc00": 1}
    response = deliver(app.test_client(), "message.received", _body(payload))
    assert response.status_code == 200, response.get_data(as_text=True)
