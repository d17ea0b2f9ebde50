"""Configuration from the environment (see docs/contract.md).

Every problem with the environment is raised as :class:`ConfigError` with a
one-line message; the command line and the WSGI entry point turn it into a
clean exit without a traceback.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from .resolver import normalize_base_url, parse_tenant_urls

DEFAULT_PORT = 5002
DEFAULT_TIMEOUT_S = 5.0
# Connecting inside one private network takes milliseconds; a killed container's address swallows the SYN.
DEFAULT_CONNECT_TIMEOUT_S = 1.0
DEFAULT_BREAKER_FAILURES = 1
DEFAULT_BREAKER_COOLDOWN_S = 5.0  # the Retry-After flask has always sent with whatsapp_unreachable
VALID_APP_ENVS = ("development", "production")
# A session cookie signed with a guessable key can be forged: production keys must be long and varied.
# secrets.token_urlsafe(32) (43 characters, what deploytool generates) passes with a wide margin.
MIN_SECRET_KEY_LEN = 32
MIN_SECRET_KEY_DISTINCT = 8
# Every key and secret the app reads follows that rule in production; node_service applies the same one.
KEY_NAMES = ("SECRET_KEY", "OPS_API_KEY", "WHATSAPP_API_KEY", "WEBHOOK_SECRET")
# Placeholders people copy from examples (deploytool's .env.example writes `change-me`): refused by value,
# however long, compared without case and without anything but letters and digits.
PLACEHOLDER_WORDS = ("changeme", "replaceme", "placeholder", "yoursecret", "example")
MAX_TRUSTED_PROXIES = 5
# The name in page titles and the header; APP_NAME replaces it (optional).
DEFAULT_APP_NAME = "WhatsApp Link"
MAX_APP_NAME_LEN = 60


class ConfigError(Exception):
    """A start-up configuration error with a one-line, human readable message."""


def normalize_database_url(url: str) -> str:
    """Accept ``postgres://`` and ``postgresql://`` and select the psycopg 3 driver."""
    url = url.strip()
    if url.startswith("postgres://"):
        return "postgresql+psycopg://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


_PASSWORD_IN_URL = re.compile(r"(?P<pre>[a-zA-Z][a-zA-Z0-9+.-]{0,31}://[^:/@\s]*:)(?P<pw>[^@\s]*)(?P<post>@)")


def redact_url(url: str | None) -> str:
    """Return ``url`` with any password replaced by ``***`` (safe to log)."""
    if not url:
        return ""
    return _PASSWORD_IN_URL.sub(lambda m: f"{m.group('pre')}***{m.group('post')}", url)


def is_weak_key(value: str) -> bool:
    """True for a key or secret too weak for production: short, little variety, or a known placeholder."""
    if len(value) < MIN_SECRET_KEY_LEN or len(set(value)) < MIN_SECRET_KEY_DISTINCT:
        return True
    letters = re.sub(r"[^a-z0-9]", "", value.lower())
    return any(word in letters for word in PLACEHOLDER_WORDS)


