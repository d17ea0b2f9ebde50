"""GET /health: the app and its database."""

from __future__ import annotations

import logging

from flask import Blueprint, jsonify
from sqlalchemy import text

from .models import db

log = logging.getLogger(__name__)
bp = Blueprint("health", __name__)


@bp.get("/health")
def health():  # type: ignore[no-untyped-def]
    try:
        db.session.execute(text("SELECT 1"))
    except Exception as exc:
        db.session.rollback()
        # the exception text may hold the URL or the password: log and answer only its type
        log.warning("health check: database error %s", type(exc).__name__)
        return jsonify({"status": "error", "db": "error", "error": type(exc).__name__}), 503
    finally:
        db.session.remove()
    return jsonify({"status": "ok", "db": "ok"})
