"""flask_service: the Flask web app of the multi-tenant WhatsApp system.

Use :func:`create_app` (the app factory). Configuration comes from the
environment (see README.md); ``config`` overrides it (tests).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from flask import Flask

from .config import ConfigError, load_config, redact_url

__all__ = ["ConfigError", "create_app"]

PACKAGE_DIR = Path(__file__).resolve().parent
MIGRATIONS_DIR = PACKAGE_DIR / "migrations"

log = logging.getLogger(__name__)


def create_app(config: dict[str, Any] | None = None, *, require_secret: bool = True) -> Flask:
    """Create the Flask app. Raises :class:`ConfigError` for a bad environment."""
    from flask_migrate import Migrate
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    from . import api, errors, health, pages, sessions, webhook
    from .models import db

    app = Flask(__name__, instance_path=str(Path.cwd() / "instance"))
    overrides = dict(config or {})
    # An explicit key in ``config`` (tests) replaces the environment's, which is then not checked.
    from .config import KEY_NAMES

    preset = [name for name in KEY_NAMES if overrides.get(name)]
    app.config.update(load_config(require_secret=require_secret, preset=preset))
    if "DATABASE_URL" in overrides:
        from .config import normalize_database_url

        overrides["SQLALCHEMY_DATABASE_URI"] = normalize_database_url(overrides.pop("DATABASE_URL"))
    app.config.update(overrides)
    app.config.setdefault("SQLALCHEMY_TRACK_MODIFICATIONS", False)
    # Production is served over TLS (Railway's edge, or the operator's proxy); development runs on plain
    # http://localhost, where a Secure cookie would never be sent back and nobody could log in.
    production = app.config["APP_ENV"] == "production"
    app.config.update(
        MAX_CONTENT_LENGTH=app.config.get("MAX_CONTENT_LENGTH") or 1024 * 1024,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=production,
        REMEMBER_COOKIE_SECURE=production,
        JSON_SORT_KEYS=False,
    )

    uri: str = app.config["SQLALCHEMY_DATABASE_URI"]
    engine_options: dict[str, Any] = dict(app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
    engine_options.setdefault("pool_pre_ping", True)
    if uri.startswith("postgresql"):
        connect_args = dict(engine_options.get("connect_args") or {})
        connect_args.setdefault("connect_timeout", 5)
        engine_options["connect_args"] = connect_args
    elif uri.startswith("sqlite:///") and uri != "sqlite:///:memory:":
        Path(uri[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = engine_options

    try:
        db.init_app(app)  # creates the engine: a bad URL or a missing driver fails here
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        raise ConfigError(
            f"DATABASE_URL {redact_url(uri)!r} cannot be used: {type(exc).__name__}: {str(exc).splitlines()[0]}"
        ) from None
    Migrate(app, db, directory=str(MIGRATIONS_DIR))

    proxies = int(app.config.get("TRUSTED_PROXIES") or 0)
    if proxies:
        from werkzeug.middleware.proxy_fix import ProxyFix

        # Behind Railway's edge every request comes from the proxy; without the forwarded address the
        # per-address login throttle would lock everybody out together. Only as many hops as configured
        # are believed, so a client cannot pick its own address with a forged X-Forwarded-For.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies)  # type: ignore[method-assign]
    pages.init_app(app)
    app.register_blueprint(pages.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(sessions.bp)
    app.register_blueprint(webhook.bp)
    app.register_blueprint(health.bp)
    errors.init_app(app)

    @app.after_request
    def _security_headers(response):  # type: ignore[no-untyped-def]
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault(
            "Content-Security-Policy",
            # One stylesheet file (static/app.css): no inline <style> and no style="" attributes.
            "default-src 'self'; img-src 'self' data:; script-src 'self'; style-src 'self'; frame-ancestors 'none'",
        )
        if production:
            # No includeSubDomains: the app does not own the rest of the operator's domain.
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response

    log.debug("flask_service created (env=%s, database=%s)", app.config["APP_ENV"], redact_url(uri))
    return app