def check_key(name: str, value: str) -> None:
    """Raise :class:`ConfigError` naming ``name`` (never echoing the value) when ``value`` is too weak."""
    if is_weak_key(value):
        raise ConfigError(
            f"{name} is too weak for APP_ENV=production: it needs at least {MIN_SECRET_KEY_LEN} characters,"
            f" {MIN_SECRET_KEY_DISTINCT} or more of them distinct, and must not be a placeholder"
            " (generate one with python -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )


def check_secret_key(value: str) -> None:
    """Raise :class:`ConfigError` for a SECRET_KEY too weak for production (never echoing the value)."""
    check_key("SECRET_KEY", value)


def default_sqlite_url(instance_dir: Path | None = None) -> str:
    folder = (instance_dir or Path.cwd() / "instance").resolve()
    return f"sqlite:///{folder / 'flask_service.sqlite3'}"


def _positive_seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = (env.get(name) or "").strip()
    try:
        value = float(raw) if raw else default
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, got {raw!r}") from None
    if not value > 0:
        raise ConfigError(f"{name} must be positive, got {raw!r}")
    return value


def load_config(
    environ: Mapping[str, str] | None = None, *, require_secret: bool = True, preset: Collection[str] = ()
) -> dict[str, Any]:
    """Build the Flask config dict from environment variables.

    ``require_secret=False`` is used by maintenance commands (``migrate``,
    ``create-user``) that never sign a session cookie nor use a key. ``preset``
    names keys given explicitly to :func:`create_app` (tests): their environment
    value is replaced anyway, so it is not checked.
    """
    env = os.environ if environ is None else environ

    app_env = (env.get("APP_ENV") or "production").strip().lower()
    if app_env not in VALID_APP_ENVS:
        raise ConfigError(f"APP_ENV must be 'development' or 'production', got {app_env!r}")

    strict = app_env != "development" and require_secret
    secret_key = env.get("SECRET_KEY") or ""
    if not secret_key:
        if strict and "SECRET_KEY" not in preset:
            raise ConfigError("SECRET_KEY is not set; it is required when APP_ENV is not 'development'")
        secret_key = secrets.token_hex(32)
    if strict:
        # The other keys may stay unset (that way in stays closed), but a key that is set must be strong.
        for name in KEY_NAMES:
            value = env.get(name) or ""
            if value and name not in preset:
                check_key(name, value)

    database_url = (env.get("DATABASE_URL") or "").strip()
    database_url = normalize_database_url(database_url) if database_url else default_sqlite_url()

    timeout = _positive_seconds(env, "WHATSAPP_TIMEOUT_S", DEFAULT_TIMEOUT_S)
    connect_timeout = _positive_seconds(env, "WHATSAPP_CONNECT_TIMEOUT_S", DEFAULT_CONNECT_TIMEOUT_S)
    breaker_cooldown = _positive_seconds(env, "WHATSAPP_BREAKER_COOLDOWN_S", DEFAULT_BREAKER_COOLDOWN_S)
    raw_failures = (env.get("WHATSAPP_BREAKER_FAILURES") or "").strip()
    try:
        breaker_failures = int(raw_failures) if raw_failures else DEFAULT_BREAKER_FAILURES
    except ValueError:
        breaker_failures = 0
    if breaker_failures < 1:
        raise ConfigError(f"WHATSAPP_BREAKER_FAILURES must be a whole number >= 1, got {raw_failures!r}")

    raw_port = (env.get("PORT") or "").strip()
    try:
        port = int(raw_port) if raw_port else DEFAULT_PORT
    except ValueError:
        raise ConfigError(f"PORT must be an integer, got {raw_port!r}") from None
    if not 0 <= port <= 65535:
        raise ConfigError(f"PORT must be between 0 and 65535, got {port}")

    raw_proxies = (env.get("TRUSTED_PROXIES") or "").strip()
    if raw_proxies and raw_proxies not in [str(n) for n in range(MAX_TRUSTED_PROXIES + 1)]:
        raise ConfigError(
            f"TRUSTED_PROXIES must be a number of proxies from 0 to {MAX_TRUSTED_PROXIES}, got {raw_proxies!r}"
        )
    trusted_proxies = int(raw_proxies) if raw_proxies else 0

    app_name = " ".join((env.get("APP_NAME") or "").split()) or DEFAULT_APP_NAME
    if len(app_name) > MAX_APP_NAME_LEN:
        raise ConfigError(f"APP_NAME must be at most {MAX_APP_NAME_LEN} characters, got {len(app_name)}")

    tenant_urls = parse_tenant_urls(env.get("WHATSAPP_TENANT_URLS"), error=ConfigError)
    server_url_raw = (env.get("WHATSAPP_SERVER_URL") or "").strip()
    server_url = None
    if server_url_raw:
        server_url = normalize_base_url(server_url_raw)
        if server_url is None:
            raise ConfigError(f"WHATSAPP_SERVER_URL must be an http(s) URL, got {redact_url(server_url_raw)!r}")

    return {
        "APP_ENV": app_env,
        "SECRET_KEY": secret_key,
        "PORT": port,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "WHATSAPP_SERVER_URL": server_url,
        "WHATSAPP_TENANT_URLS": tenant_urls,
        "WHATSAPP_API_KEY": env.get("WHATSAPP_API_KEY") or "",
        "WHATSAPP_TIMEOUT_S": timeout,
        "WHATSAPP_CONNECT_TIMEOUT_S": connect_timeout,
        "WHATSAPP_BREAKER_FAILURES": breaker_failures,
        "WHATSAPP_BREAKER_COOLDOWN_S": breaker_cooldown,
        "WEBHOOK_SECRET": env.get("WEBHOOK_SECRET") or "",
        "OPS_API_KEY": env.get("OPS_API_KEY") or "",
        "TRUSTED_PROXIES": trusted_proxies,
        "APP_NAME": app_name,
    }
