"""JSON errors for /api and /webhook; never a 500 from bad input."""

from __future__ import annotations

import logging
import re

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException, InternalServerError

log = logging.getLogger(__name__)

JSON_PREFIXES = ("/api/", "/webhook/", "/health")


def wants_json() -> bool:
    path = request.path
    return path == "/api" or path.startswith(JSON_PREFIXES)


def json_error(status: int, error: str, message: str, **extra: object):  # type: ignore[no-untyped-def]
    body = {"error": error, "message": message}
    body.update(extra)
    return jsonify(body), status


def _code(exc: HTTPException) -> str:
    return re.sub(r"[^a-z0-9]+", "_", (exc.name or "error").lower()).strip("_")


def init_app(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):  # type: ignore[no-untyped-def]
        if not wants_json():
            return exc
        response = exc.get_response()
        body, status = json_error(exc.code or 500, _code(exc), exc.description or exc.name)
        body.status_code = status
        # keep Allow on 405 and similar headers
        for key in ("Allow", "Retry-After"):
            if key in response.headers:
                body.headers[key] = response.headers[key]
        return body

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):  # type: ignore[no-untyped-def]
        log.exception("unhandled error on %s %s", request.method, request.path)
        if wants_json():
            return json_error(500, "internal_error", "Internal server error")
        return InternalServerError()
